//! RC-1 … RC-5: what the client does when a connection goes away or is refused.

use mock_server::config::Profile;
use mock_server::http_log::{Endpoint, HttpCall};

use super::{Delivery, Evidence, Outcome, sequence};
use crate::cases::Step;
use crate::tolerance::{attempts_ok, backoff_step_ok, first_retry_ok};

/// The reconnect attempts after an unexpected close at `closed_ms`: handshakes to the same
/// session, up to and including the first accepted one. (Strictly after the close: the
/// handshake of a connection dropped as soon as it opened can share its millisecond.)
fn attempts_after<'e>(e: &'e Evidence, session: &str, closed_ms: u64) -> Vec<&'e HttpCall> {
    let mut out = Vec::new();
    for call in e.handshakes_to(session, closed_ms + 1) {
        out.push(call);
        if call.status == 101 {
            break;
        }
    }
    out
}

/// The handshakes to `session` after the close at `closed_ms` made by the app instance that
/// saw it: up to the first that was accepted, and none after an app restart (a restarted
/// app connects at once; its attempts are not a backoff's).
fn attempts_of_instance<'e>(e: &'e Evidence, session: &str, closed_ms: u64) -> Vec<&'e HttpCall> {
    let restarted = restarts(e).into_iter().find(|r| *r > closed_ms);
    let mut attempts = attempts_after(e, session, closed_ms);
    attempts.retain(|a| restarted.is_none_or(|r| a.at_ms < r));
    attempts
}

/// When the app restarted (the driver carried out the `restart` step).
fn restarts(e: &Evidence) -> Vec<u64> {
    e.steps
        .iter()
        .filter(|s| matches!(s.step, Step::Restart) && s.reply == super::StepReply::Ok)
        .map(|s| s.at_ms)
        .collect()
}

/// RC-1: after every unexpected close, a handshake to the same session with its own token,
/// and no new session while that session could still be resumed.
pub fn same_session_after_drop(e: &Evidence) -> Outcome {
    let tokens = e.session_tokens();
    let closes = e.unexpected_closes();
    if closes.is_empty() {
        return Outcome::NotObservable("no connection dropped".into());
    }
    let mut judged = 0;
    for (session, connection) in &closes {
        let closed = connection.closed_ms.unwrap_or_default();
        let attempts = attempts_after(e, session.id(), closed);
        let first_new_session = e
            .http_of(Endpoint::Sessions)
            .into_iter()
            .find(|c| c.status == 200 && c.at_ms > closed)
            .map(|c| c.at_ms);
        let Some(first) = attempts.first() else {
            if let Some(at) = first_new_session {
                return Outcome::Broken(format!(
                    "after the drop at {closed} ms created a new session ({at} ms) instead of reconnecting"
                ));
            }
            if e.end_ms.saturating_sub(closed) < 1_500 {
                continue;
            }
            return Outcome::Broken(format!(
                "never reconnected after the connection dropped at {closed} ms"
            ));
        };
        if let Some(at) = first_new_session.filter(|at| *at < first.at_ms) {
            return Outcome::Broken(format!(
                "after the drop at {closed} ms created a new session ({at} ms) before reconnecting"
            ));
        }
        if first.token.is_some() && first.token != tokens.get(session.id()).cloned() {
            return Outcome::Broken(format!(
                "reconnected at {} ms with another access token than the session's",
                first.at_ms
            ));
        }
        judged += 1;
    }
    if judged == 0 {
        return Outcome::NotObservable("the case ended too soon after the drop".into());
    }
    Outcome::Kept(format!(
        "{judged} unexpected close(s), each followed by a reconnect to the same session with its token"
    ))
}

/// The sequence a handshake's `cursor` names, in the forms the served revision documents:
/// `N` or `seq:N` now, only `seq:N` under 2026-05 (spec §0).
fn cursor_value(raw: Option<&String>, profile: Profile) -> Option<u64> {
    match raw {
        None => Some(0),
        Some(text) => match text.strip_prefix("seq:") {
            Some(digits) => digits.parse().ok(),
            None if profile.accepts_plain_cursor() => text.parse().ok(),
            None => None,
        },
    }
}

