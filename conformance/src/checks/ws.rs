//! WS-1 … WS-7: the handshake and every frame the client sent.

use mock_server::http_log::Endpoint;
use mock_server::protocol::{ClientFrameError, DecodeOptions, RawFrame, decode_client_frame};
use serde_json::Value;

use super::{Evidence, JOIN, Outcome, Sent, USER_MESSAGE, USER_TYPING};
use crate::cases::Step;
use crate::contract::TypingChange;
use crate::tolerance::{JOIN_AFTER_HISTORY_MS, join_timing_ok};

/// WS-1: every `/ws` handshake carries `session_id` and `access_token`; against a mock
/// serving TLS (`run --tls`), every request went over TLS (the mock refuses one in the clear
/// unread and logs it as `plaintext`).
pub fn handshake_parameters(e: &Evidence) -> Outcome {
    if let Some(call) = e.http.iter().find(|c| c.request.plaintext) {
        let what = if call.endpoint == Endpoint::WebSocket {
            "opened /ws with ws://".to_owned()
        } else {
            format!("sent POST {} over http://", call.endpoint.path())
        };
        return Outcome::Broken(format!(
            "{what} at {} ms although the base URL was https://: the mock serves TLS only and \
             refused it ({})",
            call.at_ms, call.status
        ));
    }
    let handshakes = e.http_of(Endpoint::WebSocket);
    if handshakes.is_empty() {
        return match e.no_session() {
            Some(nothing) => nothing,
            None => Outcome::Broken("created a session but never opened /ws".into()),
        };
    }
    for call in &handshakes {
        for parameter in ["session_id", "access_token"] {
            if !call.request.query.contains_key(parameter) {
                return Outcome::Broken(format!(
                    "opened /ws at {} ms without `{parameter}` (answered {})",
                    call.at_ms, call.status
                ));
            }
        }
    }
    Outcome::Kept(format!(
        "{} handshake(s), each with session_id and access_token",
        handshakes.len()
    ))
}

/// WS-2: with the history held back, every join comes after the history and soon after it
/// (a decision taken on the history, not on a timer that happens to outlast a short hold-back).
pub fn join_after_history(e: &Evidence) -> Outcome {
    let hold_back = e.case.config.replay_delay_ms;
    if hold_back == 0 {
        return Outcome::NotObservable("this case does not hold the history back".into());
    }
    let mut judged = Vec::new();
    for session in &e.sessions {
        let connections = session.connections();
        for join in session.sent_of(JOIN) {
            let opened = connections
                .iter()
                .find(|c| c.conn == join.conn)
                .map_or(join.at_ms, |c| c.opened_ms);
            let history = session.history_sent_at(join.conn);
            let after_open = join.at_ms.saturating_sub(opened);
            if join.before_history {
                return Outcome::Broken(format!(
                    "sent REQUEST_POLY_AGENT_JOIN on connection {} before the history, which the mock held back {hold_back} ms",
                    join.conn
                ));
            }
            // Judged against when the history was actually sent (the mock's hold-back plus
            // its own scheduling), which the evidence has.
            let held = history.map_or(hold_back, |at| at.saturating_sub(opened));
            if !join_timing_ok(after_open, held) {
                return Outcome::Broken(format!(
                    "sent REQUEST_POLY_AGENT_JOIN on connection {} {} ms after the history arrived ({after_open} ms after the socket opened): not a decision taken on the history, which asks for it within {JOIN_AFTER_HISTORY_MS} ms",
                    join.conn,
                    after_open.saturating_sub(held)
                ));
            }
            judged.push(after_open.saturating_sub(held));
        }
    }
    if judged.is_empty() {
        return Outcome::NotObservable("the client never joined (see WS-3)".into());
    }
    Outcome::Kept(format!(
        "{} join(s), each {judged:?} ms after the history (held back {hold_back} ms)",
        judged.len()
    ))
}

