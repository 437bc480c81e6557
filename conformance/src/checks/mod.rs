//! Checks: each judges one obligation of spec §11, as the spec states it, from the evidence a
//! finished case left. What the client *did* comes from the mock (session journals and the
//! server-wide HTTP log); what it *showed* from the view timeline (every view the runner
//! sampled, with when it asked and when the answer came). Times are the mock's clock, in ms.
//!
//! A check answers [`Outcome::Kept`] only with positive evidence (and says what it was),
//! [`Outcome::Broken`] with the reason, and [`Outcome::NotObservable`] when the case gave it
//! nothing to judge. One module per obligation family.

mod auth;
mod errors;
mod heartbeat;
mod messages;
mod reconnect;
mod ux;
mod ws;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use mock_server::http_log::{Endpoint, HttpCall};
use mock_server::journal::{Closer, JournalEntry, JournalEvent};
use mock_server::protocol::{ClientEvent, ServerEvent};
use mock_server::state::SessionSummary;
use serde_json::Value;

use crate::cases::CaseRun;
use crate::contract::{Author, View, ViewMessage};
use crate::obligations::ObligationId;

/// What a check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Kept, and the evidence that shows it.
    Kept(String),
    Broken(String),
    /// The case gave nothing to judge (a field the driver omits, nothing happened).
    NotObservable(String),
}

/// The check of each obligation.
pub fn judge(id: ObligationId, e: &Evidence) -> Outcome {
    use ObligationId::*;
    match id {
        Auth1 => auth::access_token_calls(e),
        Auth2 => auth::session_calls(e),
        Auth3 => auth::fresh_token_per_session(e),
        Auth4 | Sec1 => Outcome::NotObservable(
            "a matter for review of the app's code and storage; a mock server cannot see it".into(),
        ),
        Auth5 => auth::rest_retries(e),
        Ws1 => ws::handshake_parameters(e),
        Ws2 => ws::join_after_history(e),
        Ws3 => ws::one_join_per_new_session(e),
        Ws4 => ws::no_join_after_agent_joined(e),
        Ws5 => ws::frames_well_formed(e),
        Ws6 => ws::message_and_typing_fields(e),
        Ws7 => ws::frames_within_limit(e),
        Hb1 => heartbeat::heartbeats_sent(e),
        Hb2 => heartbeat::heartbeat_cadence(e),
        Rc1 => reconnect::same_session_after_drop(e),
        Rc2 => reconnect::cursor_on_every_reconnect(e),
        Rc3 => reconnect::backoff_grows(e),
        Rc4 => reconnect::gives_up_after_max_attempts(e),
        Rc5 => reconnect::new_session_after_404_or_401(e),
        Msg1 => messages::batches_flattened(e),
        Msg2 => messages::shown_once(e),
        Msg3 => messages::conversation_in_order(e),
        Msg4 => messages::chunks_assembled(e),
        Msg5 => messages::lost_messages_resent(e),
        Ux1 => ux::typing_indicator(e),
        Ux2 => ux::suggestions(e),
        Ux3 => ux::handoff_progress(e),
        Ux4 => ux::session_end(e),
        Ux5 => ux::client_handoff(e),
        Ux6 => ux::language(e),
        Err1 => errors::error_messages_not_fatal(e),
        Err2 => errors::unknown_events_ignored(e),
    }
}

/// One view the runner asked for: when it asked, when the answer came, and the view.
#[derive(Debug, Clone)]
pub struct Sample {
    pub sent_ms: u64,
    pub replied_ms: u64,
    pub view: Arc<View>,
}

/// How a driver answered a step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reply", content = "detail", rename_all = "snake_case")]
pub enum StepReply {
    Ok,
    Failed(String),
    Unsupported,
    /// The runner could not play it (and why).
    NotRun(String),
}

/// A step the runner played.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepRecord {
    pub index: usize,
    pub step: crate::cases::Step,
    pub at_ms: u64,
    /// How many view samples had been taken when the step began: orders it against them
    /// where milliseconds cannot (a view read in the same millisecond came before it only
    /// if its index is below this).
    pub samples_before: usize,
    pub reply: StepReply,
}

/// How an expectation went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", content = "detail", rename_all = "snake_case")]
pub enum Met {
    At(u64),
    TimedOut(u64),
    /// The view lacks what the expectation needs.
    NotObservable(String),
    /// The case stopped before it (an earlier expectation timed out, or the driver broke).
    NotReached,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ExpectationRecord {
    pub index: usize,
    pub what: String,
    pub serves: ObligationId,
    pub started_ms: u64,
    pub met: Met,
}

/// A session the client created, with its journal.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub summary: SessionSummary,
    pub journal: Vec<JournalEntry>,
}