/// RC-2: every handshake after a session's first carries the highest sequence delivered
/// before it (after an app restart, 0 too: the new instance may have persisted nothing).
pub fn cursor_on_every_reconnect(e: &Evidence) -> Outcome {
    let restarts = restarts(e);
    let mut judged = Vec::new();
    let mut short = 0;
    for session in &e.sessions {
        let handshakes = e.handshakes_to(session.id(), 0);
        let deliveries = session.deliveries();
        for (i, call) in handshakes.iter().enumerate().skip(1) {
            let before = BeforeReconnect::of(
                e,
                &restarts,
                &deliveries,
                handshakes[i - 1].at_ms,
                call.at_ms,
            );
            match grade_cursor(call, e.case.config.profile, &before) {
                Ok((n, in_flight_short)) => {
                    judged.push(n);
                    if in_flight_short {
                        short += 1;
                    }
                }
                Err(problem) => return Outcome::Broken(problem),
            }
        }
    }
    if judged.is_empty() {
        return Outcome::NotObservable("the client never reconnected".into());
    }
    let lost = match short {
        0 => String::new(),
        n => format!(" ({n} short only of frames in flight when the socket dropped)"),
    };
    Outcome::Kept(format!(
        "{} reconnect(s), cursors {judged:?}, each the highest sequence delivered{lost}",
        judged.len()
    ))
}

/// What had reached the client before a reconnect's handshake, and what an app restarted since
/// the previous handshake showed of it.
struct BeforeReconnect {
    /// The highest sequence delivered.
    highest: u64,
    /// The highest sequence that certainly reached the client.
    surely: u64,
    /// The app restarted since the previous handshake.
    after_restart: bool,
    /// The most messages a view of the restarted app showed.
    restored_count: usize,
    /// The highest sequence among the messages the restarted app showed.
    shown_floor: u64,
}

impl BeforeReconnect {
    /// What stood before the handshake at `at_ms`, the previous one being at `previous_ms`.
    fn of(
        e: &Evidence,
        restarts: &[u64],
        deliveries: &[Delivery],
        previous_ms: u64,
        at_ms: u64,
    ) -> Self {
        let before: Vec<&Delivery> = deliveries.iter().filter(|d| d.at_ms < at_ms).collect();
        let highest = before
            .iter()
            .filter_map(|d| sequence(&d.event))
            .max()
            .unwrap_or(0);
        // What certainly reached the client: frames still in flight when a connection
        // dropped without a close frame may have been lost with it.
        let surely = before
            .iter()
            .filter(|d| !d.in_flight_at_drop)
            .filter_map(|d| sequence(&d.event))
            .max()
            .unwrap_or(0);
        let after_restart = restarts.iter().any(|r| *r <= at_ms && previous_ms < *r);
        // A restarted app that shows the conversation it persisted has seen its sequences:
        // its cursor may lag what reached the dying instance, never what it shows (resuming
        // with cursor 0 then is the stale-cursor bug, not a fresh start).
        let restored_views: Vec<&[crate::contract::ViewMessage]> = restarts
            .iter()
            .filter(|r| **r <= at_ms && previous_ms < **r)
            .flat_map(|r| {
                e.samples
                    .iter()
                    .filter(move |s| s.sent_ms >= *r && s.replied_ms <= at_ms)
            })
            .filter_map(|s| s.view.messages())
            .collect();
        let restored_count = restored_views.iter().map(|v| v.len()).max().unwrap_or(0);
        let restored = restored_views.iter().flat_map(|v| v.iter());
        let shown_floor = restored
            .filter_map(|m| m.message_id.as_deref())
            .filter_map(|id| {
                deliveries
                    .iter()
                    .filter(|d| d.event["payload"]["message_id"].as_str() == Some(id))
                    .filter_map(|d| sequence(&d.event))
                    .max()
            })
            .max()
            .unwrap_or(0);
        BeforeReconnect {
            highest,
            surely,
            after_restart,
            restored_count,
            shown_floor,
        }
    }
}

