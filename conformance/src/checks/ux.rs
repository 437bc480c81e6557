//! UX-1 … UX-6: what the app shows, judged over the view timeline against what the server
//! sent and when.

use serde_json::Value;

use super::{Delivery, Evidence, Outcome, SessionRecord, StepReply, event_type, sequence};
use crate::cases::{Step, shorten};
use crate::contract::{ConnectionState, HandoffState};
use mock_server::protocol::ServerEvent;

/// How long after the message that ends a typing window a view may still show it (the client
/// has to receive and process the message first).
const TYPING_SLACK_MS: u64 = 500;

/// Windows in which showing the agent (`live == false`) or the live agent typing is
/// justified: from the event that starts it to the event that ends it.
fn typing_windows(deliveries: &[Delivery], live: bool) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut open: Option<u64> = None;
    for d in deliveries.iter().filter(|d| !d.in_batch) {
        let kind = event_type(&d.event);
        let (starts, ends) = if live {
            let state = d.event["payload"]["state"].as_str().unwrap_or_default();
            (
                kind == ServerEvent::LIVE_AGENT_TYPING && state != "TYPING_STATE_STOPPED",
                matches!(
                    kind,
                    ServerEvent::LIVE_AGENT_MESSAGE
                        | ServerEvent::LIVE_AGENT_LEFT
                        | ServerEvent::SESSION_END
                ) || (kind == ServerEvent::LIVE_AGENT_TYPING && state == "TYPING_STATE_STOPPED"),
            )
        } else {
            (
                kind == ServerEvent::POLY_AGENT_THINKING,
                matches!(
                    kind,
                    ServerEvent::POLY_AGENT_MESSAGE
                        | ServerEvent::POLY_AGENT_MESSAGE_CHUNK
                        | ServerEvent::SYSTEM_MESSAGE
                        | ServerEvent::POLY_AGENT_LEFT
                        | ServerEvent::POLY_AGENT_TRIGGERED_HANDOFF
                        | ServerEvent::SESSION_END
                ),
            )
        };
        if starts && open.is_none() {
            open = Some(d.at_ms);
        } else if ends && let Some(start) = open.take() {
            out.push((start, d.at_ms));
        }
    }
    if let Some(start) = open {
        out.push((start, u64::MAX));
    }
    out
}

/// UX-1: typing shown while the agent thinks (or the live agent types), and never when the
/// evidence cannot justify it.
pub fn typing_indicator(e: &Evidence) -> Outcome {
    if e.samples.is_empty() {
        return Outcome::NotObservable("the driver gave no view".into());
    }
    if e.samples.iter().all(|s| s.view.typing.is_none()) {
        return Outcome::NotObservable("the view has no `typing`".into());
    }
    let deliveries = e.deliveries();
    let mut shown = Vec::new();
    for (live, who) in [(false, "the agent"), (true, "the live agent")] {
        let windows = typing_windows(&deliveries, live);
        let typing = |s: &super::Sample| {
            s.view
                .typing
                .is_some_and(|t| if live { t.live_agent } else { t.agent })
        };
        for sample in e.samples.iter().filter(|s| typing(s)) {
            let justified = windows.iter().any(|(start, end)| {
                sample.replied_ms >= *start && sample.sent_ms <= end.saturating_add(TYPING_SLACK_MS)
            });
            if !justified {
                let since = windows
                    .iter()
                    .filter(|(_, end)| *end <= sample.sent_ms)
                    .map(|(_, end)| sample.sent_ms - end)
                    .min();
                let why = match since {
                    Some(ms) => format!("{ms} ms after it last stopped"),
                    None => "before it had started".into(),
                };
                return Outcome::Broken(format!(
                    "the view at {} ms shows {who} typing, {why}",
                    sample.replied_ms
                ));
            }
        }
        for (start, end) in windows.iter().filter(|(s, e)| e - s >= 400) {
            let inside: Vec<_> = e
                .samples
                .iter()
                .filter(|s| s.sent_ms >= *start && s.replied_ms <= *end)
                .collect();
            if inside.is_empty() {
                continue;
            }
            if !inside.iter().any(|s| typing(s)) {
                return Outcome::Broken(format!(
                    "{who} was typing from {start} to {end} ms; none of the {} views then shows it",
                    inside.len()
                ));
            }
            shown.push(format!("{who} for {} ms", end - start));
        }
    }
    if shown.is_empty() {
        return Outcome::NotObservable("no typing period long enough to sample".into());
    }
    Outcome::Kept(format!(
        "shown while {} typed, and at no other time",
        shown.join(", ")
    ))
}

