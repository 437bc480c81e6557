//! The spec-coverage matrix: every server behaviour a client must handle (each server event
//! type, each close, each handshake and REST refusal) crossed with each way it can reach the
//! client, each cell marked with the §11 obligations it touches. The matrix is data
//! (`fixtures/conformance/coverage/matrix.json`), checked on load; which cells a run exercised
//! is computed from the evidence of its cases ([`observe`]: every delivery, close and refusal
//! classified), never written by hand. `messaging-conformance coverage` prints it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use mock_server::http_log::Endpoint;
use mock_server::journal::{Closer, JournalEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checks::{Evidence, SessionRecord, USER_MESSAGE, event_id, event_type, is_known_type};
use crate::obligations::ObligationId;
use mock_server::protocol::ServerEvent;

/// How a behaviour reached the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Way {
    Live,
    History,
    Replay,
    Restart,
    Batch,
    Duplicated,
    OutOfOrder,
    NullSequence,
    Split,
    Withheld,
    BetweenTurns,
    MidStream,
    OnConnect,
    AfterEnd,
    Once,
    Repeated,
}

/// Where the session stood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Joining,
    Agent,
    Handoff,
    LiveAgent,
    NoAgent,
    Ended,
}

/// The matrix file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatrixFile {
    #[allow(dead_code, reason = "documentation for readers of the file")]
    description: String,
    ways: BTreeMap<Way, String>,
    phases: BTreeMap<Phase, String>,
    rows: Vec<Row>,
    /// `"<row> / <way>"` → why only the thorough profile can exercise that cell.
    thorough_only: BTreeMap<String, String>,
}

/// One behaviour: the phases the spec allows it in, and its cells.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub row: String,
    pub phases: Vec<Phase>,
    pub cells: BTreeMap<Way, Vec<ObligationId>>,
}

/// The matrix, validated.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub rows: Vec<Row>,
    pub ways: BTreeMap<Way, String>,
    pub phases: BTreeMap<Phase, String>,
    pub thorough_only: BTreeMap<(String, Way), String>,
}

/// Row names that are not event types.
pub const UNKNOWN_TYPE: &str = "an undocumented event type";
pub const UNKNOWN_FIELDS: &str = "undocumented fields";

impl Matrix {
    /// The embedded matrix.
    pub fn embedded() -> Result<Self, String> {
        Self::parse(include_str!(
            "../../fixtures/conformance/coverage/matrix.json"
        ))
    }