/// Grades a reconnect handshake's cursor against what stood before it: `Ok` with the cursor
/// and whether it fell short only of frames in flight at a drop, `Err` with what was wrong.
fn grade_cursor(
    call: &HttpCall,
    profile: Profile,
    before: &BeforeReconnect,
) -> Result<(u64, bool), String> {
    let BeforeReconnect {
        highest,
        surely,
        after_restart,
        restored_count,
        shown_floor,
    } = *before;
    let given = cursor_value(call.request.query.get("cursor"), profile);
    match given {
        Some(n) if n == highest => Ok((n, false)),
        Some(0) if after_restart && restored_count > 0 && highest > 0 => Err(format!(
            "after the restart the app showed {restored_count} persisted message(s), yet reconnected at {} ms with cursor 0 (the highest sequence delivered was {highest})",
            call.at_ms
        )),
        Some(0) if after_restart => Ok((0, false)),
        Some(n) if after_restart && (shown_floor..=highest).contains(&n) => Ok((n, false)),
        Some(n) if (surely..highest).contains(&n) => Ok((n, true)),
        Some(n) => Err(format!(
            "reconnected at {} ms with cursor {n}; the highest sequence delivered was {highest}",
            call.at_ms
        )),
        None if !profile.accepts_plain_cursor() => Err(format!(
            "reconnected at {} ms with the cursor `{}`; the {} protocol's cursor is `seq:<n>`, and a server of that revision replays everything for any other form",
            call.at_ms,
            call.request.query.get("cursor").map_or("", String::as_str),
            profile.as_str()
        )),
        None => Err(format!(
            "reconnected at {} ms with the cursor `{}`, which is not a sequence",
            call.at_ms,
            call.request.query.get("cursor").map_or("", String::as_str)
        )),
    }
}

/// RC-3: the first retry about 1 s after the drop, each later delay clearly larger, none over
/// the 30 s cap.
pub fn backoff_grows(e: &Evidence) -> Outcome {
    let mut judged = Vec::new();
    let mut saw_first = false;
    for (session, connection) in e.unexpected_closes() {
        let closed = connection.closed_ms.unwrap_or_default();
        let attempts = attempts_of_instance(e, session.id(), closed);
        let Some(first) = attempts.first() else {
            continue;
        };
        let mut gaps = vec![first.at_ms - closed];
        gaps.extend(attempts.windows(2).map(|w| w[1].at_ms - w[0].at_ms));
        if !first_retry_ok(gaps[0]) {
            return Outcome::Broken(format!(
                "first retry {} ms after the drop at {closed} ms; about 1 s expected",
                gaps[0]
            ));
        }
        saw_first = true;
        for w in gaps.windows(2) {
            let (before, after) = (w[0], w[1]);
            if backoff_step_ok(before, after) {
                continue;
            }
            return Outcome::Broken(if after > 31_000 {
                format!("a delay of {after} ms between attempts, above the 30 s cap")
            } else {
                format!(
                    "delays between attempts {gaps:?} ms: {before} ms, then {after} ms does not grow"
                )
            });
        }
        if gaps.len() >= 2 {
            judged.push(gaps);
        }
    }
    if judged.is_empty() {
        return Outcome::NotObservable(if saw_first {
            "each drop needed one attempt: the first retry came about 1 s after it, growth not visible"
                .into()
        } else {
            "no reconnect after a drop".into()
        });
    }
    Outcome::Kept(format!("delays {judged:?} ms: about 1 s, then growing"))
}