/// UX-2: the suggestions the server sent are shown in order, and a tap sends the exact text.
pub fn suggestions(e: &Evidence) -> Outcome {
    let taps: Vec<(u64, &str, &super::StepReply)> = e
        .steps
        .iter()
        .filter_map(|s| match &s.step {
            Step::TapSuggestion(text) => Some((s.at_ms, text.as_str(), &s.reply)),
            _ => None,
        })
        .collect();
    if taps.is_empty() {
        return Outcome::NotObservable("the user tapped no suggestion".into());
    }
    let messages = e.server_messages();
    let Some(offered) = messages.iter().find(|m| !m.suggestions.is_empty()) else {
        return Outcome::NotObservable("no message with suggestions reached the client".into());
    };
    let rendered = e.samples.iter().any(|s| {
        s.view.messages().is_some_and(|ms| {
            ms.iter().any(|m| {
                (m.message_id.is_some() && m.message_id == offered.message_id
                    || m.text == offered.text)
                    && m.suggestions == offered.suggestions
            })
        })
    });
    if !rendered {
        return Outcome::Broken(format!(
            "the suggestions {:?} of `{}` are never shown",
            offered.suggestions,
            shorten(&offered.text)
        ));
    }
    for (at, text, reply) in taps {
        if *reply == super::StepReply::Unsupported {
            return Outcome::NotObservable("the driver does not support tap_suggestion".into());
        }
        let sent = e
            .sessions
            .iter()
            .flat_map(|s| s.sent_of(super::USER_MESSAGE))
            .find(|s| s.at_ms >= at);
        match sent.as_ref().and_then(|s| s.text_payload()) {
            Some(t) if t == text => {}
            Some(t) => {
                return Outcome::Broken(format!("tapping `{text}` sent `{}`", shorten(t)));
            }
            None => return Outcome::Broken(format!("tapping `{text}` sent nothing")),
        }
    }
    Outcome::Kept(format!(
        "suggestions {:?} shown in order; the tap sent its exact text",
        offered.suggestions
    ))
}

/// UX-3: the handoff shown as it happens, the queue position while queued, the live agent
/// once joined.
pub fn handoff_progress(e: &Evidence) -> Outcome {
    let deliveries = e.deliveries();
    let at = |kind: &str| {
        deliveries
            .iter()
            .find(|d| event_type(&d.event) == kind)
            .map(|d| d.at_ms)
    };
    let Some(triggered) = at(ServerEvent::POLY_AGENT_TRIGGERED_HANDOFF) else {
        return Outcome::NotObservable("no handoff happened".into());
    };
    if e.samples.iter().all(|s| s.view.handoff.is_none()) {
        return Outcome::NotObservable("the view has no `handoff`".into());
    }
    let joined = at(ServerEvent::LIVE_AGENT_JOINED).unwrap_or(u64::MAX);
    let progressing = e
        .samples
        .iter()
        .filter(|s| s.replied_ms >= triggered && s.sent_ms <= joined)
        .any(|s| {
            matches!(
                s.view.handoff,
                Some(HandoffState::Triggered | HandoffState::Accepted)
            )
        });
    if !progressing {
        return Outcome::Broken(
            "never showed the handoff as triggered or accepted before the live agent joined".into(),
        );
    }
    let positions: Vec<(u64, &Value)> = deliveries
        .iter()
        .filter(|d| event_type(&d.event) == ServerEvent::HANDOFF_QUEUE_STATUS)
        .map(|d| (d.at_ms, &d.event["payload"]))
        .collect();
    if let Some(wrong) = queue_not_shown(e, &positions, joined) {
        return wrong;
    }
    if joined != u64::MAX
        && let Some(problem) = live_not_shown(e, &deliveries, joined)
    {
        return Outcome::Broken(problem);
    }
    let outcomes = match handoff_endings(e, &deliveries) {
        Ok(outcomes) => outcomes,
        Err(problem) => return Outcome::Broken(problem),
    };
    let ending = if joined != u64::MAX {
        ", then live".to_owned()
    } else if outcomes.is_empty() {
        String::new()
    } else {
        format!(", then {}", outcomes.join(", "))
    };
    Outcome::Kept(format!(
        "handoff shown as it progressed, {} queue update(s) shown{ending}",
        positions.len()
    ))
}

