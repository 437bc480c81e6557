//! Checks: each reads the evidence of a finished case (the mock's journals, the client's final
//! view) and says whether one obligation was kept. What the client *did* comes from the
//! journal; what it *shows* comes from the view.

mod protocol;
mod view;

use mock_server::journal::{JournalEntry, JournalEvent};
use mock_server::state::SessionSummary;
use serde_json::Value;

use crate::contract::View;

pub use protocol::*;
pub use view::*;

/// Everything a case leaves behind.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// Every session the client created, oldest first, with its journal.
    pub sessions: Vec<(SessionSummary, Vec<JournalEntry>)>,
    /// The client's final view (`None`: the driver could not give one).
    pub view: Option<View>,
    /// What `Observe` steps saw: `(what, seen)`.
    pub observed: Vec<(&'static str, bool)>,
    /// Every REST call the mock answered, failed ones included.
    pub rest_calls: Vec<mock_server::http_log::HttpCall>,
}

/// What a check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Kept,
    Broken(String),
    /// The evidence cannot tell (a field the driver omits, or nothing happened to judge).
    NotObservable(String),
}

/// A check of one obligation.
pub type Check = fn(&Evidence) -> Outcome;

/// A frame the client sent: when, on which connection, and the frame.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at_ms: u64,
    pub conn: u64,
    /// Arrived before the connection's history was sent (only seen when the case delays it).
    pub before_history: bool,
    pub frame: Option<Value>,
    pub error: Option<String>,
}

impl Evidence {
    pub fn first(&self) -> Option<&[JournalEntry]> {
        self.sessions.first().map(|(_, j)| j.as_slice())
    }

    /// Client frames of a journal.
    pub fn sent(journal: &[JournalEntry]) -> Vec<Sent> {
        journal
            .iter()
            .filter_map(|e| match &e.event {
                JournalEvent::ClientFrame {
                    conn,
                    frame,
                    error,
                    before_history,
                    ..
                } => Some(Sent {
                    at_ms: e.at_ms,
                    conn: *conn,
                    before_history: *before_history,
                    frame: frame
                        .as_ref()
                        .and_then(|f| serde_json::from_str(f.get()).ok()),
                    error: error.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// Frames of `event_type` the client sent.
    pub fn sent_of(journal: &[JournalEntry], event_type: &str) -> Vec<Sent> {
        Self::sent(journal)
            .into_iter()
            .filter(|s| s.frame.as_ref().is_some_and(|f| f["type"] == event_type))
            .collect()
    }

    /// `(at_ms, conn, cursor)` of every accepted handshake.
    pub fn connects(journal: &[JournalEntry]) -> Vec<(u64, u64, Option<String>)> {
        journal
            .iter()
            .filter_map(|e| match &e.event {
                JournalEvent::Handshake {
                    conn: Some(conn),
                    query,
                    status: 101,
                    ..
                } => Some((e.at_ms, *conn, query.get("cursor").cloned())),
                _ => None,
            })
            .collect()
    }

    /// Server frames that reached an open connection, in order: `(at_ms, frame)`. Frames
    /// sent to "all" while no socket was open went only into the history.
    pub fn delivered(journal: &[JournalEntry]) -> Vec<(u64, Value)> {
        let mut open: Vec<u64> = Vec::new();
        let mut out = Vec::new();
        for entry in journal {
            match &entry.event {
                JournalEvent::Handshake {
                    conn: Some(conn),
                    status: 101,
                    ..
                } => open.push(*conn),
                JournalEvent::Close {
                    conn: Some(conn), ..
                } => open.retain(|c| c != conn),
                JournalEvent::ServerFrame { conn, frame } => {
                    let reached = match conn {
                        Some(c) => open.contains(c),
                        None => !open.is_empty(),
                    };
                    if reached && let Ok(value) = serde_json::from_str(frame.get()) {
                        out.push((entry.at_ms, value));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Server frames in order: `(at_ms, conn (None = all), frame)`.
    pub fn received(journal: &[JournalEntry]) -> Vec<(u64, Option<u64>, Value)> {
        journal
            .iter()
            .filter_map(|e| match &e.event {
                JournalEvent::ServerFrame { conn, frame } => serde_json::from_str(frame.get())
                    .ok()
                    .map(|f| (e.at_ms, *conn, f)),
                _ => None,
            })
            .collect()
    }
}