    /// Reads and checks a matrix: every way and phase described, rows unique, event rows real
    /// server event types, `thorough_only` naming real cells.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: MatrixFile = serde_json::from_str(text)
            .map_err(|e| format!("fixtures/conformance/coverage/matrix.json: {e}"))?;
        let mut names = HashSet::new();
        for row in &file.rows {
            if !names.insert(row.row.as_str()) {
                return Err(format!("row `{}` is listed twice", row.row));
            }
            let is_event = row.row.starts_with("EVENT_TYPE_");
            if is_event && !is_known_type(&row.row) {
                return Err(format!(
                    "row `{}` is not a server event type of spec §6.6",
                    row.row
                ));
            }
            if let Some(way) = row.cells.keys().find(|w| !file.ways.contains_key(w)) {
                return Err(format!("row `{}`: way {way:?} is not described", row.row));
            }
            if let Some(phase) = row.phases.iter().find(|p| !file.phases.contains_key(p)) {
                return Err(format!(
                    "row `{}`: phase {phase:?} is not described",
                    row.row
                ));
            }
        }
        let mut thorough_only = BTreeMap::new();
        for (key, why) in &file.thorough_only {
            let (row, way) = key
                .rsplit_once(" / ")
                .ok_or_else(|| format!("thorough_only `{key}`: write `<row> / <way>`"))?;
            let way: Way = serde_json::from_value(Value::String(way.to_owned()))
                .map_err(|e| format!("thorough_only `{key}`: {e}"))?;
            let known = file
                .rows
                .iter()
                .any(|r| r.row == row && r.cells.contains_key(&way));
            if !known {
                return Err(format!("thorough_only `{key}` names no cell of the matrix"));
            }
            thorough_only.insert((row.to_owned(), way), why.clone());
        }
        Ok(Self {
            rows: file.rows,
            ways: file.ways,
            phases: file.phases,
            thorough_only,
        })
    }

    /// The cells that touch an obligation: `(row, way, obligations)`.
    pub fn touched(&self) -> Vec<(&str, Way, &[ObligationId])> {
        self.rows
            .iter()
            .flat_map(|r| {
                r.cells
                    .iter()
                    .filter(|(_, o)| !o.is_empty())
                    .map(move |(w, o)| (r.row.as_str(), *w, o.as_slice()))
            })
            .collect()
    }

    /// Touched cells `observed` did not exercise, each with the reason it may be missing in
    /// this profile (`Some`: only the thorough profile can), or `None` (a gap).
    pub fn missing<'m>(
        &'m self,
        observed: &Observed,
    ) -> Vec<(&'m str, Way, &'m [ObligationId], Option<&'m str>)> {
        self.touched()
            .into_iter()
            .filter(|(row, way, _)| !observed.cells.contains(&((*row).to_owned(), *way)))
            .map(|(row, way, obligations)| {
                let why = self
                    .thorough_only
                    .get(&(row.to_owned(), way))
                    .map(String::as_str);
                (row, way, obligations, why)
            })
            .collect()
    }

    /// The matrix as a text table: `✓` exercised and touched, `·` exercised, touched by no
    /// obligation, `✗` touched and not exercised, `t` only the thorough profile exercises it,
    /// `-` a cell of no obligation not exercised; blank where the way is not the row's.
    pub fn table(&self, observed: &Observed) -> String {
        let ways: Vec<Way> = self.ways.keys().copied().collect();
        let width = self.rows.iter().map(|r| r.row.len()).max().unwrap_or(0);
        let short = |w: &Way| {
            let name = serde_json::to_value(w)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            name.chars().take(6).collect::<String>()
        };
        let mut out = format!("{:width$} ", "", width = width);
        for way in &ways {
            let _ = write!(out, " {:>6}", short(way));
        }
        out.push_str("   phases\n");
        for row in &self.rows {
            let _ = write!(out, "{:width$} ", row.row, width = width);
            for way in &ways {
                let mark = match row.cells.get(way) {
                    None => " ",
                    Some(obligations) => {
                        let done = observed.cells.contains(&(row.row.clone(), *way));
                        match (done, obligations.is_empty()) {
                            (true, false) => "✓",
                            (true, true) => "·",
                            (false, true) => "-",
                            (false, false)
                                if self.thorough_only.contains_key(&(row.row.clone(), *way)) =>
                            {
                                "t"
                            }
                            (false, false) => "✗",
                        }
                    }
                };
                let _ = write!(out, " {mark:>6}");
            }
            let phases: Vec<String> = row
                .phases
                .iter()
                .map(|p| {
                    let name = serde_json::to_value(p)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    if observed.phases.contains(&(row.row.clone(), *p)) {
                        name
                    } else {
                        format!("({name})")
                    }
                })
                .collect();
            let _ = writeln!(out, "   {}", phases.join(" "));
        }
        out
    }

    /// `(touched, exercised)` cell counts, and the same for the row phases.
    pub fn counts(&self, observed: &Observed) -> (usize, usize, usize, usize) {
        let touched = self.touched();
        let exercised = touched
            .iter()
            .filter(|(r, w, _)| observed.cells.contains(&((*r).to_owned(), *w)))
            .count();
        let phases: Vec<(&str, Phase)> = self
            .rows
            .iter()
            .flat_map(|r| r.phases.iter().map(move |p| (r.row.as_str(), *p)))
            .collect();
        let phases_seen = phases
            .iter()
            .filter(|(r, p)| observed.phases.contains(&((*r).to_owned(), *p)))
            .count();
        (touched.len(), exercised, phases.len(), phases_seen)
    }
}