/// The queue `positions` the server sent (when, payload) never shown while queued (before the
/// live agent `joined`), or a view without `queue` to tell. `Some` is the verdict.
fn queue_not_shown(e: &Evidence, positions: &[(u64, &Value)], joined: u64) -> Option<Outcome> {
    let (first, _) = positions.first()?;
    if e.samples.iter().all(|s| s.view.queue.is_none()) {
        return Some(Outcome::NotObservable("the view has no `queue`".into()));
    }
    let queue_shown = e
        .samples
        .iter()
        .filter(|s| s.replied_ms >= *first && s.sent_ms <= joined.saturating_add(300))
        .any(|s| {
            let Some(Some(queue)) = &s.view.queue else {
                return false;
            };
            positions.iter().any(|(_, p)| {
                queue.position_in_queue == p["position_in_queue"].as_u64()
                    && queue.queue_name.as_deref() == p["queue_name"].as_str()
            })
        });
    if queue_shown {
        return None;
    }
    Some(Outcome::Broken(format!(
        "never showed the queue position ({:?}) while queued",
        positions
            .iter()
            .map(|(_, p)| p["position_in_queue"].clone())
            .collect::<Vec<_>>()
    )))
}

/// The handoff never shown live with the agent who joined at `joined`. `Some` says so.
fn live_not_shown(e: &Evidence, deliveries: &[Delivery], joined: u64) -> Option<String> {
    let name = deliveries
        .iter()
        .find(|d| event_type(&d.event) == ServerEvent::LIVE_AGENT_JOINED)
        .and_then(|d| d.event["payload"]["agent"]["name"].as_str())
        .unwrap_or_default();
    let live_shown = e.samples_after(joined).any(|s| {
        s.view.handoff == Some(HandoffState::Live)
            && s.view
                .live_agent
                .as_ref()
                .is_none_or(|l| l.as_ref().is_some_and(|l| l.name == name))
    });
    (!live_shown)
        .then(|| format!("never showed the handoff live with {name} after LIVE_AGENT_JOINED"))
}

/// The handoffs that did not happen, each shown as such (spec §8.3): `Ok` with the states
/// shown, `Err` with the first one the view never showed.
fn handoff_endings(e: &Evidence, deliveries: &[Delivery]) -> Result<Vec<String>, String> {
    // A handoff that does not happen is shown as such (spec §8.3): failed, or timed out.
    let mut outcomes = Vec::new();
    for (kind, state) in [
        (ServerEvent::HANDOFF_FAILED, HandoffState::Failed),
        (ServerEvent::HANDOFF_TIMEOUT, HandoffState::Timeout),
    ] {
        for failed in deliveries.iter().filter(|d| event_type(&d.event) == kind) {
            let next_trigger = deliveries
                .iter()
                .filter(|d| event_type(&d.event) == ServerEvent::POLY_AGENT_TRIGGERED_HANDOFF)
                .map(|d| d.at_ms)
                .find(|at| *at > failed.at_ms)
                .unwrap_or(u64::MAX);
            let shown = e
                .samples_after(failed.at_ms)
                .filter(|s| s.sent_ms < next_trigger)
                .any(|s| s.view.handoff == Some(state));
            if !shown {
                return Err(format!(
                    "{} arrived at {} ms; the view never shows the handoff {state:?}",
                    kind.trim_start_matches("EVENT_TYPE_"),
                    failed.at_ms
                ));
            }
            outcomes.push(format!("{state:?}"));
        }
    }
    Ok(outcomes)
}

