//! The frames this client writes: encoded as it sends them (some defects add fields), the
//! user's message with its client event id, and that id read back.

use mock_server::protocol::{ClientEvent, ClientFrame, Metadata, UserMessage, encode_client_frame};

use super::conversation::CLIENT_EVENT_ID;
use super::{Defect, Defects};

pub(super) fn message_frame(text: &str, client_event_id: &str) -> ClientFrame {
    let mut custom = serde_json::Map::new();
    custom.insert(CLIENT_EVENT_ID.into(), client_event_id.into());
    ClientFrame::new(ClientEvent::UserMessage(UserMessage {
        text: text.to_owned(),
    }))
    .with_metadata(Metadata { custom })
}

/// Encodes a frame as this client sends it (some defects add fields).
pub(super) fn encode(frame: &ClientFrame, defects: Defects) -> String {
    let text = encode_client_frame(frame);
    if defects.has(Defect::ServerFields) {
        return format!("{{\"id\":\"{}\",{}", uuid::Uuid::new_v4(), &text[1..]);
    }
    if defects.has(Defect::ExtraFrameField) {
        return format!("{{\"client_ts\":1,{}", &text[1..]);
    }
    text
}

pub(super) fn frame_client_id(frame: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(frame).ok()?;
    value["metadata"]["custom"][CLIENT_EVENT_ID]
        .as_str()
        .map(str::to_owned)
}
