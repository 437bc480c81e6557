//! Generated server events encode to JSON that the committed schemas accept, and decode back
//! equal.

use std::path::PathBuf;
use std::sync::OnceLock;

use mock_server::protocol::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Value};

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn id<T: From<String> + std::fmt::Debug>() -> impl Strategy<Value = T> {
    "[a-z0-9_-]{1,16}".prop_map(T::from)
}

fn known<T: Clone + std::fmt::Debug + 'static>(
    known: &'static [&'static str],
    from_wire: fn(&str) -> T,
) -> impl Strategy<Value = T> {
    proptest::sample::select(known).prop_map(from_wire)
}

fn attachment() -> impl Strategy<Value = Attachment> {
    (
        text(),
        text(),
        text(),
        known(
            AttachmentContentType::KNOWN,
            AttachmentContentType::from_wire,
        ),
        text(),
    )
        .prop_map(
            |(title, preview_image_url, content_url, content_type, call_to_action_text)| {
                Attachment {
                    title,
                    preview_image_url,
                    content_url,
                    content_type,
                    call_to_action_text,
                }
            },
        )
}

fn suggestions() -> impl Strategy<Value = Vec<ResponseSuggestion>> {
    vec(
        text().prop_map(|message_text| ResponseSuggestion { message_text }),
        0..3,
    )
}

fn metadata() -> impl Strategy<Value = Metadata> {
    vec(("[a-z_]{1,8}", text()), 0..3).prop_map(|pairs| Metadata {
        custom: pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect::<Map<_, _>>(),
    })
}

/// Every documented server event except the batch, with generated payloads.
fn leaf_event() -> impl Strategy<Value = ServerEvent> {
    let typing = known(TypingState::KNOWN, TypingState::from_wire);
    prop_oneof![
        Just(ServerEvent::RequestPolyAgentJoin(Empty {})),
        (text(), id()).prop_map(
            |(text, message_id)| ServerEvent::UserMessage(UserMessageEcho { text, message_id })
        ),
        Just(ServerEvent::UserEndSession(Empty {})),
        Just(ServerEvent::Heartbeat(Empty {})),
        (text(), text()).prop_map(|(agent_name, agent_avatar_url)| {
            ServerEvent::PolyAgentJoined(PolyAgentJoined {
                agent_name,
                agent_avatar_url,
            })
        }),
        Just(ServerEvent::PolyAgentThinking(Empty {})),
        (id(), text(), vec(attachment(), 0..2), suggestions()).prop_map(
            |(message_id, text, attachments, response_suggestions)| {
                ServerEvent::PolyAgentMessage(PolyAgentMessage {
                    message_id,
                    text,
                    attachments,
                    response_suggestions,
                })
            }
        ),
        (
            id(),
            text(),
            vec(attachment(), 0..2),
            suggestions(),
            1u32..50,
            any::<bool>()
        )
            .prop_map(
                |(
                    message_id,
                    text,
                    attachments,
                    response_suggestions,
                    chunk_index,
                    is_complete,
                )| {
                    ServerEvent::PolyAgentMessageChunk(PolyAgentMessageChunk {
                        message_id,
                        text,
                        attachments,
                        response_suggestions,
                        chunk_index,
                        is_complete,
                    })
                }
            ),
        Just(ServerEvent::PolyAgentLeft(Empty {})),
        Just(ServerEvent::PolyAgentTriggeredHandoff(Empty {})),
        (text(), text(), text()).prop_map(|(id, name, avatar_url)| {
            ServerEvent::LiveAgentJoined(LiveAgentJoined {
                agent: LiveAgent {
                    id,
                    name,
                    avatar_url,
                },
            })
        }),
        (typing, option::of(text())).prop_map(|(state, agent_id)| {
            ServerEvent::LiveAgentTyping(LiveAgentTyping { state, agent_id })
        }),
        (id(), text(), text(), vec(attachment(), 0..2), suggestions()).prop_map(
            |(message_id, agent_id, text, attachments, response_suggestions)| {
                ServerEvent::LiveAgentMessage(LiveAgentMessage {
                    message_id,
                    agent_id,
                    text,
                    attachments,
                    response_suggestions,
                })
            }
        ),
        Just(ServerEvent::LiveAgentLeft(Empty {})),
        Just(ServerEvent::HandoffAccepted(Empty {})),
        (
            option::of(text()),
            option::of(0u32..100),
            option::of(0u32..10_000)
        )
            .prop_map(|(queue_name, position_in_queue, estimated_wait_seconds)| {
                ServerEvent::HandoffQueueStatus(HandoffQueueStatus {
                    queue_name,
                    position_in_queue,
                    estimated_wait_seconds,
                })
            }),
        (
            known(ClientHandoffReason::KNOWN, ClientHandoffReason::from_wire),
            text()
        )
            .prop_map(|(reason, queue_name)| {
                ServerEvent::ClientHandoffRequired(ClientHandoffRequired { reason, queue_name })
            }),
        Just(ServerEvent::HandoffFailed(Empty {})),
        Just(ServerEvent::HandoffTimeout(Empty {})),
        (
            option::of(any::<bool>()),
            option::of(1u64..1_048_576),
            option::of(0u32..20),
            option::of(0u32..120),
            option::of(text())
        )
            .prop_map(|(streaming, size, attempts, heartbeat, context_id)| {
                ServerEvent::SessionStart(SessionStart {
                    capabilities: Capabilities {
                        streaming,
                        max_message_size_bytes: size,
                        max_reconnect_attempts: attempts,
                        heartbeat_interval_seconds: heartbeat,
                    },
                    context_id,
                })
            }),
        known(SessionEndReason::KNOWN, SessionEndReason::from_wire)
            .prop_map(|reason| ServerEvent::SessionEnd(SessionEnd { reason })),
        (
            known(SystemMessageLevel::KNOWN, SystemMessageLevel::from_wire),
            text()
        )
            .prop_map(|(level, message)| {
                ServerEvent::SystemMessage(SystemMessage { level, message })
            }),
        "[a-z]{2}-[A-Z]{2}".prop_map(|language_code| {
            ServerEvent::LanguageChanged(LanguageChanged { language_code })
        }),
    ]
}

