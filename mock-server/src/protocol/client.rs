//! Client → server frames (spec §4.1, §5) and their strict decoding (spec §10.6, §12 B7–B11, B13).
//!
//! The mock decodes every inbound frame with [`decode_client_frame`]. It never panics; every bad
//! input becomes a typed [`ClientFrameError`], and [`ClientFrameError::system_message`] is the
//! one place that maps an error to its exact catalog string.

use std::borrow::Cow;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::catalog;
use super::enums::TypingState;
use super::metadata::Metadata;
use super::payloads::{Empty, UserMessage, UserTyping};
use super::server::ServerEvent;

/// One of the five client events (spec §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// `EVENT_TYPE_REQUEST_POLY_AGENT_JOIN`
    RequestPolyAgentJoin,
    /// `EVENT_TYPE_USER_MESSAGE`
    UserMessage(UserMessage),
    /// `EVENT_TYPE_USER_TYPING`
    UserTyping(UserTyping),
    /// `EVENT_TYPE_USER_END_SESSION`
    UserEndSession,
    /// `EVENT_TYPE_HEARTBEAT`
    Heartbeat,
}

impl ClientEvent {
    /// The five client event types, in spec order.
    pub const TYPES: &'static [&'static str] = &[
        Self::REQUEST_POLY_AGENT_JOIN,
        Self::USER_MESSAGE,
        Self::USER_TYPING,
        Self::USER_END_SESSION,
        Self::HEARTBEAT,
    ];
    pub const REQUEST_POLY_AGENT_JOIN: &'static str = "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN";
    pub const USER_MESSAGE: &'static str = "EVENT_TYPE_USER_MESSAGE";
    pub const USER_TYPING: &'static str = "EVENT_TYPE_USER_TYPING";
    pub const USER_END_SESSION: &'static str = "EVENT_TYPE_USER_END_SESSION";
    pub const HEARTBEAT: &'static str = "EVENT_TYPE_HEARTBEAT";

    pub fn event_type(&self) -> &'static str {
        match self {
            Self::RequestPolyAgentJoin => Self::REQUEST_POLY_AGENT_JOIN,
            Self::UserMessage(_) => Self::USER_MESSAGE,
            Self::UserTyping(_) => Self::USER_TYPING,
            Self::UserEndSession => Self::USER_END_SESSION,
            Self::Heartbeat => Self::HEARTBEAT,
        }
    }
}

/// A decoded client frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    pub event: ClientEvent,
    pub metadata: Option<Metadata>,
    /// Server-assigned envelope fields (`id`, `sequence`, `timestamp`) the client sent anyway.
    /// The server ignores them (spec §12 B8); the conformance kit reports them (WS-5).
    pub server_assigned_fields: Vec<&'static str>,
}

impl ClientFrame {
    pub fn new(event: ClientEvent) -> Self {
        Self {
            event,
            metadata: None,
            server_assigned_fields: Vec::new(),
        }
    }

    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

/// Encodes `type`, `payload` and, when present, `metadata`: exactly what a client may send.
impl Serialize for ClientFrame {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = if self.metadata.is_some() { 3 } else { 2 };
        let mut out = serializer.serialize_struct("ClientFrame", fields)?;
        out.serialize_field("type", self.event.event_type())?;
        match &self.event {
            ClientEvent::UserMessage(payload) => out.serialize_field("payload", payload)?,
            ClientEvent::UserTyping(payload) => out.serialize_field("payload", payload)?,
            ClientEvent::RequestPolyAgentJoin
            | ClientEvent::UserEndSession
            | ClientEvent::Heartbeat => out.serialize_field("payload", &Empty {})?,
        }
        if let Some(metadata) = &self.metadata {
            out.serialize_field("metadata", metadata)?;
        }
        out.end()
    }
}

/// A WebSocket data frame as it arrived.
#[derive(Debug, Clone, Copy)]
pub enum RawFrame<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl RawFrame<'_> {
    pub fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Binary(bytes) => bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Knobs of the decoder that spec §12 makes configurable.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Frames larger than this get `Message too large` (spec §12 B13). Default 131072.
    pub max_message_size_bytes: usize,
    /// Treat a missing `payload` as `{}` (lenient option of spec §12 B9). Default `false`.
    pub missing_payload_is_empty: bool,
    /// Accept whitespace-only `USER_MESSAGE.text` (spec §12 B10). Default `true`.
    pub allow_blank_text: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            // 128 KiB: the documented per-message limit (spec §3.3).
            max_message_size_bytes: 131_072,
            missing_payload_is_empty: false,
            allow_blank_text: true,
        }
    }
}

