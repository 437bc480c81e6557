//! Checks of what the client did on the wire (the mock's journal).

use mock_server::journal::{Closer, JournalEvent};
use mock_server::protocol::ClientEvent;

use super::{Evidence, Outcome};

fn journal_or_nothing(e: &Evidence) -> Result<&[mock_server::journal::JournalEntry], Outcome> {
    e.first()
        .ok_or_else(|| Outcome::Broken("the client created no session".into()))
}

macro_rules! need {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(outcome) => return outcome,
        }
    };
}

/// WS-1: a session journal with an accepted handshake proves both parameters were right.
pub fn opens_the_socket_with_both_parameters(e: &Evidence) -> Outcome {
    let journal = need!(journal_or_nothing(e));
    if Evidence::connects(journal).is_empty() {
        return Outcome::Broken("no accepted WebSocket handshake for the session".into());
    }
    Outcome::Kept
}

/// WS-2: no join sent before the history arrived. The case holds the history back for a
/// moment (`replay_delay_ms`), so an early join is caught in the act.
pub fn joins_after_the_history(e: &Evidence) -> Outcome {
    let journal = need!(journal_or_nothing(e));
    let joins = Evidence::sent_of(journal, ClientEvent::REQUEST_POLY_AGENT_JOIN);
    if joins.is_empty() {
        return Outcome::Broken("never sent REQUEST_POLY_AGENT_JOIN".into());
    }
    if joins.iter().any(|j| j.before_history) {
        Outcome::Broken("sent the join before the history arrived".into())
    } else {
        Outcome::Kept
    }
}

/// WS-3: exactly one join in the first session.
pub fn joins_a_new_session_once(e: &Evidence) -> Outcome {
    let journal = need!(journal_or_nothing(e));
    match Evidence::sent_of(journal, ClientEvent::REQUEST_POLY_AGENT_JOIN).len() {
        1 => Outcome::Kept,
        0 => Outcome::Broken("never joined".into()),
        n => Outcome::Broken(format!("joined {n} times")),
    }
}

/// WS-4: no join on a connection after the first.
pub fn does_not_rejoin_on_reconnect(e: &Evidence) -> Outcome {
    let journal = need!(journal_or_nothing(e));
    let connects = Evidence::connects(journal);
    if connects.len() < 2 {
        return Outcome::NotObservable("the client never reconnected".into());
    }
    let first_conn = connects[0].1;
    let rejoins = Evidence::sent_of(journal, ClientEvent::REQUEST_POLY_AGENT_JOIN)
        .into_iter()
        .filter(|s| s.conn != first_conn)
        .count();
    if rejoins == 0 {
        Outcome::Kept
    } else {
        Outcome::Broken(format!(
            "sent the join again after reconnecting ({rejoins}×)"
        ))
    }
}

/// WS-5 and WS-6: every frame decoded, none carried server-assigned fields.
pub fn sends_only_valid_client_frames(e: &Evidence) -> Outcome {
    for (_, journal) in &e.sessions {
        for sent in Evidence::sent(journal) {
            if let Some(error) = sent.error {
                return Outcome::Broken(format!("sent a frame the server rejected: {error}"));
            }
            if let Some(frame) = &sent.frame
                && let Some(field) = ["id", "sequence", "timestamp"]
                    .into_iter()
                    .find(|f| frame.get(f).is_some())
            {
                return Outcome::Broken(format!("sent `{field}`, which the server assigns"));
            }
        }
    }
    Outcome::Kept
}

/// HB-1: heartbeats were sent.
pub fn sends_heartbeats(e: &Evidence) -> Outcome {
    let journal = need!(journal_or_nothing(e));
    if Evidence::sent_of(journal, ClientEvent::HEARTBEAT).is_empty() {
        Outcome::Broken("sent no heartbeat".into())
    } else {
        Outcome::Kept
    }
}