/// Everything a case leaves behind.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub case: CaseRun,
    /// Every session, oldest first.
    pub sessions: Vec<SessionRecord>,
    /// Every REST call and `/ws` handshake, refused ones too.
    pub http: Vec<HttpCall>,
    pub samples: Vec<Sample>,
    pub steps: Vec<StepRecord>,
    pub expectations: Vec<ExpectationRecord>,
    /// When the runner told the client to exit.
    pub exit_ms: u64,
    /// When the evidence window closed (the driver had exited).
    pub end_ms: u64,
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

/// Whether `event_type` is one spec §6.6 documents.
pub fn is_known_type(event_type: &str) -> bool {
    mock_server::protocol::ServerEvent::KNOWN_TYPES.contains(&event_type)
}

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

pub const JOIN: &str = ClientEvent::REQUEST_POLY_AGENT_JOIN;
pub const USER_MESSAGE: &str = ClientEvent::USER_MESSAGE;
pub const USER_TYPING: &str = ClientEvent::USER_TYPING;
pub const HEARTBEAT: &str = ClientEvent::HEARTBEAT;

pub fn event_type(event: &Value) -> &str {
    event.get("type").and_then(Value::as_str).unwrap_or("")
}

pub fn sequence(event: &Value) -> Option<u64> {
    event.get("sequence").and_then(Value::as_u64)
}

