//! MSG-4: streamed messages assembled from their chunks in `chunk_index` order, with the
//! chunks' extras, complete only after the final chunk.

use std::collections::HashSet;

use mock_server::protocol::ServerEvent;

use super::{batch_only, conversation, conversation_messages, payload_message_id, shown};
use crate::cases::shorten;
use crate::checks::{Delivery, Evidence, Outcome, ServerMessage, event_id, event_type};
use crate::contract::ViewMessage;

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
    let streams = Streams {
        e,
        view,
        deliveries: &deliveries,
        only_in_batches: &only_in_batches,
        renders_suggestions,
    };
    let mut judged = 0;
    for message in streamed {
        match streams.judge(message) {
            Err(problem) => return Outcome::Broken(problem),
            Ok(true) => judged += 1,
            Ok(false) => {}
        }
    }
    if judged == 0 {
        return Outcome::NotObservable("no chunk reached the client".into());
    }
    Outcome::Kept(format!(
        "{judged} streamed message(s) assembled in chunk_index order with their extras"
    ))
}

/// What the client got and showed of the conversation, to judge its streamed messages by.
struct Streams<'a> {
    e: &'a Evidence,
    view: &'a [ViewMessage],
    deliveries: &'a [Delivery],
    only_in_batches: &'a HashSet<String>,
    /// The client renders suggestions at all (if not, that is UX-2's concern).
    renders_suggestions: bool,
}

impl Streams<'_> {
    /// Judges one streamed message: `Ok(false)` when it is not this check's to judge, `Err`
    /// names what was wrong.
    fn judge(&self, message: &ServerMessage) -> Result<bool, String> {
        let id = message.message_id.as_deref();
        let delivered: Vec<&Delivery> = self
            .deliveries
            .iter()
            .filter(|d| event_type(&d.event) == ServerEvent::POLY_AGENT_MESSAGE_CHUNK)
            .filter(|d| payload_message_id(&d.event) == id)
            .collect();
        if delivered.is_empty() {
            return Ok(false);
        }
        let Some(on_screen) = shown(self.view, message) else {
            let live_only: String = live_assembly(message, &delivered, self.only_in_batches);
            if live_only.is_empty() || self.view.iter().any(|m| m.text == live_only) {
                // Not shown beyond the chunks it got live, or it came only in batches: MSG-1's
                // (or ERR-2's, beside an unknown event).
                return Ok(false);
            }
            return Err(format!(
                "the streamed message `{}` is not shown",
                shorten(&message.text)
            ));
        };
        let live_only = live_assembly(message, &delivered, self.only_in_batches);
        // Only the chunks it got live are shown: the rest came only in a batch (MSG-1's).
        let batch_part_missing = on_screen.text != message.text && on_screen.text == live_only;
        if on_screen.text != message.text && !batch_part_missing {
            return Err(format!(
                "shows `{}`; its chunks in chunk_index order say `{}`",
                shorten(&on_screen.text),
                shorten(&message.text)
            ));
        }
        let suggestions_differ =
            self.renders_suggestions && on_screen.suggestions != message.suggestions;
        if !batch_part_missing
            && (on_screen.attachments != message.attachments || suggestions_differ)
        {
            return Err(format!(
                "`{}` shows {} attachment(s) and suggestions {:?}; its chunks carry {} and {:?}",
                shorten(&message.text),
                on_screen.attachments.len(),
                on_screen.suggestions,
                message.attachments.len(),
                message.suggestions
            ));
        }
        match self.completion_wrong(message, &delivered, on_screen, batch_part_missing) {
            Some(problem) => Err(problem),
            None => Ok(true),
        }
    }

    /// The message shown complete before its final chunk (or not after it). `Some` says how.
    fn completion_wrong(
        &self,
        message: &ServerMessage,
        delivered: &[&Delivery],
        on_screen: &ViewMessage,
        batch_part_missing: bool,
    ) -> Option<String> {
        let final_at = delivered
            .iter()
            .filter(|d| d.event["payload"]["is_complete"] == true)
            .filter(|d| {
                !batch_part_missing
                    || event_id(&d.event).is_some_and(|id| !self.only_in_batches.contains(id))
            })
            .map(|d| d.at_ms)
            .min();
        match final_at {
            Some(_) if !on_screen.complete => {
                return Some(format!(
                    "`{}` is not shown complete after its final chunk",
                    shorten(&message.text)
                ));
            }
            None if on_screen.complete => {
                return Some(format!(
                    "`{}` is shown complete but its final chunk never arrived",
                    shorten(&message.text)
                ));
            }
            _ => {}
        }
        // Complete before the final chunk had even been sent: impossible for a client that
        // waits for `is_complete`.
        let id = message.message_id.as_deref();
        let early = self.e.samples.iter().find(|s| {
            final_at.is_none_or(|f| s.replied_ms < f)
                && s.view.messages().is_some_and(|ms| {
                    ms.iter()
                        .any(|m| m.message_id.as_deref() == id && m.complete)
                })
        })?;
        Some(format!(
            "the view at {} ms shows `{}` complete before its final chunk was sent",
            early.replied_ms,
            shorten(&message.text)
        ))
    }
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