/// UX-4: on `SESSION_END` the view shows the reason, the client closes its socket itself, and
/// nothing reconnects or starts a session until the user does.
pub fn session_end(e: &Evidence) -> Outcome {
    let mut judged = Vec::new();
    // Messages the user tried to send once the app knew the session was over.
    let mut refused = 0;
    // An end the client never applied because it came only in a batch is MSG-1's.
    let unapplied = super::messages::unapplied_batch_end(e);
    // The view has no `ended` (contract §4: not observable); the wire side is still judged.
    let mut blind = false;
    for session in &e.sessions {
        let Some(end) = session
            .deliveries()
            .into_iter()
            .find(|d| event_type(&d.event) == ServerEvent::SESSION_END)
        else {
            continue;
        };
        let reason = end.event["payload"]["reason"].as_str().unwrap_or_default();
        if unapplied.as_ref().is_some_and(|(at, _)| *at == end.at_ms) {
            continue;
        }
        match end_shown(e, end.at_ms, reason) {
            Ok(true) => {}
            Ok(false) => blind = true,
            Err(problem) => return Outcome::Broken(problem),
        }
        let next_start = e.starts().into_iter().find(|s| *s > end.at_ms);
        if let Some(problem) = did_not_leave(e, session, end.at_ms, next_start) {
            return Outcome::Broken(problem);
        }
        match late_sends_refused(e, end.at_ms, reason, next_start) {
            Ok(n) => refused += n,
            Err(problem) => return Outcome::Broken(problem),
        }
        let still_open = e
            .samples_after(end.at_ms + 1_200)
            .filter(|s| next_start.is_none_or(|n| s.replied_ms < n))
            .any(|s| s.view.connection == Some(ConnectionState::Open));
        if still_open {
            return Outcome::Broken(
                "still shows the connection open 1.2 s after SESSION_END".into(),
            );
        }
        judged.push(reason.to_owned());
    }
    session_end_summary(&judged, unapplied.is_some(), blind, refused)
}

/// Whether the view shows the session ended at `end_at` with its `reason`: `Ok(false)` when
/// the view has no `ended` to tell, `Err` when it never shows it.
fn end_shown(e: &Evidence, end_at: u64, reason: &str) -> Result<bool, String> {
    let shows = e.samples_after(end_at).any(|s| {
        s.view
            .ended
            .as_ref()
            .is_some_and(|ended| ended.as_ref().is_some_and(|x| x.reason == reason))
    });
    let observable = e.samples_after(end_at).any(|s| s.view.ended.is_some());
    if !observable {
        return Ok(false);
    }
    if !shows {
        return Err(format!(
            "SESSION_END ({reason}) arrived at {end_at} ms; the view never shows it ended with that reason"
        ));
    }
    Ok(true)
}

/// The client kept its socket to the session that ended at `end_at` open, connected to it
/// again, or started a new session on its own (before the user's `next_start`). `Some` says
/// which.
fn did_not_leave(
    e: &Evidence,
    session: &SessionRecord,
    end_at: u64,
    next_start: Option<u64>,
) -> Option<String> {
    let connections = session.connections();
    // The mock closes with 1000 when the client has not closed within its grace; with no
    // grace it closes at once, and a scripted drop is not the client's doing either.
    let grace = e.case.config.session_end_close_grace_ms;
    if let Some(c) = connections
        .iter()
        .find(|c| c.closed_ms.is_some_and(|at| at >= end_at) && c.opened_ms <= end_at)
        && c.closed_by == Some(mock_server::journal::Closer::Server)
        && c.close_code == Some(1000)
        && grace > 0
    {
        return Some(format!(
            "did not close its socket after SESSION_END; the mock closed it with {} {} ms later",
            c.close_code.unwrap_or_default(),
            c.closed_ms.unwrap_or_default() - end_at
        ));
    }
    if let Some(again) = e.handshakes_to(session.id(), end_at + 1).first() {
        return Some(format!(
            "connected to the ended session again at {} ms",
            again.at_ms
        ));
    }
    let created = e
        .http_of(mock_server::http_log::Endpoint::Sessions)
        .into_iter()
        .find(|c| c.at_ms > end_at && next_start.is_none_or(|s| c.at_ms < s))?;
    Some(format!(
        "started a new session at {} ms on its own after SESSION_END",
        created.at_ms
    ))
}

/// The `send` steps after the session ended at `end_at` (for `reason`), before the user's
/// `next_start`: `Ok` with how many were refused, `Err` when one was accepted.
fn late_sends_refused(
    e: &Evidence,
    end_at: u64,
    reason: &str,
    next_start: Option<u64>,
) -> Result<usize, String> {
    // "Disable input": once the view shows the end (or 1.2 s after it arrived, for a view
    // without `ended`), a `send` must be refused, not queued for a conversation that is over.
    // Ordered by sample count, not by millisecond: the message whose answer ended the
    // session can begin in the very millisecond the next view shows the end.
    let shown_at = e
        .samples
        .iter()
        .position(|s| s.sent_ms >= end_at && s.view.ended.as_ref().is_some_and(Option::is_some));
    let late_sends = e.steps.iter().filter(|s| {
        let after_end = match shown_at {
            Some(i) => s.samples_before > i,
            None => s.at_ms >= end_at + 1_200,
        };
        matches!(s.step, Step::Send(_)) && after_end && next_start.is_none_or(|n| s.at_ms < n)
    });
    let mut refused = 0;
    for late in late_sends {
        match &late.reply {
            StepReply::Ok => {
                return Err(format!(
                    "accepted a message at {} ms, after SESSION_END ({reason}) at {end_at} ms: input must be disabled once the session is over",
                    late.at_ms
                ));
            }
            StepReply::Failed(_) => refused += 1,
            StepReply::Unsupported | StepReply::NotRun(_) => {}
        }
    }
    Ok(refused)
}

