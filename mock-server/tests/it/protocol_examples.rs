//! Every JSON example of spec §2 and §4–§7 decodes into the model and re-encodes to equal JSON.

use mock_server::protocol::{
    AccessTokenResponse, Capabilities, ClientEvent, CreateSessionRequest, CreateSessionResponse,
    DecodeOptions, HandoffQueueStatus, LiveAgentJoined, LiveAgentTyping, RawFrame, ServerEnvelope,
    ServerEvent, SessionStart, decode_client_frame,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Decodes `json` as `T`, re-encodes it, and asserts the two JSON values are equal.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str, json: &str) -> T {
    let original: Value = serde_json::from_str(json).expect("example is JSON");
    let decoded: T = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("{name}: example does not decode: {e}"));
    let encoded = serde_json::to_value(&decoded).expect("encodes");
    assert_eq!(encoded, original, "{name}: re-encoding changed the JSON");
    decoded
}

#[test]
fn http_examples_round_trip() {
    let token: AccessTokenResponse = round_trip(
        "§2.1 access-token response",
        r#"{ "access_token": "eyJhbGc...", "expires_in": 86400, "token_type": "Bearer" }"#,
    );
    assert_eq!(token.expires_in, 86_400);
    let request: CreateSessionRequest = round_trip(
        "§2.2 session request",
        r#"{ "platform": "web", "streaming_enabled": true }"#,
    );
    assert_eq!(request.streaming_enabled, Some(true));
    round_trip::<CreateSessionRequest>("§1.4 session request", r#"{"streaming_enabled": false}"#);
    round_trip::<CreateSessionRequest>("§2.2 empty body", "{}");
    round_trip::<CreateSessionResponse>(
        "§2.2 session response",
        r#"{ "session_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890" }"#,
    );
}

#[test]
fn client_frame_examples_round_trip() {
    let examples = [
        (
            "§4.1 user message with metadata",
            r#"{ "type": "EVENT_TYPE_USER_MESSAGE",
                 "payload": { "text": "Hello, I need some help." },
                 "metadata": { "custom": { "local_id": "draft_abc123" } } }"#,
            ClientEvent::USER_MESSAGE,
        ),
        (
            "§1.4 join",
            r#"{"type":"EVENT_TYPE_REQUEST_POLY_AGENT_JOIN","payload":{}}"#,
            ClientEvent::REQUEST_POLY_AGENT_JOIN,
        ),
        (
            "§3.5 heartbeat",
            r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{}}"#,
            ClientEvent::HEARTBEAT,
        ),
        (
            "§5 typing",
            r#"{"type":"EVENT_TYPE_USER_TYPING","payload":{"state":"TYPING_STATE_STARTED"}}"#,
            ClientEvent::USER_TYPING,
        ),
        (
            "§5 typing stopped",
            r#"{"type":"EVENT_TYPE_USER_TYPING","payload":{"state":"TYPING_STATE_STOPPED"}}"#,
            ClientEvent::USER_TYPING,
        ),
        (
            "§5 end session",
            r#"{"type":"EVENT_TYPE_USER_END_SESSION","payload":{}}"#,
            ClientEvent::USER_END_SESSION,
        ),
    ];
    for (name, json, event_type) in examples {
        let frame = decode_client_frame(RawFrame::Text(json), &DecodeOptions::default())
            .unwrap_or_else(|e| panic!("{name}: rejected: {:?}", e.error));
        assert_eq!(frame.event.event_type(), event_type, "{name}");
        assert!(frame.server_assigned_fields.is_empty(), "{name}");
        let original: Value = serde_json::from_str(json).expect("JSON");
        assert_eq!(
            serde_json::to_value(&frame).expect("encodes"),
            original,
            "{name}"
        );
    }
}

#[test]
fn server_envelope_example_round_trips() {
    let envelope: ServerEnvelope = round_trip(
        "§4.2 envelope",
        r#"{ "id": "018d91c7-7b12-7474-9a84-7e8c0e9e4f1a",
             "sequence": 5,
             "timestamp": "2024-02-12T12:00:00Z",
             "type": "EVENT_TYPE_POLY_AGENT_MESSAGE",
             "payload": { "message_id": "msg_abc123", "text": "Hello! How can I help you today?",
                          "attachments": [],
                          "response_suggestions": [ { "message_text": "I have a question about my order" },
                                                    { "message_text": "I need to make a booking" } ] } }"#,
    );
    let ServerEvent::PolyAgentMessage(message) = envelope.event else {
        panic!("decoded as {:?}", envelope.event);
    };
    assert_eq!(message.response_suggestions.len(), 2);
}

