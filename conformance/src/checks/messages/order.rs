//! MSG-3: the final view shows the expected conversation, in sequence order, each message by
//! its author, system messages as such.

use std::collections::HashSet;

use mock_server::protocol::ServerEvent;
use serde_json::Value;

use super::{batch_only, conversation, conversation_messages, payload_message_id, shown};
use crate::cases::{ExpectedMessage, Speaker, shorten};
use crate::checks::{
    Delivery, Evidence, Outcome, ServerMessage, USER_MESSAGE, event_id, event_type,
};
use crate::contract::{Author, MessageStatus, ViewMessage};

/// An expected message: author, text, and the server's message it matched.
type Wanted<'a> = (Author, &'a str, Option<&'a ServerMessage>);

/// The message ids of user-message echoes that repeat an earlier echo's `metadata.custom`: the
/// server's answer to a client resending a message it already had the echo of (MSG-5's to
/// judge, not a message of the conversation).
fn echoes_of_resends(deliveries: &[Delivery]) -> HashSet<String> {
    let mut seen: Vec<&Value> = Vec::new();
    let mut echoes: Vec<&Delivery> = deliveries
        .iter()
        .filter(|d| event_type(&d.event) == USER_MESSAGE)
        .collect();
    echoes.sort_by_key(|d| crate::checks::sequence(&d.event));
    let mut done = HashSet::new();
    let mut out = HashSet::new();
    for echo in echoes {
        if event_id(&echo.event).is_none_or(|id| !done.insert(id)) {
            continue;
        }
        let custom = &echo.event["metadata"]["custom"];
        if custom.as_object().is_none_or(serde_json::Map::is_empty) {
            continue;
        }
        if seen.contains(&custom) {
            if let Some(message_id) = payload_message_id(&echo.event) {
                out.insert(message_id.to_owned());
            }
        } else {
            seen.push(custom);
        }
    }
    out
}

/// The expected conversation's system messages: never shown as someone's message, and shown
/// under `system_messages` when the view has them and the message came live. `Some` says what
/// is wrong.
fn system_entries_wrong(
    expected: &[ExpectedMessage],
    view: &[ViewMessage],
    system_view: Option<&[crate::contract::ViewSystemMessage]>,
    deliveries: &[Delivery],
) -> Option<String> {
    for x in expected.iter().filter(|x| x.from == Speaker::System) {
        let arrived: Vec<&Delivery> = deliveries
            .iter()
            .filter(|d| {
                event_type(&d.event) == ServerEvent::SYSTEM_MESSAGE
                    && d.event["payload"]["message"].as_str() == Some(x.text.as_str())
            })
            .collect();
        if arrived.is_empty() {
            continue;
        }
        if let Some(m) = view.iter().find(|m| m.text == x.text) {
            return Some(format!(
                "shows the system message `{}` as a message from {:?}",
                shorten(&x.text),
                m.from
            ));
        }
        let live = arrived.iter().any(|d| !d.in_batch);
        if let Some(shown) = system_view
            && live
            && !shown.iter().any(|m| m.message == x.text)
        {
            return Some(format!(
                "does not show the system message `{}` (its `system_messages` has {} entr(ies))",
                shorten(&x.text),
                shown.len()
            ));
        }
    }
    None
}

/// MSG-3: the final view's messages, duplicates removed, equal the expected conversation
/// (restricted to what reached the client; a batch-only message missing is MSG-1's), in order,
/// each by its author; the conversation's system messages shown as such, not as messages.
pub fn conversation_in_order(e: &Evidence) -> Outcome {
    let Some(expected) = &e.case.conversation else {
        return Outcome::NotObservable("this case has no expected conversation".into());
    };
    let (view, deliveries) = match conversation(e) {
        Ok(found) => found,
        Err(nothing) => return nothing,
    };
    let system_view = e
        .conversation_view()
        .and_then(|v| v.system_messages.as_deref());
    if let Some(problem) = system_entries_wrong(expected, view, system_view, &deliveries) {
        return Outcome::Broken(problem);
    }
    let messages = conversation_messages(e);
    let mut wanted = in_sequence_order(expected, &messages);
    retain_judged(&mut wanted, view, &deliveries);
    let on_screen = on_screen(view, &echoes_of_resends(&deliveries));
    if let Some(problem) = first_difference(&wanted, &on_screen) {
        return Outcome::Broken(problem);
    }
    if wanted.is_empty() {
        return Outcome::NotObservable("no message of the conversation reached the client".into());
    }
    Outcome::Kept(format!(
        "the {} messages of the conversation, in sequence order, each by its author",
        wanted.len()
    ))
}

