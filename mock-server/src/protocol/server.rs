//! Server → client frames: the envelope (spec §4.2) and every server event type (spec §6.6).
//!
//! Encoding writes `id`, `sequence`, `timestamp`, `type`, `payload` and, when present,
//! `metadata`. Decoding is lenient (spec §11 ERR-2): unknown fields are ignored, an unknown
//! `type` is kept as [`ServerEvent::Unknown`], a missing `timestamp` or `sequence` is tolerated,
//! and a batch element may carry its payload under the alternate key of spec Appendix A
//! (`"poly_agent_message": {...}` instead of `"payload"`).

use std::borrow::Cow;

use schemars::{JsonSchema, SchemaGenerator, json_schema};
use serde::de::Error as _;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::ids::{EventId, Sequence, Timestamp};
use super::metadata::Metadata;
use super::payloads::*;

/// An event type the model does not know, kept as raw JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownEvent {
    pub event_type: String,
    pub payload: Value,
}

macro_rules! server_events {
    ( $( $(#[$vmeta:meta])* $variant:ident($payload:ty) as $konst:ident = $wire:literal, )* ) => {
        /// A server event: its `type` and typed `payload`.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ServerEvent {
            $( $(#[$vmeta])* #[doc = concat!("`", $wire, "`")] $variant($payload), )*
            /// Any other `type`; decoding keeps it instead of failing (spec §11 ERR-2).
            Unknown(UnknownEvent),
        }

        impl ServerEvent {
            /// Every documented server event type (echoes included), in spec order.
            pub const KNOWN_TYPES: &'static [&'static str] = &[$($wire),*];

            $(
                #[doc = concat!("The wire `type` `", $wire, "`.")]
                pub const $konst: &'static str = $wire;
            )*

            /// The wire `type`.
            pub fn event_type(&self) -> &str {
                match self {
                    $(Self::$variant(_) => $wire,)*
                    Self::Unknown(unknown) => &unknown.event_type,
                }
            }

            /// Builds an event from its wire parts. Known types get a typed payload (an error if
            /// it does not fit); unknown types are kept raw.
            pub fn from_parts(event_type: &str, payload: Value) -> Result<Self, serde_json::Error> {
                Ok(match event_type {
                    $($wire => Self::$variant(serde_json::from_value(payload)?),)*
                    other => Self::Unknown(UnknownEvent { event_type: other.to_owned(), payload }),
                })
            }

            fn serialize_payload<S: SerializeStruct>(&self, out: &mut S) -> Result<(), S::Error> {
                match self {
                    $(Self::$variant(payload) => out.serialize_field("payload", payload),)*
                    Self::Unknown(unknown) => out.serialize_field("payload", &unknown.payload),
                }
            }

            /// The payload schema of a known type, registering its definitions in `generator`.
            pub fn payload_schema(
                event_type: &str,
                generator: &mut SchemaGenerator,
            ) -> Option<schemars::Schema> {
                match event_type {
                    $($wire => Some(generator.subschema_for::<$payload>()),)*
                    _ => None,
                }
            }
        }
    };
}

server_events! {
    /// Echo of the client's join request.
    RequestPolyAgentJoin(Empty) as REQUEST_POLY_AGENT_JOIN = "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN",
    /// Echo of a user message, with the server-assigned `message_id`.
    UserMessage(UserMessageEcho) as USER_MESSAGE = "EVENT_TYPE_USER_MESSAGE",
    /// Echo of the client's end-session request.
    UserEndSession(Empty) as USER_END_SESSION = "EVENT_TYPE_USER_END_SESSION",
    /// Echo of a client heartbeat.
    Heartbeat(Empty) as HEARTBEAT = "EVENT_TYPE_HEARTBEAT",
    PolyAgentJoined(PolyAgentJoined) as POLY_AGENT_JOINED = "EVENT_TYPE_POLY_AGENT_JOINED",
    PolyAgentThinking(Empty) as POLY_AGENT_THINKING = "EVENT_TYPE_POLY_AGENT_THINKING",
    PolyAgentMessage(PolyAgentMessage) as POLY_AGENT_MESSAGE = "EVENT_TYPE_POLY_AGENT_MESSAGE",
    PolyAgentMessageChunk(PolyAgentMessageChunk) as POLY_AGENT_MESSAGE_CHUNK = "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK",
    PolyAgentLeft(Empty) as POLY_AGENT_LEFT = "EVENT_TYPE_POLY_AGENT_LEFT",
    PolyAgentTriggeredHandoff(Empty) as POLY_AGENT_TRIGGERED_HANDOFF = "EVENT_TYPE_POLY_AGENT_TRIGGERED_HANDOFF",
    LiveAgentJoined(LiveAgentJoined) as LIVE_AGENT_JOINED = "EVENT_TYPE_LIVE_AGENT_JOINED",
    LiveAgentTyping(LiveAgentTyping) as LIVE_AGENT_TYPING = "EVENT_TYPE_LIVE_AGENT_TYPING",
    LiveAgentMessage(LiveAgentMessage) as LIVE_AGENT_MESSAGE = "EVENT_TYPE_LIVE_AGENT_MESSAGE",
    LiveAgentLeft(Empty) as LIVE_AGENT_LEFT = "EVENT_TYPE_LIVE_AGENT_LEFT",
    HandoffAccepted(Empty) as HANDOFF_ACCEPTED = "EVENT_TYPE_HANDOFF_ACCEPTED",
    HandoffQueueStatus(HandoffQueueStatus) as HANDOFF_QUEUE_STATUS = "EVENT_TYPE_HANDOFF_QUEUE_STATUS",
    ClientHandoffRequired(ClientHandoffRequired) as CLIENT_HANDOFF_REQUIRED = "EVENT_TYPE_CLIENT_HANDOFF_REQUIRED",
    HandoffFailed(Empty) as HANDOFF_FAILED = "EVENT_TYPE_HANDOFF_FAILED",
    HandoffTimeout(Empty) as HANDOFF_TIMEOUT = "EVENT_TYPE_HANDOFF_TIMEOUT",
    SessionStart(SessionStart) as SESSION_START = "EVENT_TYPE_SESSION_START",
    SessionEnd(SessionEnd) as SESSION_END = "EVENT_TYPE_SESSION_END",
    SystemMessage(SystemMessage) as SYSTEM_MESSAGE = "EVENT_TYPE_SYSTEM_MESSAGE",
    LanguageChanged(LanguageChanged) as LANGUAGE_CHANGED = "EVENT_TYPE_LANGUAGE_CHANGED",
    EventBatch(EventBatch) as EVENT_BATCH = "EVENT_TYPE_EVENT_BATCH",
}

/// The key under which spec Appendix A's alternate batch shape carries a payload:
/// the type without `EVENT_TYPE_`, lowercased (`poly_agent_message`).
pub fn alternate_payload_key(event_type: &str) -> String {
    event_type
        .strip_prefix("EVENT_TYPE_")
        .unwrap_or(event_type)
        .to_ascii_lowercase()
}

impl Serialize for ServerEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("ServerEvent", 2)?;
        out.serialize_field("type", self.event_type())?;
        self.serialize_payload(&mut out)?;
        out.end()
    }
}

