//! MSG-1 … MSG-5: what the client makes of the events it gets, and its receipts.
//!
//! Blame is split so one defect fails one obligation: a message that reached the client only
//! inside a batch and is missing is MSG-1's (MSG-3 excuses it); a duplicate is MSG-2's (MSG-3
//! judges the list with duplicates removed); the text of a streamed message is MSG-4's (MSG-3
//! recognises it by its id); and a message the client never received is nobody's.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{
    Delivery, Evidence, MESSAGE_TYPES, Outcome, ServerMessage, USER_MESSAGE, event_id, event_type,
};
use crate::cases::{ExpectedMessage, Speaker, shorten};
use crate::contract::{Author, MessageStatus, ViewMessage};
use mock_server::protocol::ServerEvent;

/// Event ids the client got only inside batches, never live.
fn batch_only(deliveries: &[Delivery]) -> HashSet<String> {
    let live: HashSet<&str> = deliveries
        .iter()
        .filter(|d| !d.in_batch)
        .filter_map(|d| event_id(&d.event))
        .collect();
    deliveries
        .iter()
        .filter(|d| d.in_batch && MESSAGE_TYPES.contains(&event_type(&d.event)))
        .filter_map(|d| event_id(&d.event))
        .filter(|id| !live.contains(id))
        .map(str::to_owned)
        .collect()
}

/// The message id an event carries in its payload.
fn payload_message_id(event: &Value) -> Option<&str> {
    event["payload"]["message_id"].as_str()
}

/// The view message showing `message` (by id; by author and text when the view has no id).
fn shown<'v>(view: &'v [ViewMessage], message: &ServerMessage) -> Option<&'v ViewMessage> {
    view.iter()
        .find(|m| m.message_id.is_some() && m.message_id == message.message_id)
        .or_else(|| {
            view.iter().find(|m| {
                m.message_id.is_none() && m.from == message.from && m.text == message.text
            })
        })
}

/// A `SESSION_END` that reached the client only inside a batch, when the view (which has
/// `ended`) never showed the end afterwards: `(at_ms, reason)`. MSG-1's, not UX-4's.
pub fn unapplied_batch_end(e: &Evidence) -> Option<(u64, String)> {
    let deliveries = e.deliveries();
    let ends: Vec<&Delivery> = deliveries
        .iter()
        .filter(|d| event_type(&d.event) == ServerEvent::SESSION_END)
        .collect();
    let first = ends.first()?;
    if ends.iter().any(|d| !d.in_batch) {
        return None;
    }
    let observable = e.samples_after(first.at_ms).any(|s| s.view.ended.is_some());
    let shown = e
        .samples_after(first.at_ms)
        .any(|s| s.view.ended.as_ref().is_some_and(Option::is_some));
    (observable && !shown).then(|| {
        let reason = first.event["payload"]["reason"]
            .as_str()
            .unwrap_or_default();
        (first.at_ms, reason.to_owned())
    })
}

/// A message event that reached the client only inside batches, and what the app made of it.
pub struct BatchOnly {
    /// Every batch that carried it also carried an event of an undocumented type.
    pub beside_unknown: bool,
    /// `None` when shown; else why not.
    pub missing: Option<String>,
}

/// Every message event (and chunk) that reached the conversation's session only inside
/// batches, judged against the final view; `Err` when there is nothing to judge it on.
pub fn batch_only_messages(e: &Evidence) -> Result<Vec<BatchOnly>, Outcome> {
    let (view, deliveries) = conversation(e)?;
    let only_in_batches = batch_only(&deliveries);
    let messages = conversation_messages(e);
    let mut out = Vec::new();
    let mut judged = HashSet::new();
    for delivery in deliveries.iter().filter(|d| d.in_batch) {
        let Some(id) = event_id(&delivery.event).filter(|id| only_in_batches.contains(*id)) else {
            continue;
        };
        if !judged.insert(id) {
            continue;
        }
        let Some(message) = messages
            .iter()
            .find(|m| m.message_id.as_deref() == payload_message_id(&delivery.event))
        else {
            continue;
        };
        let beside_unknown = deliveries
            .iter()
            .filter(|d| d.in_batch && event_id(&d.event) == Some(id))
            .all(|d| d.beside_unknown);
        let missing = match shown(view, message) {
            None => Some(format!(
                "`{}` reached the client only inside EVENT_BATCH and is not shown",
                shorten(&message.text)
            )),
            Some(on_screen)
                if event_type(&delivery.event) == ServerEvent::POLY_AGENT_MESSAGE_CHUNK =>
            {
                let piece = delivery.event["payload"]["text"]
                    .as_str()
                    .unwrap_or_default();
                (!on_screen.text.contains(piece)).then(|| {
                    format!(
                        "chunk {} of `{}` reached the client only inside EVENT_BATCH; its text `{piece}` is not shown",
                        delivery.event["payload"]["chunk_index"],
                        shorten(&message.text)
                    )
                })
            }
            Some(_) => None,
        };
        out.push(BatchOnly {
            beside_unknown,
            missing,
        });
    }
    Ok(out)
}