/// What a run exercised: `(row, way)` cells and `(row, phase)` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub cells: BTreeSet<(String, Way)>,
    pub phases: BTreeSet<(String, Phase)>,
}

impl Observed {
    pub fn merge(&mut self, other: &Observed) {
        self.cells.extend(other.cells.iter().cloned());
        self.phases.extend(other.phases.iter().cloned());
    }

    fn mark(&mut self, row: &str, way: Way, phase: Phase) {
        self.cells.insert((row.to_owned(), way));
        self.phases.insert((row.to_owned(), phase));
    }
}

/// Types the mock never puts in the history (spec §12 B1): `sequence: null` is their normal.
const TRANSIENT: &[&str] = &[
    ServerEvent::POLY_AGENT_THINKING,
    ServerEvent::LIVE_AGENT_TYPING,
    ServerEvent::HANDOFF_QUEUE_STATUS,
    ServerEvent::HEARTBEAT,
    ServerEvent::SYSTEM_MESSAGE,
];

const ENVELOPE: &[&str] = &["id", "sequence", "timestamp", "type", "payload", "metadata"];

/// Walks one session's journal, classifying what reached the client.
struct Walk<'e> {
    out: Observed,
    restarts: &'e [u64],
    phase: Phase,
    seen: HashSet<String>,
    highest: u64,
    /// Per connection: when it opened, and the way its first batch counts as.
    opened: HashMap<u64, (u64, Way)>,
    first_batch_done: HashSet<u64>,
    chunk_conns: HashMap<String, HashSet<u64>>,
    open_streams: HashSet<String>,
    /// Connections that got a frame besides their replay (a close before that is "on connect").
    settled: HashSet<u64>,
}

impl Walk<'_> {
    fn classify(&mut self, event: &Value, base: Way, conn: Option<u64>) {
        let kind = event_type(event);
        let row = if is_known_type(kind) {
            kind.to_owned()
        } else {
            UNKNOWN_TYPE.to_owned()
        };
        let phase = self.phase;
        let mut ways = vec![base];
        let fresh = event_id(event).is_none_or(|id| self.seen.insert(id.to_owned()));
        if !fresh {
            ways.push(Way::Duplicated);
        }
        match event.get("sequence").and_then(Value::as_u64) {
            Some(sequence) => {
                if fresh && sequence < self.highest {
                    ways.push(Way::OutOfOrder);
                }
                self.highest = self.highest.max(sequence);
            }
            None if !TRANSIENT.contains(&kind) && kind != ServerEvent::EVENT_BATCH => {
                ways.push(Way::NullSequence);
            }
            None => {}
        }
        if kind == ServerEvent::POLY_AGENT_MESSAGE_CHUNK
            && let Some(id) = event["payload"]["message_id"].as_str()
        {
            let conns = self.chunk_conns.entry(id.to_owned()).or_default();
            if let Some(c) = conn {
                conns.insert(c);
            }
            if conns.len() > 1 {
                ways.push(Way::Split);
            }
            if event["payload"]["is_complete"] == true {
                self.open_streams.remove(id);
            } else if fresh {
                self.open_streams.insert(id.to_owned());
            }
        }
        for way in ways {
            self.out.mark(&row, way, phase);
        }
        if event
            .as_object()
            .is_some_and(|o| o.keys().any(|k| !ENVELOPE.contains(&k.as_str())))
        {
            self.out.mark(UNKNOWN_FIELDS, Way::Live, phase);
        }
        if fresh {
            self.advance(kind);
        }
    }

    fn advance(&mut self, kind: &str) {
        self.phase = match (kind, self.phase) {
            (ServerEvent::SESSION_END, _) => Phase::Ended,
            (_, Phase::Ended) => Phase::Ended,
            (ServerEvent::POLY_AGENT_JOINED, _) => Phase::Agent,
            (
                ServerEvent::POLY_AGENT_TRIGGERED_HANDOFF
                | ServerEvent::HANDOFF_ACCEPTED
                | ServerEvent::CLIENT_HANDOFF_REQUIRED,
                _,
            ) => Phase::Handoff,
            (ServerEvent::POLY_AGENT_LEFT, Phase::Agent) => Phase::NoAgent,
            (ServerEvent::LIVE_AGENT_JOINED, _) => Phase::LiveAgent,
            (
                ServerEvent::LIVE_AGENT_LEFT
                | ServerEvent::HANDOFF_FAILED
                | ServerEvent::HANDOFF_TIMEOUT,
                _,
            ) => Phase::NoAgent,
            (_, phase) => phase,
        };
    }

    /// `conn` is the connection the frame went to: its own, or (sent to every connection)
    /// the newest open one.
    fn frame(&mut self, conn: Option<u64>, value: &Value) {
        if event_type(value) != ServerEvent::EVENT_BATCH {
            if let Some(c) = conn {
                self.settled.insert(c);
            }
            self.classify(value, Way::Live, conn);
            return;
        }
        let base = match conn {
            Some(c) if self.first_batch_done.insert(c) => {
                self.opened.get(&c).map_or(Way::Batch, |(_, way)| *way)
            }
            _ => Way::Batch,
        };
        for inner in value["payload"]["events"].as_array().into_iter().flatten() {
            self.classify(inner, base, conn);
        }
    }

    fn close(&mut self, conn: u64, code: Option<u16>) {
        let row = code.map_or_else(|| "drop (1006)".to_owned(), |c| format!("close {c}"));
        let way = if self.phase == Phase::Ended {
            Way::AfterEnd
        } else if !self.open_streams.is_empty() {
            Way::MidStream
        } else if !self.settled.contains(&conn) {
            Way::OnConnect
        } else {
            Way::BetweenTurns
        };
        let phase = self.phase;
        self.out.mark(&row, way, phase);
    }
}

