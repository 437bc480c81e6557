//! The Messaging API wire format: every frame and body, typed (spec §2, §4–§7).
//!
//! Wire types only: serde + schemars, no I/O crates. A third consumer could lift this module
//! into its own crate unchanged.
//!
//! - [`ids`]: `SessionId`, `EventId`, `MessageId`, `Sequence`, `Timestamp`.
//! - [`enums`]: typing states, session-end reasons, levels, content types, handoff reasons,
//!   platforms; each open to unknown values.
//! - [`payloads`]: the payload of every event, and the attachment / suggestion / live-agent
//!   objects.
//! - [`client`]: the five client events and the strict decoder with its error catalog mapping.
//! - [`server`]: the server envelope, the 24 server event types (20 server-originated plus 4
//!   echoes), and the lenient decoder.
//! - [`metadata`]: `metadata.custom`, echoed verbatim.
//! - [`http`]: REST request, response and error bodies.
//! - [`catalog`]: every documented error string.

pub mod catalog;
pub mod client;
pub mod enums;
pub mod http;
pub mod ids;
pub mod metadata;
pub mod payloads;
pub mod server;

pub use client::{
    ClientEvent, ClientFrame, ClientFrameError, ClientFrameRejection, DecodeOptions, RawFrame,
    decode_client_frame, encode_client_frame,
};
pub use enums::{
    AttachmentContentType, ClientHandoffReason, Platform, SessionEndReason, SystemMessageLevel,
    TypingState,
};
pub use http::{AccessTokenResponse, CreateSessionRequest, CreateSessionResponse, ErrorBody};
pub use ids::{EventId, MessageId, Sequence, SessionId, Timestamp};
pub use metadata::Metadata;
pub use payloads::*;
pub use server::{
    ServerEnvelope, ServerEvent, UnknownEvent, decode_server_frame, encode_server_frame,
};