/// HB-2: gaps between heartbeats match the advertised interval (the case advertises 1 s).
pub fn heartbeats_at_the_advertised_interval(e: &Evidence) -> Outcome {
    let journal = need!(journal_or_nothing(e));
    let beats: Vec<u64> = Evidence::sent_of(journal, ClientEvent::HEARTBEAT)
        .into_iter()
        .map(|s| s.at_ms)
        .collect();
    if beats.len() < 2 {
        return Outcome::Broken(format!(
            "{} heartbeat(s) in a case advertising a 1 s interval",
            beats.len()
        ));
    }
    let mut gaps: Vec<u64> = beats.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    if (500..=1_500).contains(&median) {
        Outcome::Kept
    } else {
        Outcome::Broken(format!(
            "median heartbeat gap {median} ms for an advertised 1000 ms"
        ))
    }
}

/// RC-1: one session, reconnected.
pub fn reconnects_to_the_same_session(e: &Evidence) -> Outcome {
    let journal = need!(journal_or_nothing(e));
    if e.sessions.len() > 1 {
        return Outcome::Broken(format!(
            "created {} sessions instead of reconnecting",
            e.sessions.len()
        ));
    }
    if Evidence::connects(journal).len() < 2 {
        return Outcome::Broken("did not reconnect after the drop".into());
    }
    Outcome::Kept
}

/// RC-2: the reconnect's cursor is the highest sequence the client had received.
pub fn reconnects_with_the_last_cursor(e: &Evidence) -> Outcome {
    let journal = need!(journal_or_nothing(e));
    let connects = Evidence::connects(journal);
    let Some((_, second_conn, cursor)) = connects.get(1).cloned() else {
        return Outcome::NotObservable("the client never reconnected".into());
    };
    // Everything before the reconnect's handshake.
    let before = journal
        .iter()
        .position(|x| matches!(&x.event, JournalEvent::Handshake { conn: Some(c), .. } if *c == second_conn))
        .unwrap_or(journal.len());
    let highest = Evidence::delivered(&journal[..before])
        .into_iter()
        .flat_map(|(_, frame)| {
            let mut all = vec![frame["sequence"].as_u64()];
            if let Some(events) = frame["payload"]["events"].as_array() {
                all.extend(events.iter().map(|x| x["sequence"].as_u64()));
            }
            all
        })
        .flatten()
        .max()
        .unwrap_or(0);
    let given = cursor
        .as_deref()
        .map(|c| c.trim_start_matches("seq:").parse::<u64>().ok());
    match given {
        Some(Some(n)) if n == highest => Outcome::Kept,
        Some(Some(n)) => Outcome::Broken(format!(
            "cursor={n}, but the highest sequence delivered was {highest}"
        )),
        _ => Outcome::Broken(format!(
            "no usable cursor (highest sequence delivered: {highest})"
        )),
    }
}

/// RC-5: after a 404, a new session was created (with a token of its own: AUTH-3).
pub fn starts_over_after_session_not_found(e: &Evidence) -> Outcome {
    if e.sessions.len() < 2 {
        return Outcome::Broken("did not create a new session after `session not found`".into());
    }
    Outcome::Kept
}

/// AUTH-3: every session's journal holds the access-token call of its own token.
pub fn fresh_token_per_session(e: &Evidence) -> Outcome {
    for (summary, journal) in &e.sessions {
        let own_token = journal.iter().any(|x| matches!(&x.event, JournalEvent::Http { endpoint, .. } if endpoint == "/api/v1/access-token"));
        if !own_token {
            return Outcome::Broken(format!(
                "session {} was created with a token used before",
                summary.session_id
            ));
        }
    }
    Outcome::Kept
}

/// UX-4: after SESSION_END, the client closed and did not connect again.
pub fn stops_after_session_end(e: &Evidence) -> Outcome {
    let journal = need!(journal_or_nothing(e));
    let Some(end_at) = Evidence::received(journal)
        .into_iter()
        .find(|(_, _, f)| f["type"] == "EVENT_TYPE_SESSION_END")
        .map(|(at, _, _)| at)
    else {
        return Outcome::NotObservable("the session never ended".into());
    };
    let reconnects = Evidence::connects(journal)
        .into_iter()
        .filter(|(at, _, _)| *at > end_at)
        .count();
    if reconnects > 0 {
        return Outcome::Broken(format!("reconnected {reconnects}× after SESSION_END"));
    }
    if let Some(view) = &e.view
        && view.ended.clone().flatten().is_none()
        && view.ended.is_some()
    {
        return Outcome::Broken("the view does not show the end".into());
    }
    Outcome::Kept
}

