//! MSG-1 … MSG-5: what the client makes of the events it gets, and its receipts.
//!
//! Blame is split so one defect fails one obligation: a message that reached the client only
//! inside a batch and is missing is MSG-1's (MSG-3 excuses it); a duplicate is MSG-2's (MSG-3
//! judges the list with duplicates removed); the text of a streamed message is MSG-4's (MSG-3
//! recognises it by its id); and a message the client never received is nobody's.
//!
//! One submodule per obligation; here, what they share: matching the view against what
//! reached the client, and [`BatchOnly`].

mod batches;
mod dedup;
mod order;
mod resend;
mod streaming;

use std::collections::HashSet;

use serde_json::Value;

use super::{Delivery, Evidence, MESSAGE_TYPES, Outcome, ServerMessage, event_id, event_type};
use crate::contract::ViewMessage;

pub use batches::{batch_only_messages, batches_flattened, unapplied_batch_end};

pub use dedup::shown_once;
pub use order::conversation_in_order;

pub use resend::lost_messages_resent;
pub use streaming::chunks_assembled;

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

/// A message event that reached the client only inside batches, and what the app made of it.
pub struct BatchOnly {
    /// Every batch that carried it also carried an event of an undocumented type.
    pub beside_unknown: bool,
    /// `None` when shown; else why not.
    pub missing: Option<String>,
}
