//! A session's journal read as the checks need it: its connections, the frames the client
//! sent, and the server events that reached it.

use std::collections::BTreeMap;

use mock_server::journal::{Closer, JournalEntry, JournalEvent};
use mock_server::protocol::ServerEvent;
use mock_server::state::SessionSummary;
use serde_json::Value;

use super::{event_type, is_known_type, sequence, with_payload};

/// A session the client created, with its journal.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub summary: SessionSummary,
    pub journal: Vec<JournalEntry>,
}

/// A connection of a session, as the journal tells it.
#[derive(Debug, Clone)]
pub struct Connection {
    pub conn: u64,
    pub opened_ms: u64,
    pub cursor: Option<String>,
    pub closed_ms: Option<u64>,
    pub closed_by: Option<Closer>,
    pub close_code: Option<u16>,
    /// `POLY_AGENT_JOINED` was in the session's history when it opened: sent before, or in the
    /// connection's own replay (an event only the history has, like a join the socket dropped
    /// before delivering, shows in the evidence first there).
    pub agent_joined_before: bool,
}

/// A server event that reached the client: live, or inside a batch.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at_ms: u64,
    pub event: Value,
    pub in_batch: bool,
    /// It came inside a batch that also carried an event of a type the docs do not list (a
    /// client that drops such a batch whole breaks ERR-2, not MSG-1).
    pub beside_unknown: bool,
    /// It was written less than [`IN_FLIGHT_MS`] before its connection ended without a close
    /// frame: it may still have been in the network or the client's buffers, and a reset
    /// connection loses those (a client that never saw it is not at fault).
    pub in_flight_at_drop: bool,
}

/// How long before a drop without a close frame a frame counts as possibly lost in transit.
pub const IN_FLIGHT_MS: u64 = 1_000;

/// A frame the client sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at_ms: u64,
    pub conn: u64,
    pub bytes: u64,
    pub before_history: bool,
    /// The frame, when it was JSON.
    pub frame: Option<Value>,
    /// Its text when it was not JSON (start of it).
    pub text: Option<String>,
    pub error: Option<String>,
}

impl Sent {
    pub fn event_type(&self) -> Option<&str> {
        self.frame.as_ref()?.get("type")?.as_str()
    }

    pub fn is(&self, event_type: &str) -> bool {
        self.event_type() == Some(event_type)
    }

    pub fn custom(&self) -> Option<&Value> {
        self.frame.as_ref()?.get("metadata")?.get("custom")
    }

    pub fn text_payload(&self) -> Option<&str> {
        self.frame.as_ref()?.get("payload")?.get("text")?.as_str()
    }
}

impl SessionRecord {
    pub fn id(&self) -> &str {
        &self.summary.session_id
    }

    /// Accepted connections, in order.
    pub fn connections(&self) -> Vec<Connection> {
        let mut out: Vec<Connection> = Vec::new();
        let mut joined = false;
        for entry in &self.journal {
            match &entry.event {
                JournalEvent::ServerFrame { frame, .. }
                    if frame.get().contains(ServerEvent::POLY_AGENT_JOINED) =>
                {
                    // Journaled (and so in the history) whether or not it was delivered.
                    let value: Value = serde_json::from_str(frame.get()).unwrap_or_default();
                    if event_type(&value) == ServerEvent::POLY_AGENT_JOINED
                        && sequence(&value).is_some()
                    {
                        joined = true;
                    }
                }
                JournalEvent::Handshake {
                    conn: Some(conn),
                    status: 101,
                    query,
                    ..
                } => out.push(Connection {
                    conn: *conn,
                    opened_ms: entry.at_ms,
                    cursor: query.get("cursor").cloned(),
                    closed_ms: None,
                    closed_by: None,
                    close_code: None,
                    agent_joined_before: joined,
                }),
                JournalEvent::Close {
                    conn: Some(conn),
                    code,
                    by,
                } => {
                    if let Some(c) = out.iter_mut().find(|c| c.conn == *conn) {
                        c.closed_ms = Some(entry.at_ms);
                        c.closed_by = Some(*by);
                        c.close_code = *code;
                    }
                }
                _ => {}
            }
        }
        for connection in &mut out {
            connection.agent_joined_before |= self.replay_has_join(connection.conn);
        }
        out
    }

