//! MSG-1: what reached the client only inside an `EVENT_BATCH` is shown (also what ERR-2 and
//! UX-4 ask about such events).

use std::collections::HashSet;

use mock_server::protocol::ServerEvent;

use super::{
    BatchOnly, batch_only, conversation, conversation_messages, payload_message_id, shown,
};
use crate::cases::shorten;
use crate::checks::{Delivery, Evidence, Outcome, event_id, event_type};

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