/// ERR-1 / ERR-2: the client did not close the socket itself before the session ended.
pub fn keeps_the_socket_open(e: &Evidence) -> Outcome {
    let journal = need!(journal_or_nothing(e));
    let client_close = journal.iter().find_map(|x| match &x.event {
        JournalEvent::Close {
            by: Closer::Client,
            code,
            ..
        } => Some(*code),
        _ => None,
    });
    let ended = Evidence::received(journal)
        .iter()
        .any(|(_, _, f)| f["type"] == "EVENT_TYPE_SESSION_END");
    match client_close {
        Some(code) if !ended => Outcome::Broken(format!(
            "closed the socket itself (code {code:?}) mid-conversation"
        )),
        _ => Outcome::Kept,
    }
}

/// WS-7: nothing the client sent was over the size limit.
pub fn keeps_frames_within_the_size_limit(e: &Evidence) -> Outcome {
    for (_, journal) in &e.sessions {
        if let Some(sent) = Evidence::sent(journal).into_iter().find(|s| {
            s.error
                .as_deref()
                .is_some_and(|err| err.starts_with("Message too large"))
        }) {
            return Outcome::Broken(format!(
                "sent a frame over the advertised limit at {} ms",
                sent.at_ms
            ));
        }
    }
    Outcome::Kept
}

/// MSG-5: the lost message (`three`) was sent again with the same `client_event_id`.
pub fn resends_unechoed_messages(e: &Evidence) -> Outcome {
    let journal = need!(journal_or_nothing(e));
    let tries: Vec<_> = Evidence::sent_of(journal, ClientEvent::USER_MESSAGE)
        .into_iter()
        .filter(|s| {
            s.frame
                .as_ref()
                .is_some_and(|f| f["payload"]["text"] == "three")
        })
        .collect();
    match tries.as_slice() {
        [] => Outcome::NotObservable("the message was never sent".into()),
        [_] => Outcome::Broken("a message with no echo was never sent again".into()),
        [first, second, ..] => {
            let id = |s: &super::Sent| {
                s.frame
                    .as_ref()
                    .map(|f| f["metadata"]["custom"]["client_event_id"].clone())
            };
            if id(first) != id(second) || id(first).is_none_or(|v| v.is_null()) {
                Outcome::Broken(
                    "the resend does not carry the same metadata.custom.client_event_id".into(),
                )
            } else {
                Outcome::Kept
            }
        }
    }
}

/// Handshake attempts after the first connection dropped: accepted and refused, with times.
fn attempts_after_drop(journal: &[mock_server::journal::JournalEntry]) -> Option<(u64, Vec<u64>)> {
    let dropped = journal.iter().find_map(|x| match &x.event {
        JournalEvent::Close {
            code: None,
            by: Closer::Server,
            ..
        } => Some(x.at_ms),
        _ => None,
    })?;
    let attempts = journal
        .iter()
        .filter(|x| x.at_ms >= dropped && matches!(x.event, JournalEvent::Handshake { .. }))
        .map(|x| x.at_ms)
        .collect();
    Some((dropped, attempts))
}

/// RC-3: the first retry about 1 s after the drop, later ones further apart.
pub fn backs_off_between_reconnects(e: &Evidence) -> Outcome {
    let journal = need!(journal_or_nothing(e));
    let Some((dropped, attempts)) = attempts_after_drop(journal) else {
        return Outcome::NotObservable("no drop happened".into());
    };
    if attempts.len() < 2 {
        return Outcome::NotObservable(format!(
            "{} reconnect attempt(s): too few to judge",
            attempts.len()
        ));
    }
    let mut gaps = vec![attempts[0] - dropped];
    gaps.extend(attempts.windows(2).map(|w| w[1] - w[0]));
    if gaps[0] < 500 {
        return Outcome::Broken(format!(
            "first retry {} ms after the drop (about 1 s expected)",
            gaps[0]
        ));
    }
    if let Some(w) = gaps.windows(2).find(|w| w[1] + 250 < w[0]) {
        return Outcome::Broken(format!("delays shrink ({} ms, then {} ms)", w[0], w[1]));
    }
    if gaps.iter().any(|g| *g > 31_000) {
        return Outcome::Broken("a delay above the 30 s cap".into());
    }
    Outcome::Kept
}

