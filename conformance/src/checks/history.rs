//! The conversation as the server said it: a session's history, and the messages it carries
//! (streamed ones assembled).

use std::collections::BTreeMap;

use mock_server::journal::JournalEvent;
use mock_server::protocol::ServerEvent;
use serde_json::Value;

use super::{SessionRecord, event_id, event_type, sequence, with_payload};
use crate::contract::Author;

impl SessionRecord {
    /// The session's history as the kit can know it: every sequenced event the mock sent on
    /// its own or inside a batch (an event withheld from live delivery is known from the batch
    /// that later carried it), and every message sent with a null sequence (placed after the
    /// sequenced events sent before it), once each, in order.
    pub fn history(&self) -> Vec<(u64, Value)> {
        let mut seen = std::collections::HashSet::new();
        let mut keyed: Vec<((u64, u64), u64, Value)> = Vec::new();
        let mut highest = 0;
        for entry in &self.journal {
            let JournalEvent::ServerFrame { frame, .. } = &entry.event else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<Value>(frame.get()) else {
                continue;
            };
            let events: Vec<Value> = if event_type(&value) == ServerEvent::EVENT_BATCH {
                value["payload"]["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(with_payload)
                    .collect()
            } else {
                vec![value]
            };
            for event in events {
                let key = match sequence(&event) {
                    Some(n) => (n, 0),
                    None if MESSAGE_TYPES.contains(&event_type(&event)) => {
                        (highest, keyed.len() as u64 + 1)
                    }
                    None => continue,
                };
                if seen.insert(event_id(&event).unwrap_or_default().to_owned()) {
                    highest = highest.max(key.0);
                    keyed.push((key, entry.at_ms, event));
                }
            }
        }
        keyed.sort_by_key(|(key, _, _)| *key);
        keyed.into_iter().map(|(_, at, e)| (at, e)).collect()
    }
}

/// Server events that carry a message.
pub const MESSAGE_TYPES: &[&str] = &[
    ServerEvent::USER_MESSAGE,
    ServerEvent::POLY_AGENT_MESSAGE,
    ServerEvent::POLY_AGENT_MESSAGE_CHUNK,
    ServerEvent::LIVE_AGENT_MESSAGE,
];

impl SessionRecord {
    /// Every message the server said in this session, in sequence order (streamed ones
    /// assembled by `chunk_index`).
    pub fn messages(&self) -> Vec<ServerMessage> {
        let mut out: Vec<ServerMessage> = Vec::new();
        for (_, event) in self.history() {
            let Some(from) = message_author(&event) else {
                continue;
            };
            let payload = &event["payload"];
            let message_id = payload["message_id"].as_str().map(str::to_owned);
            if event_type(&event) == ServerEvent::POLY_AGENT_MESSAGE_CHUNK {
                add_chunk(&mut out, from, message_id, payload);
                continue;
            }
            out.push(ServerMessage {
                from,
                message_id,
                text: payload["text"].as_str().unwrap_or_default().to_owned(),
                attachments: payload["attachments"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                suggestions: suggestion_texts(
                    payload["response_suggestions"]
                        .as_array()
                        .into_iter()
                        .flatten(),
                ),
                chunks: BTreeMap::new(),
            });
        }
        for message in &mut out {
            if !message.chunks.is_empty() {
                assemble_chunks(message);
            }
        }
        out
    }
}

/// Who said a message event, or `None` when the event carries no message.
fn message_author(event: &Value) -> Option<Author> {
    match event_type(event) {
        ServerEvent::USER_MESSAGE => Some(Author::User),
        ServerEvent::POLY_AGENT_MESSAGE | ServerEvent::POLY_AGENT_MESSAGE_CHUNK => {
            Some(Author::Agent)
        }
        ServerEvent::LIVE_AGENT_MESSAGE => Some(Author::LiveAgent),
        _ => None,
    }
}

/// The texts of some `response_suggestions` entries, those that have one.
fn suggestion_texts<'a>(suggestions: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    suggestions
        .into_iter()
        .filter_map(|s| s["message_text"].as_str().map(str::to_owned))
        .collect()
}

/// Files a streamed chunk under its message (the first streamed message with its id), or
/// starts that message with it.
fn add_chunk(
    out: &mut Vec<ServerMessage>,
    from: Author,
    message_id: Option<String>,
    payload: &Value,
) {
    let index = payload["chunk_index"].as_u64().unwrap_or(0);
    match out
        .iter_mut()
        .find(|m| m.message_id == message_id && !m.chunks.is_empty())
    {
        Some(message) => {
            message.chunks.insert(index, payload.clone());
        }
        None => out.push(ServerMessage {
            from,
            message_id,
            text: String::new(),
            attachments: Vec::new(),
            suggestions: Vec::new(),
            chunks: BTreeMap::from([(index, payload.clone())]),
        }),
    }
}

/// Sets a streamed message's text, attachments and suggestions from its chunks, in
/// `chunk_index` order.
fn assemble_chunks(message: &mut ServerMessage) {
    message.text = message
        .chunks
        .values()
        .filter_map(|c| c["text"].as_str())
        .collect();
    message.attachments = message
        .chunks
        .values()
        .flat_map(|c| c["attachments"].as_array().cloned().unwrap_or_default())
        .collect();
    message.suggestions = message
        .chunks
        .values()
        .flat_map(|c| {
            c["response_suggestions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|s| s["message_text"].as_str().map(str::to_owned))
        .collect();
}

/// A message the conversation has, as the server said it: its id and what it carries.
#[derive(Debug, Clone)]
pub struct ServerMessage {
    pub from: Author,
    pub message_id: Option<String>,
    pub text: String,
    pub attachments: Vec<Value>,
    pub suggestions: Vec<String>,
    /// Streamed: the chunks by `chunk_index`.
    pub chunks: BTreeMap<u64, Value>,
}