#[test]
fn streaming_chunk_example_round_trips() {
    let event: ServerEvent = round_trip(
        "§7 chunk",
        r#"{ "type": "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK",
             "payload": { "message_id": "msg_abc123", "text": "I'd be happy to ", "attachments": [],
                          "response_suggestions": [], "chunk_index": 1, "is_complete": false } }"#,
    );
    let ServerEvent::PolyAgentMessageChunk(chunk) = event else {
        panic!("decoded as {event:?}");
    };
    assert_eq!((chunk.chunk_index, chunk.is_complete), (1, false));
}

#[test]
fn payload_examples_round_trip() {
    let joined: LiveAgentJoined = round_trip(
        "§6.2.1 live agent joined",
        r#"{ "agent": { "id": "agent_42", "name": "Sarah", "avatar_url": "https://example.com/avatars/sarah.png" } }"#,
    );
    assert_eq!(joined.agent.name, "Sarah");
    round_trip::<LiveAgentTyping>(
        "§6.2.2 live agent typing",
        r#"{ "state": "TYPING_STATE_STARTED", "agent_id": "agent_42" }"#,
    );
    let queue: HandoffQueueStatus = round_trip(
        "§6.3.2 queue status",
        r#"{"queue_name":"General Support","position_in_queue":3,"estimated_wait_seconds":180}"#,
    );
    assert_eq!(queue.position_in_queue, Some(3));
    round_trip::<HandoffQueueStatus>("§6.3.2 queue status, all optional", "{}");
    let start: SessionStart = round_trip(
        "§6.4.1 session start",
        r#"{ "capabilities": { "streaming": true, "max_message_size_bytes": 131072,
                               "max_reconnect_attempts": 5, "heartbeat_interval_seconds": 30 } }"#,
    );
    assert_eq!(
        start.capabilities,
        Capabilities {
            streaming: Some(true),
            max_message_size_bytes: Some(131_072),
            max_reconnect_attempts: Some(5),
            heartbeat_interval_seconds: Some(30),
        }
    );
}

#[test]
fn every_payload_free_server_event_round_trips_with_empty_payload() {
    for event_type in [
        "EVENT_TYPE_POLY_AGENT_THINKING",
        "EVENT_TYPE_POLY_AGENT_LEFT",
        "EVENT_TYPE_POLY_AGENT_TRIGGERED_HANDOFF",
        "EVENT_TYPE_LIVE_AGENT_LEFT",
        "EVENT_TYPE_HANDOFF_ACCEPTED",
        "EVENT_TYPE_HANDOFF_FAILED",
        "EVENT_TYPE_HANDOFF_TIMEOUT",
        "EVENT_TYPE_HEARTBEAT",
        "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN",
        "EVENT_TYPE_USER_END_SESSION",
    ] {
        let json = format!(r#"{{"type":"{event_type}","payload":{{}}}}"#);
        let event: ServerEvent = round_trip(event_type, &json);
        assert!(
            !matches!(event, ServerEvent::Unknown(_)),
            "{event_type} is unknown"
        );
    }
}

#[test]
fn lenient_server_decoding_keeps_unknown_types_and_ignores_unknown_fields() {
    let unknown = r#"{"id":"e1","sequence":null,"timestamp":"2024-02-12T12:00:00Z",
                      "type":"EVENT_TYPE_SESSION_IDLE_WARNING","payload":{"seconds_left":30}}"#;
    let envelope: ServerEnvelope = round_trip("unknown type", unknown);
    assert_eq!(
        envelope.event.event_type(),
        "EVENT_TYPE_SESSION_IDLE_WARNING"
    );
    assert!(matches!(envelope.event, ServerEvent::Unknown(_)));

    let extra = r#"{"id":"e2","sequence":3,"timestamp":"t","type":"EVENT_TYPE_POLY_AGENT_JOINED",
                    "payload":{"agent_name":"Ada","agent_avatar_url":"a.png","avatar_url":"legacy"},
                    "trace":"x"}"#;
    let envelope: ServerEnvelope = serde_json::from_str(extra).expect("unknown fields ignored");
    assert!(matches!(envelope.event, ServerEvent::PolyAgentJoined(ref p) if p.agent_name == "Ada"));
}

#[test]
fn batch_elements_in_the_alternate_payload_key_shape_decode() {
    // spec Appendix A: the payload under a key named after the type, protobuf one-of style.
    let batch = r#"{"id":"b","sequence":null,"timestamp":"t","type":"EVENT_TYPE_EVENT_BATCH",
        "payload":{"events":[
          {"id":"e1","sequence":1,"timestamp":"t","type":"EVENT_TYPE_SESSION_END",
           "session_end":{"reason":"REASON_USER_END"}}]}}"#;
    let envelope: ServerEnvelope = serde_json::from_str(batch).expect("decodes");
    let ServerEvent::EventBatch(batch) = envelope.event else {
        panic!("not a batch");
    };
    assert!(matches!(
        &batch.events[0].event,
        ServerEvent::SessionEnd(end) if end.reason.as_str() == "REASON_USER_END"
    ));
}