/// WS-3: every new session joined exactly once, on the connections it had before the agent
/// joined (a join after that is WS-4's).
pub fn one_join_per_new_session(e: &Evidence) -> Outcome {
    if let Some(nothing) = e.no_session() {
        return nothing;
    }
    let mut judged = 0;
    for session in &e.sessions {
        let connections = session.connections();
        if connections.is_empty() {
            continue;
        }
        let before_agent: Vec<u64> = connections
            .iter()
            .filter(|c| !c.agent_joined_before)
            .map(|c| c.conn)
            .collect();
        let joins = session
            .sent_of(JOIN)
            .into_iter()
            .filter(|j| before_agent.contains(&j.conn))
            .count();
        match joins {
            1 => judged += 1,
            0 => {
                return Outcome::Broken(format!(
                    "never sent REQUEST_POLY_AGENT_JOIN in the new session {}",
                    session.id()
                ));
            }
            n => {
                return Outcome::Broken(format!(
                    "joined the new session {} {n} times",
                    session.id()
                ));
            }
        }
    }
    if judged == 0 {
        return Outcome::NotObservable("no session was ever connected (see WS-1)".into());
    }
    Outcome::Kept(format!("{judged} new session(s), each joined exactly once"))
}

/// WS-4: no join on a connection opened after the agent had joined (reconnects, restarts).
pub fn no_join_after_agent_joined(e: &Evidence) -> Outcome {
    let mut judged = 0;
    for session in &e.sessions {
        let later: Vec<u64> = session
            .connections()
            .iter()
            .filter(|c| c.agent_joined_before)
            .map(|c| c.conn)
            .collect();
        judged += later.len();
        if let Some(join) = session
            .sent_of(JOIN)
            .into_iter()
            .find(|j| later.contains(&j.conn))
        {
            return Outcome::Broken(format!(
                "joined again at {} ms on connection {}, opened after the agent had joined",
                join.at_ms, join.conn
            ));
        }
    }
    if judged == 0 {
        return Outcome::NotObservable(
            "no connection opened after the agent had joined (no reconnect or restart)".into(),
        );
    }
    Outcome::Kept(format!(
        "{judged} connection(s) opened after the agent joined, none with a join"
    ))
}

/// The size-independent decoding of a sent frame: what the server's strict decoder says of it,
/// whatever its length (the length is WS-7's).
fn decode_ignoring_size(e: &Evidence, sent: &Sent) -> Result<(), ClientFrameError> {
    let options = DecodeOptions {
        max_message_size_bytes: usize::MAX,
        ..e.case.config.decode_options()
    };
    let text = match (&sent.frame, &sent.text) {
        (Some(frame), _) => frame.to_string(),
        (None, Some(text)) if text == "[binary frame]" => {
            return Err(ClientFrameError::Binary);
        }
        (None, Some(text)) => text.clone(),
        (None, None) => return Err(ClientFrameError::NotObject),
    };
    decode_client_frame(RawFrame::Text(&text), &options)
        .map(|_| ())
        .map_err(|r| r.error)
}

/// Whether a decode error is about a field WS-6 covers.
fn is_field_error(error: &ClientFrameError) -> bool {
    matches!(error, ClientFrameError::InvalidPayload { event_type, .. }
        if *event_type == USER_MESSAGE || *event_type == USER_TYPING)
}

/// WS-5: every frame a JSON object of one of the five types, with an object payload, optional
/// `metadata.custom`, and nothing else (never `id`, `sequence`, `timestamp`).
pub fn frames_well_formed(e: &Evidence) -> Outcome {
    if let Some(nothing) = e.no_session() {
        return nothing;
    }
    let mut count = 0;
    for session in &e.sessions {
        for sent in session.sent() {
            count += 1;
            if let Some(Value::Object(frame)) = &sent.frame
                && let Some(extra) = frame
                    .keys()
                    .find(|k| !matches!(k.as_str(), "type" | "payload" | "metadata"))
            {
                let whose = if matches!(extra.as_str(), "id" | "sequence" | "timestamp") {
                    ", which the server assigns"
                } else {
                    ""
                };
                return Outcome::Broken(format!(
                    "sent a frame with `{extra}`{whose} at {} ms",
                    sent.at_ms
                ));
            }
            match decode_ignoring_size(e, &sent) {
                Ok(()) => {}
                Err(error) if is_field_error(&error) => {}
                Err(error) => {
                    return Outcome::Broken(format!(
                        "sent a frame the server rejects at {} ms: {error}",
                        sent.at_ms
                    ));
                }
            }
        }
    }
    if count == 0 {
        return Outcome::NotObservable("the client sent no frame".into());
    }
    Outcome::Kept(format!("{count} frames, all well-formed client events"))
}

