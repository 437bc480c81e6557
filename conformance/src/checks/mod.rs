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
mod history;
mod messages;
mod reconnect;
mod records;
mod session;
mod ux;
mod ws;

use std::collections::HashMap;

use mock_server::http_log::{Endpoint, HttpCall};
use mock_server::journal::Closer;
use mock_server::protocol::{ClientEvent, ServerEvent};
use serde_json::Value;

use crate::cases::CaseRun;
use crate::contract::{View, ViewMessage};
use crate::obligations::ObligationId;

pub use history::{MESSAGE_TYPES, ServerMessage};

pub use records::{ExpectationRecord, Met, Sample, StepRecord, StepReply};
pub use session::{Connection, Delivery, IN_FLIGHT_MS, Sent, SessionRecord};

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

/// Whether `event_type` is one spec §6.6 documents.
pub fn is_known_type(event_type: &str) -> bool {
    mock_server::protocol::ServerEvent::KNOWN_TYPES.contains(&event_type)
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
