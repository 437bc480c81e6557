//! ERR-1 and ERR-2: errors and the unknown do not stop the client. The "conversation goes on"
//! half is each case's expectation after the error (a timeout fails the obligation it
//! serves); this checks the socket.

use mock_server::journal::Closer;

use super::{Delivery, Evidence, Outcome, event_type, is_known_type};
use mock_server::protocol::ServerEvent;

/// What may make a fragile client give up its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// An error `SYSTEM_MESSAGE` (ERR-1's).
    Error,
    /// An undocumented event type or field (ERR-2's).
    Unknown,
}

impl Trigger {
    fn of(d: &Delivery) -> Option<Self> {
        let kind = event_type(&d.event);
        if kind == ServerEvent::SYSTEM_MESSAGE
            && d.event["payload"]["level"] == "SYSTEM_MESSAGE_LEVEL_ERROR"
        {
            return Some(Self::Error);
        }
        let unknown = !is_known_type(kind)
            || d.event
                .as_object()
                .is_some_and(|o| o.keys().any(|k| !ENVELOPE.contains(&k.as_str())));
        unknown.then_some(Self::Unknown)
    }
}

/// The first delivery of kind `trigger`, and whether the client then closed a socket or
/// reconnected on its own before the session ended, right after that kind (when both kinds
/// came, a close is blamed on the one that came last before it).
fn survives(e: &Evidence, what: &str, trigger: Trigger) -> Result<(u64, usize), Outcome> {
    let wanted = |d: &Delivery| Trigger::of(d) == Some(trigger);
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
            .find(|d| event_type(&d.event) == ServerEvent::SESSION_END)
            .map_or(u64::MAX, |d| d.at_ms);
        let connections = session.connections();
        let last_trigger_before = |t: u64| {
            deliveries
                .iter()
                .filter(|d| d.at_ms <= t)
                .filter_map(Trigger::of)
                .next_back()
        };
        if let Some(closed) = connections.iter().find(|c| {
            c.closed_by == Some(Closer::Client)
                && c.closed_ms.is_some_and(|t| {
                    t >= at
                        && t < ended
                        && t < e.exit_ms
                        && !restarted_between(e, at, t)
                        && last_trigger_before(t) == Some(trigger)
                })
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
    match survives(e, "an error system message", Trigger::Error) {
        Ok((at, count)) => Outcome::Kept(format!(
            "{count} error system message(s) from {at} ms; the socket stayed open"
        )),
        Err(outcome) => outcome,
    }
}

/// ERR-2: after an undocumented event type or unknown fields the client keeps its socket, and
/// an undocumented type inside a batch costs nothing else: the batch's other events are shown,
/// as the client shows what batches carry elsewhere.
pub fn unknown_events_ignored(e: &Evidence) -> Outcome {
    let (at, count) = match survives(e, "an unknown event or field", Trigger::Unknown) {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let in_batches = e
        .deliveries()
        .iter()
        .filter(|d| d.in_batch && !is_known_type(event_type(&d.event)))
        .count();
    let mut beside = String::new();
    if let Ok(batch_only) = super::messages::batch_only_messages(e) {
        let flattens = batch_only
            .iter()
            .any(|b| !b.beside_unknown && b.missing.is_none());
        let dropped = batch_only
            .iter()
            .filter(|b| b.beside_unknown)
            .find_map(|b| b.missing.clone());
        if let (true, Some(missing)) = (flattens, dropped) {
            return Outcome::Broken(format!(
                "{missing}: that batch also carried an undocumented event type, and the client shows what other batches carry"
            ));
        }
        let applied = batch_only
            .iter()
            .filter(|b| b.beside_unknown && b.missing.is_none())
            .count();
        if applied > 0 {
            beside = format!("; {applied} message event(s) beside one inside a batch shown");
        }
    }
    Outcome::Kept(format!(
        "{count} unknown event(s) or field(s) from {at} ms ({in_batches} inside batches); the socket stayed open{beside}"
    ))
}

const ENVELOPE: &[&str] = &["id", "sequence", "timestamp", "type", "payload", "metadata"];