/// Why a client frame was rejected. Each maps to one catalog string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientFrameError {
    #[error("frame of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("binary frame: events travel as text frames")]
    Binary,
    #[error("frame is not valid JSON: {0}")]
    NotJson(String),
    #[error("frame is not a JSON object")]
    NotObject,
    #[error("frame has no `type`")]
    MissingType,
    #[error("`type` is not a string")]
    TypeNotString,
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    #[error("`{0}` is a server event type; clients may not send it")]
    NotAllowed(String),
    #[error("frame has no `payload`")]
    MissingPayload,
    #[error("`payload` is not a JSON object")]
    PayloadNotObject,
    #[error("invalid `{event_type}` payload: {reason}")]
    InvalidPayload {
        event_type: &'static str,
        reason: String,
    },
    #[error("invalid `metadata`: {0}")]
    InvalidMetadata(String),
}

impl ClientFrameError {
    /// The exact `SYSTEM_MESSAGE.message` the server answers with (spec §10.6, §12 B13).
    pub fn system_message(&self) -> Cow<'static, str> {
        match self {
            Self::TooLarge { .. } => Cow::Borrowed(catalog::MESSAGE_TOO_LARGE),
            Self::NotAllowed(event_type) => Cow::Owned(format!(
                "{}{event_type}",
                catalog::EVENT_TYPE_NOT_ALLOWED_PREFIX
            )),
            Self::Binary
            | Self::NotJson(_)
            | Self::NotObject
            | Self::MissingType
            | Self::TypeNotString
            | Self::UnknownType(_)
            | Self::MissingPayload
            | Self::PayloadNotObject
            | Self::InvalidPayload { .. }
            | Self::InvalidMetadata(_) => Cow::Borrowed(catalog::UNKNOWN_EVENT_OR_INVALID_FORMAT),
        }
    }
}

/// A rejected frame: the error, plus the frame's `metadata` when it could be read, so the
/// error `SYSTEM_MESSAGE` can echo it (spec §10.9, §12 B7).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrameRejection {
    pub error: ClientFrameError,
    pub metadata: Option<Metadata>,
}

impl From<ClientFrameError> for ClientFrameRejection {
    fn from(error: ClientFrameError) -> Self {
        Self {
            error,
            metadata: None,
        }
    }
}

/// Server-internal types a client may not send although the docs do not list them as server
/// events (spec §12 F4).
const SERVER_INTERNAL_TYPES: &[&str] =
    &["EVENT_TYPE_REQUEST_POLY_AGENT_JOIN_WITH_GREETING_MESSAGE"];

/// The top level of a client frame, every member kept raw so that each is validated on its own
/// (and a bad `type` still lets us read `metadata`).
#[derive(Deserialize)]
struct RawClientFrame<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "present")]
    event_type: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    sequence: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    timestamp: Option<&'a RawValue>,
}

/// `Some` whenever the member is present, even when it is `null`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

fn is_object(raw: &RawValue) -> bool {
    raw.get().trim_start().starts_with('{')
}

/// Decodes one inbound frame strictly. Never panics.
pub fn decode_client_frame(
    frame: RawFrame<'_>,
    options: &DecodeOptions,
) -> Result<ClientFrame, ClientFrameRejection> {
    let text = object_text(frame, options)?;
    let raw: RawClientFrame<'_> =
        serde_json::from_str(text).map_err(|e| ClientFrameError::NotJson(e.to_string()))?;

    // Metadata first, so that every later rejection can echo it.
    let metadata = match raw.metadata {
        None => None,
        Some(raw_metadata) => Some(
            serde_json::from_str::<Metadata>(raw_metadata.get())
                .map_err(|e| ClientFrameError::InvalidMetadata(e.to_string()))?,
        ),
    };
    let reject = |error: ClientFrameError| ClientFrameRejection {
        error,
        metadata: metadata.clone(),
    };

    let client_type = client_type(raw.event_type).map_err(reject)?;

    let empty_object;
    let payload = match raw.payload {
        Some(payload) if is_object(payload) => payload,
        Some(_) => return Err(reject(ClientFrameError::PayloadNotObject)),
        None if options.missing_payload_is_empty => {
            empty_object = RawValue::from_string("{}".to_owned())
                .map_err(|e| reject(ClientFrameError::NotJson(e.to_string())))?;
            &*empty_object
        }
        None => return Err(reject(ClientFrameError::MissingPayload)),
    };

    let event = client_event(client_type, payload, options).map_err(reject)?;

    let server_assigned_fields = [
        ("id", raw.id),
        ("sequence", raw.sequence),
        ("timestamp", raw.timestamp),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|_| name))
    .collect();

    Ok(ClientFrame {
        event,
        metadata,
        server_assigned_fields,
    })
}