/// The expected conversation's messages (system ones left out), each with the server's message
/// it matched, in the order the server sequenced them.
fn in_sequence_order<'a>(
    expected: &'a [ExpectedMessage],
    messages: &'a [ServerMessage],
) -> Vec<Wanted<'a>> {
    // The expected conversation, each entry with the id the server gave it.
    let mut placed: Vec<(usize, Wanted<'a>)> = Vec::new();
    let mut used: HashSet<usize> = HashSet::new();
    for x in expected {
        let Some(from) = x.from.author() else {
            continue;
        };
        let found = messages
            .iter()
            .enumerate()
            .find(|(i, m)| !used.contains(i) && m.from == from && m.text == x.text);
        if let Some((i, _)) = found {
            used.insert(i);
        }
        let at = found.map_or(usize::MAX, |(i, _)| i);
        placed.push((at, (from, x.text.as_str(), found.map(|(_, m)| m))));
    }
    // In the order the server sequenced them: a client whose own timing (an early resend)
    // moved a message is judged on what the server said, not on the script's usual order.
    placed.sort_by_key(|(at, _)| *at);
    placed.into_iter().map(|(_, w)| w).collect()
}

/// Keeps only the wanted messages this check judges.
fn retain_judged(wanted: &mut Vec<Wanted<'_>>, view: &[ViewMessage], deliveries: &[Delivery]) {
    let delivered_ids: HashSet<&str> = deliveries
        .iter()
        .filter_map(|d| payload_message_id(&d.event))
        .collect();
    let batch_only_ids: HashSet<String> = {
        let events = batch_only(deliveries);
        deliveries
            .iter()
            .filter(|d| event_id(&d.event).is_some_and(|id| events.contains(id)))
            .filter_map(|d| payload_message_id(&d.event).map(str::to_owned))
            .collect()
    };
    // Never said in this session (the case stopped before it), never received (the socket
    // was gone), or batch-only and missing (MSG-1's): not judged.
    wanted.retain(|(_, _, server)| {
        let Some(server) = server else { return false };
        let Some(id) = server.message_id.as_deref() else {
            return true;
        };
        if !delivered_ids.contains(id) {
            return false;
        }
        !(batch_only_ids.contains(id) && shown(view, server).is_none())
    });
}

/// What the view shows of the server's conversation: duplicates removed, the user's
/// messages still waiting for their echo left out (receipts are MSG-5's), and so are the
/// echoes of messages the client resent after their echo (MSG-5's too).
fn on_screen<'v>(view: &'v [ViewMessage], resent: &HashSet<String>) -> Vec<&'v ViewMessage> {
    let mut seen_ids = HashSet::new();
    let mut seen_texts = HashSet::new();
    view.iter()
        .filter(|m| {
            !(m.from == Author::User
                && matches!(
                    m.status,
                    Some(MessageStatus::Sending | MessageStatus::Failed)
                ))
        })
        .filter(|m| m.message_id.as_ref().is_none_or(|id| !resent.contains(id)))
        .filter(|m| match &m.message_id {
            Some(id) => seen_ids.insert(id.clone()),
            None => seen_texts.insert((m.from, m.text.clone())),
        })
        .collect()
}

/// The same message (by id, or by text when the view has no id or the text is MSG-4's),
/// whoever the view says wrote it.
fn same(m: &ViewMessage, w: &Wanted<'_>) -> bool {
    let by_id = w.2.and_then(|s| s.message_id.as_ref());
    (m.message_id.is_some() && m.message_id.as_ref() == by_id) || m.text == w.1
}

/// Where what is on screen first differs from the wanted conversation, as a finding; `None`
/// when they agree.
fn first_difference(wanted: &[Wanted<'_>], on_screen: &[&ViewMessage]) -> Option<String> {
    for (i, w) in wanted.iter().enumerate() {
        match on_screen.get(i) {
            Some(m) if same(m, w) && m.from == w.0 => {}
            Some(m) if same(m, w) => {
                return Some(format!(
                    "shows `{}` as said by {:?}; {:?} said it; position {}",
                    shorten(&m.text),
                    m.from,
                    w.0,
                    i + 1
                ));
            }
            Some(m) => {
                let later = wanted[i..].iter().any(|w| same(m, w));
                let why = if later {
                    format!("shows `{}` before `{}`", shorten(&m.text), shorten(w.1))
                } else if on_screen[i..].iter().any(|m| same(m, w)) {
                    format!(
                        "shows `{}`, which the conversation does not have there",
                        shorten(&m.text)
                    )
                } else {
                    format!("does not show `{}` ({:?})", shorten(w.1), w.0)
                };
                return Some(format!("{why}; position {}", i + 1));
            }
            None => {
                return Some(format!(
                    "does not show `{}` ({:?}), message {} of the conversation",
                    shorten(w.1),
                    w.0,
                    i + 1
                ));
            }
        }
    }
    on_screen.get(wanted.len()).map(|extra| {
        format!(
            "shows `{}` after the end of the conversation",
            shorten(&extra.text)
        )
    })
}
