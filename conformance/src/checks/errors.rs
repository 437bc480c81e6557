//! ERR-1 and ERR-2: errors and the unknown do not stop the client. The "conversation goes on"
//! half is each case's expectation after the error (a timeout fails the obligation it
//! serves); this checks the socket.

use mock_server::journal::Closer;

use super::{Delivery, Evidence, Outcome, event_type};

/// The first delivery matching `wanted`, and whether the client then closed a socket or
/// reconnected on its own before the session ended.
fn survives(
    e: &Evidence,
    what: &str,
    wanted: impl Fn(&Delivery) -> bool,
) -> Result<(u64, usize), Outcome> {
    let mut first = None;
    let mut count = 0;
    for session in &e.sessions {
        let deliveries = session.deliveries();
        let Some(at) = deliveries
            .iter()
            .filter(|d| wanted(d))
            .map(|d| d.at_ms)
            .min()
        else {
            continue;
        };
        count += deliveries.iter().filter(|d| wanted(d)).count();
        first = Some(first.map_or(at, |f: u64| f.min(at)));
        let ended = deliveries
            .iter()
            .find(|d| event_type(&d.event) == "EVENT_TYPE_SESSION_END")
            .map_or(u64::MAX, |d| d.at_ms);
        let connections = session.connections();
        if let Some(closed) = connections.iter().find(|c| {
            c.closed_by == Some(Closer::Client)
                && c.closed_ms
                    .is_some_and(|t| t >= at && t < ended && t < e.exit_ms)
        }) {
            return Err(Outcome::Broken(format!(
                "closed its socket at {} ms after {what} at {at} ms",
                closed.closed_ms.unwrap_or_default()
            )));
        }
        let dropped_by_server = connections
            .iter()
            .any(|c| c.closed_by == Some(Closer::Server) && c.closed_ms.is_some_and(|t| t >= at));
        if !dropped_by_server
            && let Some(again) = connections
                .iter()
                .find(|c| c.opened_ms > at && !restarted_between(e, at, c.opened_ms))
        {
            return Err(Outcome::Broken(format!(
                "reconnected at {} ms after {what} at {at} ms, although nothing closed the socket",
                again.opened_ms
            )));
        }
    }
    first
        .map(|at| (at, count))
        .ok_or_else(|| Outcome::NotObservable(format!("no {what} reached the client")))
}

/// Whether the user restarted the app between `from` and `to` (a reconnect then is not the
/// client giving up on its socket).
fn restarted_between(e: &Evidence, from: u64, to: u64) -> bool {
    e.steps
        .iter()
        .any(|s| matches!(s.step, crate::cases::Step::Restart) && s.at_ms >= from && s.at_ms <= to)
}

/// ERR-1: after error `SYSTEM_MESSAGE`s the client keeps its socket.
pub fn error_messages_not_fatal(e: &Evidence) -> Outcome {
    let is_error = |d: &Delivery| {
        event_type(&d.event) == "EVENT_TYPE_SYSTEM_MESSAGE"
            && d.event["payload"]["level"] == "SYSTEM_MESSAGE_LEVEL_ERROR"
    };
    match survives(e, "an error system message", is_error) {
        Ok((at, count)) => Outcome::Kept(format!(
            "{count} error system message(s) from {at} ms; the socket stayed open"
        )),
        Err(outcome) => outcome,
    }
}

/// ERR-2: after an undocumented event type or unknown fields the client keeps its socket.
pub fn unknown_events_ignored(e: &Evidence) -> Outcome {
    let unknown = |d: &Delivery| {
        let kind = event_type(&d.event);
        !KNOWN.contains(&kind)
            || d.event
                .as_object()
                .is_some_and(|o| o.keys().any(|k| !ENVELOPE.contains(&k.as_str())))
    };
    match survives(e, "an unknown event or field", unknown) {
        Ok((at, count)) => Outcome::Kept(format!(
            "{count} unknown event(s) or field(s) from {at} ms; the socket stayed open"
        )),
        Err(outcome) => outcome,
    }
}

const ENVELOPE: &[&str] = &["id", "sequence", "timestamp", "type", "payload", "metadata"];

/// Every server event type spec §6.6 documents.
const KNOWN: &[&str] = &[
    "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN",
    "EVENT_TYPE_USER_MESSAGE",
    "EVENT_TYPE_USER_END_SESSION",
    "EVENT_TYPE_HEARTBEAT",
    "EVENT_TYPE_POLY_AGENT_JOINED",
    "EVENT_TYPE_POLY_AGENT_THINKING",
    "EVENT_TYPE_POLY_AGENT_MESSAGE",
    "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK",
    "EVENT_TYPE_POLY_AGENT_LEFT",
    "EVENT_TYPE_POLY_AGENT_TRIGGERED_HANDOFF",
    "EVENT_TYPE_LIVE_AGENT_JOINED",
    "EVENT_TYPE_LIVE_AGENT_TYPING",
    "EVENT_TYPE_LIVE_AGENT_MESSAGE",
    "EVENT_TYPE_LIVE_AGENT_LEFT",
    "EVENT_TYPE_HANDOFF_ACCEPTED",
    "EVENT_TYPE_HANDOFF_QUEUE_STATUS",
    "EVENT_TYPE_CLIENT_HANDOFF_REQUIRED",
    "EVENT_TYPE_HANDOFF_FAILED",
    "EVENT_TYPE_HANDOFF_TIMEOUT",
    "EVENT_TYPE_SESSION_START",
    "EVENT_TYPE_SESSION_END",
    "EVENT_TYPE_SYSTEM_MESSAGE",
    "EVENT_TYPE_LANGUAGE_CHANGED",
    "EVENT_TYPE_EVENT_BATCH",
];