    /// Whether the first batch sent on `conn` (its replay) carries `POLY_AGENT_JOINED`.
    fn replay_has_join(&self, conn: u64) -> bool {
        self.replay(conn)
            .iter()
            .any(|e| event_type(e) == ServerEvent::POLY_AGENT_JOINED)
    }

    /// The events of the first batch sent on `conn` (its replay); empty if none was.
    pub fn replay(&self, conn: u64) -> Vec<Value> {
        let batch = self.journal.iter().find_map(|entry| match &entry.event {
            JournalEvent::ServerFrame {
                conn: Some(c),
                frame,
            } if *c == conn => serde_json::from_str::<Value>(frame.get())
                .ok()
                .filter(|v| event_type(v) == ServerEvent::EVENT_BATCH),
            _ => None,
        });
        match batch {
            Some(mut batch) => match batch["payload"]["events"].take() {
                Value::Array(events) => events,
                _ => Vec::new(),
            },
            None => Vec::new(),
        }
    }

    /// When the history (the first `EVENT_BATCH`) was sent on connection `conn`.
    pub fn history_sent_at(&self, conn: u64) -> Option<u64> {
        self.journal.iter().find_map(|entry| match &entry.event {
            JournalEvent::ServerFrame {
                conn: Some(c),
                frame,
            } if *c == conn
                && serde_json::from_str::<Value>(frame.get())
                    .is_ok_and(|v| event_type(&v) == ServerEvent::EVENT_BATCH) =>
            {
                Some(entry.at_ms)
            }
            _ => None,
        })
    }

    /// Frames the client sent, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.journal
            .iter()
            .filter_map(|e| match &e.event {
                JournalEvent::ClientFrame {
                    conn,
                    before_history,
                    bytes,
                    frame,
                    text,
                    error,
                    ..
                } => Some(Sent {
                    at_ms: e.at_ms,
                    conn: *conn,
                    bytes: *bytes,
                    before_history: *before_history,
                    frame: frame
                        .as_ref()
                        .and_then(|f| serde_json::from_str(f.get()).ok()),
                    text: text.clone(),
                    error: error.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    pub fn sent_of(&self, event_type: &str) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|s| s.is(event_type))
            .collect()
    }

    /// Server events that reached an open connection, batches flattened.
    pub fn deliveries(&self) -> Vec<Delivery> {
        let mut open: Vec<u64> = Vec::new();
        let mut out: Vec<Delivery> = Vec::new();
        // Which deliveries went out on each open connection (indexes into `out`).
        let mut on_conn: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for entry in &self.journal {
            match &entry.event {
                JournalEvent::Handshake {
                    conn: Some(conn),
                    status: 101,
                    ..
                } => open.push(*conn),
                JournalEvent::Close {
                    conn: Some(conn),
                    code,
                    ..
                } => {
                    open.retain(|c| c != conn);
                    let sent = on_conn.remove(conn).unwrap_or_default();
                    if code.is_none() {
                        for i in sent {
                            if out[i].at_ms + IN_FLIGHT_MS >= entry.at_ms {
                                out[i].in_flight_at_drop = true;
                            }
                        }
                    }
                }
                JournalEvent::ServerFrame { conn, frame } => {
                    let reached = match conn {
                        Some(c) => open.contains(c),
                        None => !open.is_empty(),
                    };
                    let Ok(value) = serde_json::from_str::<Value>(frame.get()) else {
                        continue;
                    };
                    if !reached {
                        continue;
                    }
                    let first = out.len();
                    if event_type(&value) == ServerEvent::EVENT_BATCH {
                        let inner: Vec<&Value> = value["payload"]["events"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .collect();
                        let beside_unknown = inner.iter().any(|e| !is_known_type(event_type(e)));
                        for event in inner {
                            out.push(Delivery {
                                at_ms: entry.at_ms,
                                event: with_payload(event),
                                in_batch: true,
                                beside_unknown,
                                in_flight_at_drop: false,
                            });
                        }
                    } else {
                        out.push(Delivery {
                            at_ms: entry.at_ms,
                            event: value,
                            in_batch: false,
                            beside_unknown: false,
                            in_flight_at_drop: false,
                        });
                    }
                    let recipients = match conn {
                        Some(c) => vec![*c],
                        None => open.clone(),
                    };
                    for c in recipients {
                        on_conn.entry(c).or_default().extend(first..out.len());
                    }
                }
                _ => {}
            }
        }
        out
    }
}
