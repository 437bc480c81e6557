//! Event payloads (spec §5, §6, §7). Field names and types are exactly the documented ones.
//!
//! Decoding is lenient where the docs allow a field to be absent (array fields default to empty,
//! documented-optional fields are `Option`) and ignores unknown fields (spec §11 ERR-2).
//! Encoding always writes every documented field, so what the mock sends is complete.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::enums::{
    AttachmentContentType, ClientHandoffReason, SessionEndReason, SystemMessageLevel, TypingState,
};
use super::ids::MessageId;
use super::server::ServerEnvelope;

/// The payload `{}` of events without fields. Unknown fields are ignored on decode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Empty {}

// ---------------------------------------------------------------------------------------------
// Client → server (spec §5)

/// `EVENT_TYPE_USER_MESSAGE` sent by the client: a user utterance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserMessage {
    /// The user's text; required, non-empty.
    #[schemars(length(min = 1))]
    pub text: String,
}

/// `EVENT_TYPE_USER_TYPING`: the user started or stopped typing. Never echoed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserTyping {
    pub state: TypingState,
}

// ---------------------------------------------------------------------------------------------
// Shared objects (spec §6.5, §6.1.3)

/// Rich content in an agent or live-agent message (spec §6.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Attachment {
    /// Display title.
    pub title: String,
    /// Thumbnail / preview image URL.
    pub preview_image_url: String,
    /// The full content: the link the user opens.
    pub content_url: String,
    pub content_type: AttachmentContentType,
    /// Button label, e.g. "View locations".
    pub call_to_action_text: String,
}

/// A quick reply: when tapped, its `message_text` is sent as a `USER_MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResponseSuggestion {
    pub message_text: String,
}

// ---------------------------------------------------------------------------------------------
// Echoes of client events (spec §4.3)

/// The echo of `EVENT_TYPE_USER_MESSAGE`: the text as sent plus a server-assigned `message_id`
/// (spec §12 B6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserMessageEcho {
    pub text: String,
    pub message_id: MessageId,
}

// ---------------------------------------------------------------------------------------------
// PolyAI agent events (spec §6.1)

/// `EVENT_TYPE_POLY_AGENT_JOINED`: the agent's persona.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PolyAgentJoined {
    /// Display name, e.g. "Ada".
    pub agent_name: String,
    pub agent_avatar_url: String,
}

/// `EVENT_TYPE_POLY_AGENT_MESSAGE`: a complete agent message (streaming off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PolyAgentMessage {
    pub message_id: MessageId,
    pub text: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub response_suggestions: Vec<ResponseSuggestion>,
}

/// `EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK`: one streaming fragment (spec §7). Reassemble per
/// `message_id` in `chunk_index` order; the message is done at `is_complete: true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PolyAgentMessageChunk {
    /// Identical in every chunk of one message.
    pub message_id: MessageId,
    /// A fragment to append; may be empty on the final chunk.
    pub text: String,
    /// Attachments to append to the message's list.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Suggestions to append to the message's list.
    #[serde(default)]
    pub response_suggestions: Vec<ResponseSuggestion>,
    /// 1-based position of the chunk.
    #[schemars(range(min = 1))]
    pub chunk_index: u32,
    /// `true` only on the last chunk.
    #[serde(default)]
    pub is_complete: bool,
}

// ---------------------------------------------------------------------------------------------
// Live agent events (spec §6.2)

/// The human agent, as carried by `EVENT_TYPE_LIVE_AGENT_JOINED`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LiveAgent {
    pub id: String,
    pub name: String,
    pub avatar_url: String,
}

/// `EVENT_TYPE_LIVE_AGENT_JOINED`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LiveAgentJoined {
    pub agent: LiveAgent,
}

/// `EVENT_TYPE_LIVE_AGENT_TYPING`: transient (`sequence: null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LiveAgentTyping {
    pub state: TypingState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

/// `EVENT_TYPE_LIVE_AGENT_MESSAGE`: like the agent message, plus `agent_id`. Never chunked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LiveAgentMessage {
    pub message_id: MessageId,
    pub agent_id: String,
    pub text: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub response_suggestions: Vec<ResponseSuggestion>,
}

// ---------------------------------------------------------------------------------------------
// Handoff events (spec §6.3)

/// `EVENT_TYPE_HANDOFF_QUEUE_STATUS`: every field optional (not every live-agent system reports
/// queue data).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HandoffQueueStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_in_queue: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<u32>,
}

/// `EVENT_TYPE_CLIENT_HANDOFF_REQUIRED`: the client must route the user itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientHandoffRequired {
    pub reason: ClientHandoffReason,
    /// Suggested routing destination, e.g. "Support Queue".
    pub queue_name: String,
}

// ---------------------------------------------------------------------------------------------
// System events (spec §6.4)

/// `capabilities` of `EVENT_TYPE_SESSION_START`. The mock always sends all four; decoding keeps
/// absence visible, because clients apply their own defaults (e.g. 30 s heartbeats).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Capabilities {
    /// Whether agent replies are streamed as chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<bool>,
    /// Largest single WebSocket message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_size_bytes: Option<u64>,
    /// Suggested number of reconnect attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_reconnect_attempts: Option<u32>,
    /// Heartbeat period in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_seconds: Option<u32>,
}

/// `EVENT_TYPE_SESSION_START`: always the first event of the first replay batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionStart {
    pub capabilities: Capabilities,
    /// Verified-context-injection id; omitted unless configured (spec §12 B12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
}

/// `EVENT_TYPE_SESSION_END`: the session is over; nothing follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionEnd {
    pub reason: SessionEndReason,
}

/// `EVENT_TYPE_SYSTEM_MESSAGE`: a notice, most often an error (catalog in spec §10.6–10.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SystemMessage {
    pub level: SystemMessageLevel,
    pub message: String,
}

/// `EVENT_TYPE_LANGUAGE_CHANGED`: the absolute new language (BCP-47), idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LanguageChanged {
    pub language_code: String,
}

/// `EVENT_TYPE_EVENT_BATCH`: history replay; each element is a complete envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventBatch {
    pub events: Vec<ServerEnvelope>,
}