/// MSG-1: everything that reached the client only inside a batch is shown (a streamed
/// message's batch-only chunk: its text is part of the message shown). Batches that also
/// carried an undocumented event type are ERR-2's.
pub fn batches_flattened(e: &Evidence) -> Outcome {
    if let Some((at_ms, reason)) = unapplied_batch_end(e) {
        return Outcome::Broken(format!(
            "SESSION_END ({reason}) reached the client only inside EVENT_BATCH at {at_ms} ms; the view never shows the session ended"
        ));
    }
    let judged: Vec<BatchOnly> = match batch_only_messages(e) {
        Ok(all) => all.into_iter().filter(|b| !b.beside_unknown).collect(),
        Err(nothing) => return nothing,
    };
    if judged.is_empty() {
        return Outcome::NotObservable("no message reached the client only inside a batch".into());
    }
    if let Some(missing) = judged.iter().find_map(|b| b.missing.clone()) {
        return Outcome::Broken(missing);
    }
    Outcome::Kept(format!(
        "{} event(s) that came only inside batches are shown",
        judged.len()
    ))
}

/// MSG-2: events that arrived more than once; no sampled view ever shows a message twice.
pub fn shown_once(e: &Evidence) -> Outcome {
    let deliveries = e.deliveries();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for d in &deliveries {
        if MESSAGE_TYPES.contains(&event_type(&d.event))
            && let Some(id) = event_id(&d.event)
        {
            *counts.entry(id).or_default() += 1;
        }
    }
    let repeated = counts.values().filter(|n| **n > 1).count();
    if repeated == 0 {
        return Outcome::NotObservable("no message event arrived twice".into());
    }
    if e.samples.is_empty() {
        return Outcome::NotObservable("the driver gave no view".into());
    }
    for sample in &e.samples {
        let Some(messages) = sample.view.messages() else {
            return Outcome::NotObservable("the view has no `messages`".into());
        };
        let mut ids = HashSet::new();
        for m in messages {
            if let Some(id) = &m.message_id
                && !ids.insert(id)
            {
                return Outcome::Broken(format!(
                    "the view at {} ms shows `{}` twice",
                    sample.replied_ms,
                    shorten(&m.text)
                ));
            }
        }
    }
    // Messages the view shows without an id: by author and text, in every sample (a duplicate
    // that a later replay happens to reconcile was still shown twice), against how many times
    // the server said it.
    let mut said: HashMap<(Author, &str), usize> = HashMap::new();
    let server = e.server_messages();
    for m in &server {
        *said.entry((m.from, m.text.as_str())).or_default() += 1;
    }
    for sample in &e.samples {
        let Some(messages) = sample.view.messages() else {
            continue;
        };
        for m in messages.iter().filter(|m| m.message_id.is_none()) {
            let shown_n = messages
                .iter()
                .filter(|x| x.from == m.from && x.text == m.text)
                .count();
            let allowed = said
                .get(&(m.from, m.text.as_str()))
                .copied()
                .unwrap_or(0)
                .max(1);
            if shown_n > allowed {
                return Outcome::Broken(format!(
                    "the view at {} ms shows `{}` {shown_n} times; it was said {allowed} time(s)",
                    sample.replied_ms,
                    shorten(&m.text)
                ));
            }
        }
    }
    Outcome::Kept(format!(
        "{repeated} message event(s) arrived more than once; {} views, none showing a message twice",
        e.samples.len()
    ))
}

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
    echoes.sort_by_key(|d| super::sequence(&d.event));
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
    let delivered_ids: HashSet<&str> = deliveries
        .iter()
        .filter_map(|d| payload_message_id(&d.event))
        .collect();
    let batch_only_ids: HashSet<String> = {
        let events = batch_only(&deliveries);
        deliveries
            .iter()
            .filter(|d| event_id(&d.event).is_some_and(|id| events.contains(id)))
            .filter_map(|d| payload_message_id(&d.event).map(str::to_owned))
            .collect()
    };
    let resent = echoes_of_resends(&deliveries);
    let messages = conversation_messages(e);
    // The expected conversation, each entry with the id the server gave it.
    let mut placed: Vec<(usize, Wanted<'_>)> = Vec::new();
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
    let mut wanted: Vec<Wanted<'_>> = placed.into_iter().map(|(_, w)| w).collect();
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
    // What the view shows of the server's conversation: duplicates removed, the user's
    // messages still waiting for their echo left out (receipts are MSG-5's), and so are the
    // echoes of messages the client resent after their echo (MSG-5's too).
    let mut seen_ids = HashSet::new();
    let mut seen_texts = HashSet::new();
    let on_screen: Vec<&ViewMessage> = view
        .iter()
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
        .collect();
    // The same message (by id, or by text when the view has no id or the text is MSG-4's),
    // whoever the view says wrote it.
    let same = |m: &ViewMessage, w: &Wanted<'_>| {
        let by_id = w.2.and_then(|s| s.message_id.as_ref());
        (m.message_id.is_some() && m.message_id.as_ref() == by_id) || m.text == w.1
    };
    for (i, w) in wanted.iter().enumerate() {
        match on_screen.get(i) {
            Some(m) if same(m, w) && m.from == w.0 => {}
            Some(m) if same(m, w) => {
                return Outcome::Broken(format!(
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
                return Outcome::Broken(format!("{why}; position {}", i + 1));
            }
            None => {
                return Outcome::Broken(format!(
                    "does not show `{}` ({:?}), message {} of the conversation",
                    shorten(w.1),
                    w.0,
                    i + 1
                ));
            }
        }
    }
    if let Some(extra) = on_screen.get(wanted.len()) {
        return Outcome::Broken(format!(
            "shows `{}` after the end of the conversation",
            shorten(&extra.text)
        ));
    }
    if wanted.is_empty() {
        return Outcome::NotObservable("no message of the conversation reached the client".into());
    }
    Outcome::Kept(format!(
        "the {} messages of the conversation, in sequence order, each by its author",
        wanted.len()
    ))
}

/// MSG-4: each streamed message shown with its chunks in `chunk_index` order, the extras of
/// every chunk, complete only once its final chunk had arrived.
pub fn chunks_assembled(e: &Evidence) -> Outcome {
    let messages = conversation_messages(e);
    let streamed: Vec<&ServerMessage> = messages.iter().filter(|m| !m.chunks.is_empty()).collect();
    if streamed.is_empty() {
        let asked = e.case.streaming;
        return Outcome::NotObservable(if asked {
            "no chunk was sent: the session was created without streaming although the user asked for it".into()
        } else {
            "no streamed message".into()
        });
    }
    let (view, deliveries) = match conversation(e) {
        Ok(found) => found,
        Err(nothing) => return nothing,
    };
    let only_in_batches = batch_only(&deliveries);
    // A client that renders no suggestions at all is UX-2's concern, not this one's.
    let renders_suggestions = e.samples.iter().any(|s| {
        s.view
            .messages()
            .is_some_and(|ms| ms.iter().any(|m| !m.suggestions.is_empty()))
    });
    let mut judged = 0;
    for message in streamed {
        let id = message.message_id.as_deref();
        let delivered: Vec<&Delivery> = deliveries
            .iter()
            .filter(|d| event_type(&d.event) == ServerEvent::POLY_AGENT_MESSAGE_CHUNK)
            .filter(|d| payload_message_id(&d.event) == id)
            .collect();
        if delivered.is_empty() {
            continue;
        }
        let Some(on_screen) = shown(view, message) else {
            let live_only: String = live_assembly(message, &delivered, &only_in_batches);
            if live_only.is_empty() || view.iter().any(|m| m.text == live_only) {
                // Not shown beyond the chunks it got live, or it came only in batches: MSG-1's
                // (or ERR-2's, beside an unknown event).
                continue;
            }
            return Outcome::Broken(format!(
                "the streamed message `{}` is not shown",
                shorten(&message.text)
            ));
        };
        let live_only = live_assembly(message, &delivered, &only_in_batches);
        // Only the chunks it got live are shown: the rest came only in a batch (MSG-1's).
        let batch_part_missing = on_screen.text != message.text && on_screen.text == live_only;
        if on_screen.text != message.text && !batch_part_missing {
            return Outcome::Broken(format!(
                "shows `{}`; its chunks in chunk_index order say `{}`",
                shorten(&on_screen.text),
                shorten(&message.text)
            ));
        }
        let suggestions_differ =
            renders_suggestions && on_screen.suggestions != message.suggestions;
        if !batch_part_missing
            && (on_screen.attachments != message.attachments || suggestions_differ)
        {
            return Outcome::Broken(format!(
                "`{}` shows {} attachment(s) and suggestions {:?}; its chunks carry {} and {:?}",
                shorten(&message.text),
                on_screen.attachments.len(),
                on_screen.suggestions,
                message.attachments.len(),
                message.suggestions
            ));
        }
        let final_at = delivered
            .iter()
            .filter(|d| d.event["payload"]["is_complete"] == true)
            .filter(|d| {
                !batch_part_missing
                    || event_id(&d.event).is_some_and(|id| !only_in_batches.contains(id))
            })
            .map(|d| d.at_ms)
            .min();
        match final_at {
            Some(_) if !on_screen.complete => {
                return Outcome::Broken(format!(
                    "`{}` is not shown complete after its final chunk",
                    shorten(&message.text)
                ));
            }
            None if on_screen.complete => {
                return Outcome::Broken(format!(
                    "`{}` is shown complete but its final chunk never arrived",
                    shorten(&message.text)
                ));
            }
            _ => {}
        }
        // Complete before the final chunk had even been sent: impossible for a client that
        // waits for `is_complete`.
        if let Some(early) = e.samples.iter().find(|s| {
            final_at.is_none_or(|f| s.replied_ms < f)
                && s.view.messages().is_some_and(|ms| {
                    ms.iter()
                        .any(|m| m.message_id.as_deref() == id && m.complete)
                })
        }) {
            return Outcome::Broken(format!(
                "the view at {} ms shows `{}` complete before its final chunk was sent",
                early.replied_ms,
                shorten(&message.text)
            ));
        }
        judged += 1;
    }
    if judged == 0 {
        return Outcome::NotObservable("no chunk reached the client".into());
    }
    Outcome::Kept(format!(
        "{judged} streamed message(s) assembled in chunk_index order with their extras"
    ))
}

/// What the app showed of the conversation, and what reached it, or why neither can be judged.
fn conversation(e: &Evidence) -> Result<(&[ViewMessage], Vec<Delivery>), Outcome> {
    Ok((e.final_messages()?, e.conversation_deliveries()?))
}

/// The messages of the conversation's session, as the server said them.
fn conversation_messages(e: &Evidence) -> Vec<ServerMessage> {
    e.conversation_session()
        .map(super::SessionRecord::messages)
        .unwrap_or_default()
}

/// The text of the chunks the client got live, in `chunk_index` order.
fn live_assembly(
    message: &ServerMessage,
    delivered: &[&Delivery],
    only_in_batches: &HashSet<String>,
) -> String {
    let live: HashSet<u64> = delivered
        .iter()
        .filter(|d| event_id(&d.event).is_some_and(|id| !only_in_batches.contains(id)))
        .filter_map(|d| d.event["payload"]["chunk_index"].as_u64())
        .collect();
    message
        .chunks
        .iter()
        .filter(|(i, _)| live.contains(i))
        .filter_map(|(_, c)| c["text"].as_str())
        .collect()
}

/// MSG-5: a message whose echo was lost is resent 4–7.5 s later with the same
/// `metadata.custom`; never sooner than 4 s after the previous try (resends right after a
/// reconnect aside), never after its echo, at most 3 times.
/// After the third resend, spec §4.4 has the message marked failed 5 s later: not while it is
/// still due a try, and not long after. `Some` names what was wrong.
fn failed_on_time(e: &Evidence, text: &str, last_try_ms: u64) -> Option<String> {
    let failed = |sample: &&super::Sample| {
        sample.view.messages.iter().flatten().any(|m| {
            m.from == Author::User && m.text == text && m.status == Some(MessageStatus::Failed)
        })
    };
    let shown = e.samples.iter().find(failed);
    let (earliest, latest) = (last_try_ms + 4_000, last_try_ms + 9_000);
    match shown {
        Some(sample) if sample.replied_ms < earliest => Some(format!(
            "showed `{}` failed {} ms after its third resend; about 5 s expected",
            shorten(text),
            sample.replied_ms as i64 - last_try_ms as i64
        )),
        Some(sample) if sample.sent_ms > latest => Some(format!(
            "showed `{}` failed only {} ms after its third resend; about 5 s expected",
            shorten(text),
            sample.sent_ms - last_try_ms
        )),
        None if e.end_ms > latest => Some(format!(
            "never showed `{}` failed after its third resend",
            shorten(text)
        )),
        _ => None,
    }
}

pub fn lost_messages_resent(e: &Evidence) -> Outcome {
    let mut judged = Vec::new();
    let mut kept_across = 0;
    for session in &e.sessions {
        let sent = session.sent_of(USER_MESSAGE);
        let echoes: Vec<(u64, Value, String)> = session
            .deliveries()
            .into_iter()
            .filter(|d| event_type(&d.event) == USER_MESSAGE)
            .map(|d| {
                let text = d.event["payload"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (d.at_ms, d.event["metadata"]["custom"].clone(), text)
            })
            .collect();
        let reconnects: Vec<u64> = session
            .connections()
            .iter()
            .skip(1)
            .map(|c| c.opened_ms)
            .collect();
        let mut texts: Vec<&str> = sent.iter().filter_map(|s| s.text_payload()).collect();
        texts.dedup();
        let mut done = HashSet::new();
        for text in texts {
            if !done.insert(text) {
                continue;
            }
            let tries: Vec<_> = sent
                .iter()
                .filter(|s| s.text_payload() == Some(text))
                .collect();
            let first = tries[0];
            let custom = first
                .custom()
                .filter(|c| c.as_object().is_some_and(|o| !o.is_empty()));
            let echoed_at = echoes
                .iter()
                .filter(|(_, echoed, echoed_text)| match custom {
                    Some(custom) => echoed == custom,
                    None => echoed_text == text,
                })
                .map(|(at, _, _)| *at)
                .min();
            let lost = echoed_at.is_none_or(|at| at > first.at_ms + 5_000);
            let Some(custom) = custom else {
                if lost {
                    return Outcome::Broken(format!(
                        "sent `{}` without metadata.custom, so its echo cannot serve as a receipt",
                        shorten(text)
                    ));
                }
                continue;
            };
            for resend in &tries[1..] {
                if resend.custom() != Some(custom) {
                    return Outcome::Broken(format!(
                        "resent `{}` at {} ms with metadata.custom {}, not {}",
                        shorten(text),
                        resend.at_ms,
                        resend.custom().cloned().unwrap_or_default(),
                        custom
                    ));
                }
                if let Some(echoed) = echoed_at
                    && resend.at_ms > echoed + 500
                {
                    return Outcome::Broken(format!(
                        "resent `{}` at {} ms although its echo arrived at {echoed} ms",
                        shorten(text),
                        resend.at_ms
                    ));
                }
            }
            for w in tries.windows(2) {
                let gap = w[1].at_ms - w[0].at_ms;
                let after_reconnect = reconnects
                    .iter()
                    .any(|r| *r <= w[1].at_ms && w[1].at_ms - r < 1_500 && *r > w[0].at_ms);
                if gap < 4_000 && !after_reconnect {
                    return Outcome::Broken(format!(
                        "resent `{}` {gap} ms after the previous try; about 5 s expected",
                        shorten(text)
                    ));
                }
            }
            if !lost {
                // Echoed, and not sent again across a reconnect that came after its echo.
                if echoed_at.is_some_and(|echoed| reconnects.iter().any(|r| *r > echoed)) {
                    kept_across += 1;
                }
                continue;
            }
            if tries.len() > 4 {
                return Outcome::Broken(format!(
                    "sent `{}` {} times: more than 3 resends",
                    shorten(text),
                    tries.len()
                ));
            }
            // A session the client had left by the time a resend was due (a new session
            // instead of a reconnect is RC-1's) cannot carry one.
            let still_there = session
                .connections()
                .iter()
                .any(|c| c.closed_ms.is_none_or(|t| t > first.at_ms + 5_000));
            match tries.get(1) {
                None if !still_there => {}
                None if e.end_ms.saturating_sub(first.at_ms) >= 7_500 => {
                    return Outcome::Broken(format!(
                        "`{}` got no echo and was never sent again",
                        shorten(text)
                    ));
                }
                None => {}
                Some(second) => {
                    let gap = second.at_ms - first.at_ms;
                    if gap > 7_500 {
                        return Outcome::Broken(format!(
                            "resent `{}` {gap} ms after the first try; about 5 s expected",
                            shorten(text)
                        ));
                    }
                    judged.push((text.to_owned(), tries.len() - 1, gap));
                }
            }
            if tries.len() == 4
                && let Some(problem) = failed_on_time(e, text, tries[3].at_ms)
            {
                return Outcome::Broken(problem);
            }
        }
    }
    if judged.is_empty() && kept_across == 0 {
        return Outcome::NotObservable(
            "no message lost its echo, and none was echoed before a reconnect".into(),
        );
    }
    let mut shown: Vec<String> = judged
        .iter()
        .map(|(t, n, gap)| {
            format!(
                "`{}` resent {n}× (first after {gap} ms) with the same metadata.custom",
                shorten(t)
            )
        })
        .collect();
    if kept_across > 0 {
        shown.push(format!(
            "{kept_across} message(s) echoed before a reconnect, none sent again after it"
        ));
    }
    Outcome::Kept(shown.join("; "))
}