/// RC-4: gives up after about `max_reconnect_attempts` (the case advertises 3).
pub fn stops_after_max_reconnect_attempts(e: &Evidence) -> Outcome {
    let journal = need!(journal_or_nothing(e));
    let Some((_, attempts)) = attempts_after_drop(journal) else {
        return Outcome::NotObservable("no drop happened".into());
    };
    if attempts.len() > 4 {
        Outcome::Broken(format!(
            "{} reconnect attempts with max_reconnect_attempts = 3",
            attempts.len()
        ))
    } else if attempts.is_empty() {
        Outcome::Broken("never tried to reconnect".into())
    } else {
        Outcome::Kept
    }
}

/// The journaled REST calls of `endpoint` across the case's sessions.
fn calls<'a>(
    e: &'a Evidence,
    endpoint: &'a str,
) -> impl Iterator<Item = (&'a Option<String>, &'a Option<String>)> {
    e.sessions.iter().flat_map(move |(_, journal)| {
        journal.iter().filter_map(move |x| match &x.event {
            JournalEvent::Http {
                endpoint: ep,
                content_type,
                body,
                ..
            } if ep == endpoint => Some((content_type, body)),
            _ => None,
        })
    })
}

fn is_json(content_type: &Option<String>) -> bool {
    content_type.as_deref().is_some_and(|c| {
        c.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// AUTH-1: the access-token call was JSON with the body `{}` (a 200 proves X-Token and
/// X-Host were right).
pub fn calls_access_token_as_documented(e: &Evidence) -> Outcome {
    let mut seen = false;
    for (content_type, body) in calls(e, "/api/v1/access-token") {
        seen = true;
        if !is_json(content_type) {
            return Outcome::Broken(format!(
                "Content-Type {content_type:?}, not application/json"
            ));
        }
        let parsed = body
            .as_deref()
            .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok());
        if parsed != Some(serde_json::json!({})) {
            return Outcome::Broken(format!("body {body:?}, not {{}}"));
        }
    }
    if seen {
        Outcome::Kept
    } else {
        Outcome::NotObservable("no access-token call reached a session".into())
    }
}

/// AUTH-2: the sessions call was JSON (a 200 proves the Bearer token and the body).
pub fn creates_sessions_as_documented(e: &Evidence) -> Outcome {
    let mut seen = false;
    for (content_type, _) in calls(e, "/api/v1/sessions") {
        seen = true;
        if !is_json(content_type) {
            return Outcome::Broken(format!(
                "Content-Type {content_type:?}, not application/json"
            ));
        }
    }
    if seen {
        Outcome::Kept
    } else {
        Outcome::Broken("no session was created".into())
    }
}

/// AUTH-5: after a 5xx, the client tried again, not at once, and got its session.
pub fn backs_off_and_retries_rest_failures(e: &Evidence) -> Outcome {
    let calls: Vec<_> = e
        .rest_calls
        .iter()
        .filter(|c| c.endpoint != mock_server::http_log::Endpoint::WebSocket)
        .collect();
    let Some(failed) = calls.iter().position(|c| c.status >= 500) else {
        return Outcome::NotObservable("no REST call failed".into());
    };
    let endpoint = &calls[failed].endpoint;
    let Some(retry) = calls[failed + 1..].iter().find(|c| &c.endpoint == endpoint) else {
        return Outcome::Broken(format!(
            "gave up after a {} on {}",
            calls[failed].status,
            endpoint.path()
        ));
    };
    let waited = retry.at_ms.saturating_sub(calls[failed].at_ms);
    if waited < 500 {
        return Outcome::Broken(format!(
            "retried {} after {waited} ms, without backing off",
            endpoint.path()
        ));
    }
    if e.sessions.is_empty() {
        return Outcome::Broken("never got a session".into());
    }
    Outcome::Kept
}