/// RC-4: into refusals, exactly `max_reconnect_attempts` attempts, then the view shows the
/// connection closed.
pub fn gives_up_after_max_attempts(e: &Evidence) -> Outcome {
    let max = u64::from(e.case.config.max_reconnect_attempts);
    let mut judged = 0;
    for (session, connection) in e.unexpected_closes() {
        let closed = connection.closed_ms.unwrap_or_default();
        let attempts = attempts_after(e, session.id(), closed);
        if attempts.len() > attempts_of_instance(e, session.id(), closed).len() {
            continue; // The app restarted before this instance gave up or got back.
        }
        if attempts.iter().any(|a| a.status == 101) {
            continue;
        }
        let count = attempts.len() as u64;
        if count == 0 {
            continue; // Never tried the session again: RC-1's to judge.
        }
        if !attempts_ok(count, max) {
            return Outcome::Broken(format!(
                "{count} attempt(s) after the drop; SESSION_START advertised max_reconnect_attempts {max}"
            ));
        }
        let last = attempts.last().map_or(closed, |a| a.at_ms);
        if e.samples_after(last).all(|s| s.view.connection.is_none()) {
            return Outcome::NotObservable(format!(
                "exactly {max} attempt(s); the view has no `connection` to show the failure"
            ));
        }
        let shows_closed = e
            .samples_after(last)
            .any(|s| s.view.connection == Some(crate::contract::ConnectionState::Closed));
        if !shows_closed {
            return Outcome::Broken(format!(
                "made the {max} attempt(s) but never showed the connection closed"
            ));
        }
        // Giving up means surfacing the error and letting the user choose: a session the
        // client opens by itself afterwards is not giving up (spec §3.6).
        let next_start = e.starts().into_iter().find(|s| *s > last);
        if let Some(created) = e
            .http_of(Endpoint::Sessions)
            .into_iter()
            .find(|c| c.at_ms > last && next_start.is_none_or(|s| c.at_ms < s))
        {
            return Outcome::Broken(format!(
                "made the {max} attempt(s), showed the connection closed, then created a new session by itself at {} ms (the user starts a new one)",
                created.at_ms
            ));
        }
        judged += 1;
    }
    if judged == 0 {
        return Outcome::NotObservable(
            "no drop was followed by reconnect attempts that were all refused".into(),
        );
    }
    Outcome::Kept(format!(
        "exactly {max} attempt(s) into refusals, then the connection shown closed"
    ))
}

/// RC-5: after a 404 a new session; after a 401 a token minted after it, then a new session
/// with that token.
pub fn new_session_after_404_or_401(e: &Evidence) -> Outcome {
    let refusals: Vec<&HttpCall> = e
        .http_of(Endpoint::WebSocket)
        .into_iter()
        .filter(|c| matches!(c.status, 404 | 401) && c.session_id.is_some())
        .collect();
    // The first refusal of each run of refusals for one session.
    let mut judged = Vec::new();
    let mut seen_sessions: Vec<&str> = Vec::new();
    for refusal in refusals {
        let Some(session) = refusal.session_id.as_deref() else {
            continue;
        };
        if seen_sessions.contains(&session) || e.session(session).is_none() {
            continue;
        }
        seen_sessions.push(session);
        let created = e
            .http_of(Endpoint::Sessions)
            .into_iter()
            .find(|c| c.status == 200 && c.at_ms >= refusal.at_ms);
        let Some(created) = created else {
            return Outcome::Broken(format!(
                "after a {} on the handshake at {} ms, never created a new session",
                refusal.status, refusal.at_ms
            ));
        };
        if refusal.status == 401 {
            let fresh = e
                .http_of(Endpoint::AccessToken)
                .into_iter()
                .any(|t| t.status == 200 && t.at_ms >= refusal.at_ms && t.token == created.token);
            if !fresh {
                return Outcome::Broken(format!(
                    "after a 401 at {} ms created the new session with a token minted before it",
                    refusal.at_ms
                ));
            }
        }
        let connected = created.session_id.as_deref().is_some_and(|id| {
            e.handshakes_to(id, created.at_ms)
                .iter()
                .any(|c| c.status == 101)
        });
        if !connected {
            return Outcome::Broken(format!(
                "after a {} created session {} but never connected to it",
                refusal.status,
                created.session_id.as_deref().unwrap_or("?")
            ));
        }
        judged.push(refusal.status);
    }
    if judged.is_empty() {
        return Outcome::NotObservable("no handshake was refused with 404 or 401".into());
    }
    Outcome::Kept(format!(
        "after {judged:?}: a new session (with a fresh token after 401), connected"
    ))
}