/// What one session's evidence exercised.
fn observe_session(session: &SessionRecord, restarts: &[u64]) -> Observed {
    let mut walk = Walk {
        out: Observed::default(),
        restarts,
        phase: Phase::Joining,
        seen: HashSet::new(),
        highest: 0,
        opened: HashMap::new(),
        first_batch_done: HashSet::new(),
        chunk_conns: HashMap::new(),
        open_streams: HashSet::new(),
        settled: HashSet::new(),
    };
    let mut open: Vec<u64> = Vec::new();
    let mut last_handshake: Option<u64> = None;
    for entry in &session.journal {
        match &entry.event {
            JournalEvent::Handshake {
                conn: Some(conn),
                status: 101,
                ..
            } => {
                let restarted = walk
                    .restarts
                    .iter()
                    .any(|r| last_handshake.is_some_and(|h| h < *r) && *r <= entry.at_ms);
                let way = match last_handshake {
                    None => Way::History,
                    Some(_) if restarted => Way::Restart,
                    Some(_) => Way::Replay,
                };
                walk.opened.insert(*conn, (entry.at_ms, way));
                last_handshake = Some(entry.at_ms);
                open.push(*conn);
            }
            JournalEvent::Close {
                conn: Some(conn),
                code,
                by,
            } => {
                if *by == Closer::Server && open.contains(conn) {
                    walk.close(*conn, *code);
                }
                open.retain(|c| c != conn);
            }
            JournalEvent::ServerFrame { conn, frame } => {
                let reached = match conn {
                    Some(c) => open.contains(c),
                    None => !open.is_empty(),
                };
                if !reached {
                    continue;
                }
                if let Ok(value) = serde_json::from_str::<Value>(frame.get()) {
                    walk.frame(conn.or_else(|| open.last().copied()), &value);
                }
            }
            _ => {}
        }
    }
    // A user message whose echo never came: withheld.
    let echoed: Vec<Value> = session
        .deliveries()
        .into_iter()
        .filter(|d| event_type(&d.event) == USER_MESSAGE)
        .map(|d| d.event["metadata"]["custom"].clone())
        .collect();
    for sent in session.sent_of(USER_MESSAGE) {
        if let Some(custom) = sent.custom()
            && !echoed.contains(custom)
        {
            walk.out.mark(USER_MESSAGE, Way::Withheld, Phase::Agent);
        }
    }
    walk.out
}