pub fn event_id(event: &Value) -> Option<&str> {
    event.get("id").and_then(Value::as_str)
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
        self.journal
            .iter()
            .find_map(|entry| match &entry.event {
                JournalEvent::ServerFrame {
                    conn: Some(c),
                    frame,
                } if *c == conn => serde_json::from_str::<Value>(frame.get())
                    .ok()
                    .filter(|v| event_type(v) == ServerEvent::EVENT_BATCH),
                _ => None,
            })
            .is_some_and(|batch| {
                batch["payload"]["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| event_type(e) == ServerEvent::POLY_AGENT_JOINED)
            })
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

    /// The session's history as the kit can know it: every sequenced event the mock sent on
    /// its own or inside a batch (an event withheld from live delivery is known from the batch
    /// that later carried it), and every message sent with a null sequence (placed after the
    /// sequenced events sent before it), once each, in order.
    pub fn history(&self) -> Vec<(u64, Value)> {
        let mut seen = std::collections::HashSet::new();
        let mut keyed: Vec<((u64, u64), u64, Value)> = Vec::new();
        let mut highest = 0;
        for entry in &self.journal {
            let JournalEvent::ServerFrame { frame, .. } = &entry.event else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<Value>(frame.get()) else {
                continue;
            };
            let events: Vec<Value> = if event_type(&value) == ServerEvent::EVENT_BATCH {
                value["payload"]["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(with_payload)
                    .collect()
            } else {
                vec![value]
            };
            for event in events {
                let key = match sequence(&event) {
                    Some(n) => (n, 0),
                    None if MESSAGE_TYPES.contains(&event_type(&event)) => {
                        (highest, keyed.len() as u64 + 1)
                    }
                    None => continue,
                };
                if seen.insert(event_id(&event).unwrap_or_default().to_owned()) {
                    highest = highest.max(key.0);
                    keyed.push((key, entry.at_ms, event));
                }
            }
        }
        keyed.sort_by_key(|(key, _, _)| *key);
        keyed.into_iter().map(|(_, at, e)| (at, e)).collect()
    }
}

/// Server events that carry a message.
pub const MESSAGE_TYPES: &[&str] = &[
    ServerEvent::USER_MESSAGE,
    ServerEvent::POLY_AGENT_MESSAGE,
    ServerEvent::POLY_AGENT_MESSAGE_CHUNK,
    ServerEvent::LIVE_AGENT_MESSAGE,
];

impl SessionRecord {
    /// Every message the server said in this session, in sequence order (streamed ones
    /// assembled by `chunk_index`).
    pub fn messages(&self) -> Vec<ServerMessage> {
        let mut out: Vec<ServerMessage> = Vec::new();
        {
            for (_, event) in self.history() {
                let payload = &event["payload"];
                let from = match event_type(&event) {
                    ServerEvent::USER_MESSAGE => Author::User,
                    ServerEvent::POLY_AGENT_MESSAGE | ServerEvent::POLY_AGENT_MESSAGE_CHUNK => {
                        Author::Agent
                    }
                    ServerEvent::LIVE_AGENT_MESSAGE => Author::LiveAgent,
                    _ => continue,
                };
                let message_id = payload["message_id"].as_str().map(str::to_owned);
                let attachments: Vec<Value> = payload["attachments"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let suggestions: Vec<String> = payload["response_suggestions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["message_text"].as_str().map(str::to_owned))
                    .collect();
                if event_type(&event) == ServerEvent::POLY_AGENT_MESSAGE_CHUNK {
                    let index = payload["chunk_index"].as_u64().unwrap_or(0);
                    match out
                        .iter_mut()
                        .find(|m| m.message_id == message_id && !m.chunks.is_empty())
                    {
                        Some(message) => {
                            message.chunks.insert(index, payload.clone());
                        }
                        None => out.push(ServerMessage {
                            from,
                            message_id,
                            text: String::new(),
                            attachments: Vec::new(),
                            suggestions: Vec::new(),
                            chunks: BTreeMap::from([(index, payload.clone())]),
                        }),
                    }
                    continue;
                }
                out.push(ServerMessage {
                    from,
                    message_id,
                    text: payload["text"].as_str().unwrap_or_default().to_owned(),
                    attachments,
                    suggestions,
                    chunks: BTreeMap::new(),
                });
            }
        }
        for message in &mut out {
            if message.chunks.is_empty() {
                continue;
            }
            message.text = message
                .chunks
                .values()
                .filter_map(|c| c["text"].as_str())
                .collect();
            message.attachments = message
                .chunks
                .values()
                .flat_map(|c| c["attachments"].as_array().cloned().unwrap_or_default())
                .collect();
            message.suggestions = message
                .chunks
                .values()
                .flat_map(|c| {
                    c["response_suggestions"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|s| s["message_text"].as_str().map(str::to_owned))
                .collect();
        }
        out
    }
}

/// A batch element with its payload under `payload`, whichever shape it came in (spec
/// Appendix A's alternate key).
fn with_payload(inner: &Value) -> Value {
    if inner.get("payload").is_some() {
        return inner.clone();
    }
    let mut event = inner.clone();
    let key = event_type(inner)
        .trim_start_matches("EVENT_TYPE_")
        .to_lowercase();
    if let Some(payload) = inner.get(&key) {
        event["payload"] = payload.clone();
    }
    event
}

/// A message the conversation has, as the server said it: its id and what it carries.
#[derive(Debug, Clone)]
pub struct ServerMessage {
    pub from: Author,
    pub message_id: Option<String>,
    pub text: String,
    pub attachments: Vec<Value>,
    pub suggestions: Vec<String>,
    /// Streamed: the chunks by `chunk_index`.
    pub chunks: BTreeMap<u64, Value>,
}

impl Evidence {
    /// The evidence a case left in `server`, with what the runner recorded.
    pub fn gather(
        case: CaseRun,
        server: &mock_server::MockServer,
        samples: Vec<Sample>,
        steps: Vec<StepRecord>,
        expectations: Vec<ExpectationRecord>,
        exit_ms: u64,
    ) -> Self {
        Self {
            case,
            sessions: server
                .sessions_with_journals()
                .into_iter()
                .map(|(summary, journal)| SessionRecord { summary, journal })
                .collect(),
            http: server.http_calls(),
            samples,
            steps,
            expectations,
            exit_ms,
            end_ms: server.state().clock().now().elapsed.as_millis() as u64,
        }
    }

    /// The calls of `endpoint`; for `/ws`, the connection attempts (upgrade requests), not a
    /// plain GET a client sends to learn why its socket did not open.
    pub fn http_of(&self, endpoint: Endpoint) -> Vec<&HttpCall> {
        self.http
            .iter()
            .filter(|c| c.endpoint == endpoint)
            .filter(|c| endpoint != Endpoint::WebSocket || c.request.upgrade)
            .collect()
    }

    pub fn session(&self, id: &str) -> Option<&SessionRecord> {
        self.sessions.iter().find(|s| s.id() == id)
    }

    /// The view at the end of the case (the last sample).
    pub fn final_view(&self) -> Option<&View> {
        self.samples.last().map(|s| s.view.as_ref())
    }

    /// The last view of the case's first session: the conversation the case is about, even
    /// when the client moved on to another session afterwards (that is UX-4's to judge).
    pub fn conversation_view(&self) -> Option<&View> {
        let first = self.sessions.first().map(|s| s.id());
        self.samples
            .iter()
            .rev()
            .find(|s| {
                first.is_some()
                    && s.view
                        .session_id
                        .as_ref()
                        .is_some_and(|id| id.as_deref() == first)
            })
            .map(|s| s.view.as_ref())
            .or_else(|| self.final_view())
    }

    /// The messages of [`Evidence::conversation_view`], or why there are none to judge.
    pub fn final_messages(&self) -> Result<&[ViewMessage], Outcome> {
        let view = self
            .conversation_view()
            .ok_or_else(|| Outcome::NotObservable("the driver gave no view".into()))?;
        view.messages()
            .ok_or_else(|| Outcome::NotObservable("the view has no `messages`".into()))
    }

    /// When the client itself closed a socket of `session` for good mid-conversation (before
    /// any `SESSION_END`, before the runner ended it, and without connecting again).
    pub fn client_quit_at(&self, session: &SessionRecord) -> Option<u64> {
        let ended = session
            .deliveries()
            .iter()
            .find(|d| event_type(&d.event) == ServerEvent::SESSION_END)
            .map_or(u64::MAX, |d| d.at_ms);
        let connections = session.connections();
        connections
            .iter()
            .filter(|c| c.closed_by == Some(Closer::Client))
            .filter_map(|c| c.closed_ms)
            .filter(|at| *at < ended && *at < self.exit_ms)
            .filter(|at| !connections.iter().any(|c| c.opened_ms > *at))
            .min()
    }

    /// Samples taken entirely after `from_ms` (asked at or after it).
    pub fn samples_after(&self, from_ms: u64) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(move |s| s.sent_ms >= from_ms)
    }

    /// The token (`jti`) that created each session, by session id.
    pub fn session_tokens(&self) -> HashMap<String, String> {
        self.http_of(Endpoint::Sessions)
            .into_iter()
            .filter(|c| c.status == 200)
            .filter_map(|c| Some((c.session_id.clone()?, c.token.clone()?)))
            .collect()
    }

    /// When the user started a conversation (each `start` step).
    pub fn starts(&self) -> Vec<u64> {
        self.steps
            .iter()
            .filter(|s| matches!(s.step, crate::cases::Step::Start))
            .map(|s| s.at_ms)
            .collect()
    }

    /// "Nothing to judge" for checks that need a session, when the client never created one
    /// (an earlier stage failed; AUTH-1 and AUTH-2 say why).
    pub fn no_session(&self) -> Option<Outcome> {
        self.sessions.is_empty().then(|| {
            Outcome::NotObservable(
                "the client created no session (see AUTH-1, AUTH-2 for why)".into(),
            )
        })
    }

    /// Every message the server said in every session (see [`SessionRecord::messages`]).
    pub fn server_messages(&self) -> Vec<ServerMessage> {
        self.sessions
            .iter()
            .flat_map(SessionRecord::messages)
            .collect()
    }

    /// The session the case's conversation is about: the first.
    pub fn conversation_session(&self) -> Option<&SessionRecord> {
        self.sessions.first()
    }

    /// The deliveries of the conversation's session; `Err` when the client quit it (closed
    /// its socket for good mid-conversation): what it got then may never have been read, and
    /// ERR-1 / ERR-2 judge the quitting.
    pub fn conversation_deliveries(&self) -> Result<Vec<Delivery>, Outcome> {
        let Some(session) = self.conversation_session() else {
            return Err(Outcome::NotObservable(
                "the client created no session".into(),
            ));
        };
        if let Some(at) = self.client_quit_at(session) {
            return Err(Outcome::NotObservable(format!(
                "the client closed its socket at {at} ms mid-conversation and never came back"
            )));
        }
        Ok(session.deliveries())
    }

    /// Every delivery of every session, in time order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        let mut all: Vec<Delivery> = self.sessions.iter().flat_map(|s| s.deliveries()).collect();
        all.sort_by_key(|d| d.at_ms);
        all
    }

    /// Connections of every session that ended unexpectedly: dropped, or closed by the server
    /// with anything but 1000 (after `SESSION_END`) or 4001 (session unknown, RC-5's), while
    /// no other connection of the session was open and the session had not ended.
    pub fn unexpected_closes(&self) -> Vec<(&SessionRecord, Connection)> {
        let mut out = Vec::new();
        for session in &self.sessions {
            let connections = session.connections();
            let ended_at = session
                .deliveries()
                .iter()
                .find(|d| event_type(&d.event) == ServerEvent::SESSION_END)
                .map(|d| d.at_ms);
            for c in &connections {
                let (Some(closed), Some(Closer::Server)) = (c.closed_ms, c.closed_by) else {
                    continue;
                };
                if matches!(c.close_code, Some(1000 | 4001)) {
                    continue;
                }
                if ended_at.is_some_and(|end| end <= closed) {
                    continue;
                }
                let others_open = connections.iter().any(|o| {
                    o.conn != c.conn
                        && o.opened_ms <= closed
                        && o.closed_ms.is_none_or(|oc| oc > closed)
                });
                if !others_open {
                    out.push((session, c.clone()));
                }
            }
        }
        out
    }

    /// `/ws` handshakes (accepted or refused) addressed to `session` after `from_ms`.
    pub fn handshakes_to(&self, session: &str, from_ms: u64) -> Vec<&HttpCall> {
        self.http_of(Endpoint::WebSocket)
            .into_iter()
            .filter(|c| c.session_id.as_deref() == Some(session) && c.at_ms >= from_ms)
            .collect()
    }
}

#[cfg(test)]
mod tests;