/// UX-4's verdict once no session's end broke anything: the `judged` ends' reasons, whether an
/// end came only in a batch the client never applied, whether the view was `blind` to `ended`,
/// and how many late messages were `refused`.
fn session_end_summary(judged: &[String], unapplied: bool, blind: bool, refused: usize) -> Outcome {
    if judged.is_empty() {
        if unapplied {
            return Outcome::NotObservable(
                "the only SESSION_END came inside a batch the client never applied (MSG-1's)"
                    .into(),
            );
        }
        return Outcome::NotObservable("no session ended".into());
    }
    if blind {
        return Outcome::NotObservable(format!(
            "the view has no `ended`; on the wire the client closed its socket after {judged:?} and stayed away"
        ));
    }
    Outcome::Kept(format!(
        "ended {judged:?}: shown with the reason, socket closed by the client, no reconnect{}",
        if refused > 0 {
            format!(", {refused} message(s) refused afterwards")
        } else {
            String::new()
        }
    ))
}

/// UX-5: the client-managed handoff shown with its reason and queue.
pub fn client_handoff(e: &Evidence) -> Outcome {
    let Some(required) = e
        .deliveries()
        .into_iter()
        .find(|d| event_type(&d.event) == ServerEvent::CLIENT_HANDOFF_REQUIRED)
    else {
        return Outcome::NotObservable("no CLIENT_HANDOFF_REQUIRED arrived".into());
    };
    if e.samples.iter().all(|s| s.view.client_handoff.is_none()) {
        return Outcome::NotObservable("the view has no `client_handoff`".into());
    }
    let payload = &required.event["payload"];
    let (reason, queue) = (
        payload["reason"].as_str().unwrap_or_default(),
        payload["queue_name"].as_str().unwrap_or_default(),
    );
    let routed = e.samples_after(required.at_ms).any(|s| {
        s.view.handoff.is_none_or(|h| h == HandoffState::ClientRequired)
            && matches!(&s.view.client_handoff, Some(Some(c)) if c.reason == reason && c.queue_name == queue)
    });
    if routed {
        Outcome::Kept(format!("shows the handoff to `{queue}` ({reason})"))
    } else {
        Outcome::Broken(format!(
            "never shows client_required with reason {reason} and queue `{queue}`"
        ))
    }
}

/// UX-6: the language shown is the latest `LANGUAGE_CHANGED` by sequence, however they
/// arrived.
pub fn language(e: &Evidence) -> Outcome {
    let changes: Vec<Delivery> = e
        .deliveries()
        .into_iter()
        .filter(|d| event_type(&d.event) == ServerEvent::LANGUAGE_CHANGED)
        .collect();
    let Some(latest) = changes.iter().max_by_key(|d| sequence(&d.event)) else {
        if !e.case.config.profile.has_language_changed() {
            return Outcome::NotObservable(format!(
                "the {} protocol has no LANGUAGE_CHANGED (added 2026-06-12)",
                e.case.config.profile.as_str()
            ));
        }
        return Outcome::NotObservable("no LANGUAGE_CHANGED arrived".into());
    };
    let code = latest.event["payload"]["language_code"]
        .as_str()
        .unwrap_or_default();
    // The conversation's last view: a client that moved on to a new session starts afresh.
    let Some(view) = e.conversation_view() else {
        return Outcome::NotObservable("the driver gave no view".into());
    };
    match &view.language {
        None => Outcome::NotObservable("the view has no `language`".into()),
        Some(Some(shown)) if shown == code => Outcome::Kept(format!(
            "shows {code}, the latest of {} LANGUAGE_CHANGED deliveries",
            changes.len()
        )),
        Some(shown) => Outcome::Broken(format!(
            "shows {shown:?}; the latest LANGUAGE_CHANGED (sequence {}) says {code}",
            sequence(&latest.event).unwrap_or_default()
        )),
    }
}