/// What a case's evidence exercised: every session's deliveries and closes, and the refused
/// handshakes and REST calls.
pub fn observe(e: &Evidence) -> Observed {
    let restarts: Vec<u64> = e
        .steps
        .iter()
        .filter(|s| {
            matches!(s.step, crate::cases::Step::Restart) && s.reply == crate::checks::StepReply::Ok
        })
        .map(|s| s.at_ms)
        .collect();
    let mut out = Observed::default();
    for session in &e.sessions {
        out.merge(&observe_session(session, &restarts));
    }
    // Refusals: a run of the same status on one endpoint (and session) is `repeated`.
    let mut previous: HashMap<(Endpoint, Option<String>), u16> = HashMap::new();
    for call in &e.http {
        if call.endpoint == Endpoint::WebSocket && !call.request.upgrade {
            continue;
        }
        let key = (call.endpoint, call.session_id.clone());
        let before = previous.insert(key, call.status);
        if call.status < 400 {
            continue;
        }
        let row = match call.endpoint {
            Endpoint::WebSocket => format!("handshake {}", call.status),
            Endpoint::AccessToken => format!("access-token {}", call.status),
            Endpoint::Sessions => format!("sessions {}", call.status),
        };
        let way = if before == Some(call.status) {
            Way::Repeated
        } else {
            Way::Once
        };
        let phase = if call.endpoint == Endpoint::WebSocket {
            Phase::Agent
        } else {
            Phase::Joining
        };
        out.mark(&row, way, phase);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_matrix_loads_and_every_obligation_but_the_unobservable_is_touched() {
        let matrix = Matrix::embedded().unwrap_or_else(|e| panic!("{e}"));
        let touched: BTreeSet<ObligationId> = matrix
            .touched()
            .iter()
            .flat_map(|(_, _, o)| o.iter().copied())
            .collect();
        for obligation in crate::obligations::OBLIGATIONS {
            // The wire-form obligations are about what the client sends, not what reaches it.
            let about_sending = matches!(
                obligation.id,
                ObligationId::Auth1
                    | ObligationId::Auth2
                    | ObligationId::Auth3
                    | ObligationId::Ws1
                    | ObligationId::Ws5
                    | ObligationId::Ws6
                    | ObligationId::Auth4
                    | ObligationId::Sec1
            );
            assert!(
                about_sending || touched.contains(&obligation.id),
                "{} is touched by no cell",
                obligation.id
            );
        }
    }

    #[test]
    fn broken_matrices_are_refused_with_the_row_named() {
        let good = r#"{"description": "d", "ways": {"live": "l"}, "phases": {"agent": "a"},
            "rows": [{"row": "EVENT_TYPE_POLY_AGENT_MESSAGE", "phases": ["agent"], "cells": {"live": ["MSG-3"]}}],
            "thorough_only": {}}"#;
        Matrix::parse(good).expect("a good matrix");
        for (bad, problem) in [
            (
                good.replace("\"live\": [\"MSG-3\"]", "\"replay\": [\"MSG-3\"]"),
                "not described",
            ),
            (
                good.replace("EVENT_TYPE_POLY_AGENT_MESSAGE", "EVENT_TYPE_NOPE"),
                "EVENT_TYPE_NOPE",
            ),
            (good.replace("MSG-3", "MSG-9"), "MSG-9"),
            (
                good.replace(
                    "\"thorough_only\": {}",
                    "\"thorough_only\": {\"x / live\": \"why\"}",
                ),
                "names no cell",
            ),
        ] {
            let error = Matrix::parse(&bad).expect_err(&bad);
            assert!(error.contains(problem), "{error} (wanted {problem})");
        }
    }
}