/// The frame's text, once it is within the size limit, a text frame, and starts like a JSON
/// object.
fn object_text<'a>(
    frame: RawFrame<'a>,
    options: &DecodeOptions,
) -> Result<&'a str, ClientFrameError> {
    if frame.len() > options.max_message_size_bytes {
        return Err(ClientFrameError::TooLarge {
            size: frame.len(),
            limit: options.max_message_size_bytes,
        });
    }
    let text = match frame {
        RawFrame::Text(text) => text,
        RawFrame::Binary(_) => return Err(ClientFrameError::Binary),
    };
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => ClientFrameError::NotObject,
            Err(error) => ClientFrameError::NotJson(error.to_string()),
        });
    }
    Ok(text)
}

/// The client event type a frame's raw `type` names: one of [`ClientEvent::TYPES`], or why
/// not (missing, not a string, a server's type, unknown).
fn client_type(raw_type: Option<&RawValue>) -> Result<&'static str, ClientFrameError> {
    let event_type: Cow<'_, str> = match raw_type {
        None => return Err(ClientFrameError::MissingType),
        Some(raw_type) => match serde_json::from_str::<&str>(raw_type.get()) {
            Ok(borrowed) => Cow::Borrowed(borrowed),
            Err(_) => match serde_json::from_str::<String>(raw_type.get()) {
                Ok(owned) => Cow::Owned(owned),
                Err(_) => return Err(ClientFrameError::TypeNotString),
            },
        },
    };
    let Some(&client_type) = ClientEvent::TYPES.iter().find(|t| **t == event_type) else {
        let known_elsewhere = ServerEvent::KNOWN_TYPES.contains(&event_type.as_ref())
            || SERVER_INTERNAL_TYPES.contains(&event_type.as_ref());
        return Err(if known_elsewhere {
            ClientFrameError::NotAllowed(event_type.into_owned())
        } else {
            ClientFrameError::UnknownType(event_type.into_owned())
        });
    };
    Ok(client_type)
}

/// The event of `client_type` with its `payload` (an object) validated.
fn client_event(
    client_type: &'static str,
    payload: &RawValue,
    options: &DecodeOptions,
) -> Result<ClientEvent, ClientFrameError> {
    let invalid = |reason: String| ClientFrameError::InvalidPayload {
        event_type: client_type,
        reason,
    };
    Ok(match client_type {
        ClientEvent::REQUEST_POLY_AGENT_JOIN => ClientEvent::RequestPolyAgentJoin,
        ClientEvent::USER_END_SESSION => ClientEvent::UserEndSession,
        ClientEvent::HEARTBEAT => ClientEvent::Heartbeat,
        ClientEvent::USER_MESSAGE => {
            let message: UserMessage =
                serde_json::from_str(payload.get()).map_err(|e| invalid(e.to_string()))?;
            if message.text.is_empty() {
                return Err(invalid("`text` is empty".to_owned()));
            }
            if !options.allow_blank_text && message.text.trim().is_empty() {
                return Err(invalid("`text` is only whitespace".to_owned()));
            }
            ClientEvent::UserMessage(message)
        }
        // The only type left: EVENT_TYPE_USER_TYPING.
        _ => {
            let typing: UserTyping =
                serde_json::from_str(payload.get()).map_err(|e| invalid(e.to_string()))?;
            if let TypingState::Other(state) = &typing.state {
                return Err(invalid(format!("unknown typing state `{state}`")));
            }
            ClientEvent::UserTyping(typing)
        }
    })
}

/// Encodes one client frame (used by clients: the reference client and the load generator).
pub fn encode_client_frame(frame: &ClientFrame) -> String {
    // Serializing these types cannot fail: every map key is a string.
    serde_json::to_string(frame).unwrap_or_else(|_| unreachable!("string keys only"))
}