/// The wire parts shared by a bare event (`type` + `payload`) and a full envelope.
#[derive(Deserialize)]
struct RawServerFrame {
    #[serde(default)]
    id: Option<EventId>,
    #[serde(default)]
    sequence: Option<Sequence>,
    #[serde(default)]
    timestamp: Option<Timestamp>,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

impl RawServerFrame {
    fn into_event(mut self) -> Result<(ServerEvent, Self), serde_json::Error> {
        let payload = match self.payload.take() {
            Some(payload) => payload,
            None => self
                .rest
                .remove(&alternate_payload_key(&self.event_type))
                .unwrap_or_else(|| Value::Object(Map::new())),
        };
        let event = ServerEvent::from_parts(&self.event_type, payload)?;
        Ok((event, self))
    }
}

impl<'de> Deserialize<'de> for ServerEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawServerFrame::deserialize(deserializer)?;
        raw.into_event()
            .map(|(event, _)| event)
            .map_err(D::Error::custom)
    }
}

/// A complete server frame (spec §4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerEnvelope {
    /// Unique event id: the deduplication key.
    pub id: EventId,
    /// `None` (JSON `null`) for transient events that are not journaled (spec §12 B1).
    pub sequence: Option<Sequence>,
    pub timestamp: Timestamp,
    pub event: ServerEvent,
    /// Present only on echoes and errors caused by a client frame that carried `metadata`.
    pub metadata: Option<Metadata>,
}

impl Serialize for ServerEnvelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = if self.metadata.is_some() { 6 } else { 5 };
        let mut out = serializer.serialize_struct("ServerEnvelope", fields)?;
        out.serialize_field("id", &self.id)?;
        out.serialize_field("sequence", &self.sequence)?;
        out.serialize_field("timestamp", &self.timestamp)?;
        out.serialize_field("type", self.event.event_type())?;
        self.event.serialize_payload(&mut out)?;
        if let Some(metadata) = &self.metadata {
            out.serialize_field("metadata", metadata)?;
        }
        out.end()
    }
}

impl<'de> Deserialize<'de> for ServerEnvelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawServerFrame::deserialize(deserializer)?;
        let (event, raw) = raw.into_event().map_err(D::Error::custom)?;
        Ok(Self {
            id: raw.id.ok_or_else(|| D::Error::missing_field("id"))?,
            sequence: raw.sequence,
            timestamp: raw.timestamp.unwrap_or_else(|| Timestamp(String::new())),
            event,
            metadata: raw.metadata,
        })
    }
}

/// Inside a batch, elements are checked loosely (any `type`, object `payload`); the
/// per-type schemas check each event fully.
impl JsonSchema for ServerEnvelope {
    fn schema_name() -> Cow<'static, str> {
        "ServerEnvelope".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> schemars::Schema {
        let metadata = generator.subschema_for::<Metadata>();
        json_schema!({
            "description": "A complete server event envelope (spec §4.2).",
            "type": "object",
            "required": ["id", "sequence", "timestamp", "type", "payload"],
            "properties": {
                "id": { "type": "string" },
                "sequence": { "type": ["integer", "null"], "minimum": 0 },
                "timestamp": { "type": "string" },
                "type": { "type": "string", "pattern": "^EVENT_TYPE_[A-Z_]+$" },
                "payload": { "type": "object" },
                "metadata": metadata
            }
        })
    }
}

/// Decodes one server frame leniently (spec §11 ERR-2).
pub fn decode_server_frame(text: &str) -> Result<ServerEnvelope, serde_json::Error> {
    serde_json::from_str(text)
}

/// Encodes one server frame.
pub fn encode_server_frame(envelope: &ServerEnvelope) -> String {
    // Serializing these types cannot fail: every map key is a string.
    serde_json::to_string(envelope).unwrap_or_else(|_| unreachable!("string keys only"))
}