/// WS-6: `USER_MESSAGE.text` a string, `USER_TYPING.state` valid and what the user did.
pub fn message_and_typing_fields(e: &Evidence) -> Outcome {
    if let Some(nothing) = e.no_session() {
        return nothing;
    }
    let sent: Vec<Sent> = e.sessions.iter().flat_map(|s| s.sent()).collect();
    for frame in &sent {
        if let Err(error) = decode_ignoring_size(e, frame)
            && is_field_error(&error)
        {
            return Outcome::Broken(format!("at {} ms: {error}", frame.at_ms));
        }
    }
    let messages = sent.iter().filter(|s| s.is(USER_MESSAGE)).count();
    if messages == 0 {
        return Outcome::NotObservable("the client sent no USER_MESSAGE".into());
    }
    let typed: Vec<TypingChange> = e
        .steps
        .iter()
        .filter(|s| s.reply == super::StepReply::Ok)
        .filter_map(|s| match &s.step {
            Step::Typing(change) => Some(*change),
            _ => None,
        })
        .collect();
    let states: Vec<&str> = sent
        .iter()
        .filter(|s| s.is(USER_TYPING))
        .filter_map(|s| s.frame.as_ref()?["payload"]["state"].as_str())
        .collect();
    let wanted: Vec<&str> = typed
        .iter()
        .map(|t| match t {
            TypingChange::Started => "TYPING_STATE_STARTED",
            TypingChange::Stopped => "TYPING_STATE_STOPPED",
        })
        .collect();
    let typing = if typed.is_empty() {
        "typing not exercised".to_owned()
    } else if states.is_empty() {
        // No pass without evidence: the driver said the user's typing was handled, yet nothing
        // reached the server (an SDK without typing answers `unsupported`).
        return Outcome::Broken(format!(
            "the user typed {wanted:?} and the driver accepted it, but no USER_TYPING was sent (a driver whose SDK has no typing answers `unsupported`)"
        ));
    } else {
        let mut compact = states.clone();
        compact.dedup();
        if compact != wanted {
            return Outcome::Broken(format!("the user typing {wanted:?} was sent as {states:?}"));
        }
        format!("USER_TYPING {states:?} as the user typed")
    };
    Outcome::Kept(format!(
        "{messages} USER_MESSAGE(s) with string text; {typing}"
    ))
}

/// WS-7: no frame over the advertised `max_message_size_bytes`, in a case where the user
/// tried to send more.
pub fn frames_within_limit(e: &Evidence) -> Outcome {
    let limit = e.case.config.max_message_size_bytes;
    for session in &e.sessions {
        if let Some(big) = session.sent().into_iter().find(|s| s.bytes > limit) {
            return Outcome::Broken(format!(
                "sent a frame of {} bytes at {} ms; SESSION_START advertised {limit}",
                big.bytes, big.at_ms
            ));
        }
    }
    let tried = e
        .steps
        .iter()
        .any(|s| matches!(&s.step, Step::Send(text) if text.len() as u64 + 64 > limit));
    if !tried {
        return Outcome::NotObservable("the user never sent a text near the limit".into());
    }
    if let Some(nothing) = e.no_session() {
        return nothing;
    }
    Outcome::Kept(format!(
        "the user sent a text over the advertised {limit} bytes; no frame exceeded it"
    ))
}