fn envelope_with(
    event: impl Strategy<Value = ServerEvent>,
) -> impl Strategy<Value = ServerEnvelope> {
    (
        id(),
        option::of(1u64..1_000_000),
        0u64..4_102_444_800_000,
        event,
        option::of(metadata()),
    )
        .prop_map(|(id, sequence, millis, event, metadata)| ServerEnvelope {
            id,
            sequence: sequence.map(Sequence),
            timestamp: Timestamp::from_unix_millis(millis),
            event,
            metadata,
        })
}

fn server_envelope() -> impl Strategy<Value = ServerEnvelope> {
    let batch = vec(envelope_with(leaf_event()), 0..4)
        .prop_map(|events| ServerEvent::EventBatch(EventBatch { events }));
    envelope_with(prop_oneof![9 => leaf_event(), 1 => batch])
}

fn compiled(name: &str) -> jsonschema::Validator {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn envelope_schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| compiled("server-envelope.schema.json"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn server_events_encode_to_schema_valid_json_and_decode_back_equal(envelope in server_envelope()) {
        let json = encode_server_frame(&envelope);
        let value: Value = serde_json::from_str(&json).expect("JSON");

        let errors: Vec<String> = envelope_schema().iter_errors(&value).map(|e| e.to_string()).collect();
        prop_assert!(errors.is_empty(), "server-envelope schema rejects {json}: {errors:?}");
        let own_file = mock_server::schemas::event_file_name("server", envelope.event.event_type());
        let own = compiled(&own_file);
        prop_assert!(own.is_valid(&value), "{own_file} rejects {json}");

        let decoded = decode_server_frame(&json).expect("decodes");
        prop_assert_eq!(decoded, envelope);
    }
}

#[test]
fn the_schemas_reject_what_the_protocol_forbids() {
    let envelope = envelope_schema();
    let valid = serde_json::json!({"id":"e","sequence":1,"timestamp":"t",
        "type":"EVENT_TYPE_SESSION_END","payload":{"reason":"REASON_USER_END"}});
    assert!(envelope.is_valid(&valid));
    for (case, bad) in [
        (
            "unknown type",
            serde_json::json!({"id":"e","sequence":1,"timestamp":"t","type":"EVENT_TYPE_X","payload":{}}),
        ),
        (
            "bad reason",
            serde_json::json!({"id":"e","sequence":1,"timestamp":"t","type":"EVENT_TYPE_SESSION_END","payload":{"reason":"REASON_X"}}),
        ),
        (
            "missing id",
            serde_json::json!({"sequence":1,"timestamp":"t","type":"EVENT_TYPE_HEARTBEAT","payload":{}}),
        ),
        (
            "string sequence",
            serde_json::json!({"id":"e","sequence":"1","timestamp":"t","type":"EVENT_TYPE_HEARTBEAT","payload":{}}),
        ),
        (
            "chunk index 0",
            serde_json::json!({"id":"e","sequence":1,"timestamp":"t","type":"EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK",
            "payload":{"message_id":"m","text":"","chunk_index":0,"is_complete":true}}),
        ),
    ] {
        assert!(!envelope.is_valid(&bad), "{case} accepted");
    }

    let client = compiled("client-frame.schema.json");
    assert!(client.is_valid(&serde_json::json!({"type":"EVENT_TYPE_HEARTBEAT","payload":{}})));
    for (case, bad) in [
        (
            "server-assigned id",
            serde_json::json!({"id":"x","type":"EVENT_TYPE_HEARTBEAT","payload":{}}),
        ),
        (
            "server-only type",
            serde_json::json!({"type":"EVENT_TYPE_POLY_AGENT_LEFT","payload":{}}),
        ),
        (
            "empty text",
            serde_json::json!({"type":"EVENT_TYPE_USER_MESSAGE","payload":{"text":""}}),
        ),
        (
            "bad state",
            serde_json::json!({"type":"EVENT_TYPE_USER_TYPING","payload":{"state":"X"}}),
        ),
    ] {
        assert!(!client.is_valid(&bad), "{case} accepted");
    }
}
