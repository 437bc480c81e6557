//! The protocol as API descriptions the event-driven tooling reads: an AsyncAPI 3.0 document for
//! the WebSocket channel and an OpenAPI 3.1 document for the two REST endpoints. Both are
//! generated from the [`crate::protocol`] types (like the JSON Schemas beside them), committed as
//! `schemas/asyncapi.json` and `schemas/openapi.json`, kept fresh by a test, and checked by the
//! AsyncAPI parser and Redocly's OpenAPI linter in the test suite.

use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::engine::{CLOSE_SESSION_ENDED, CLOSE_SESSION_UNKNOWN};
use crate::protocol::{
    AccessTokenResponse, ClientEvent, CreateSessionRequest, CreateSessionResponse, ErrorBody,
    Metadata, ServerEvent, catalog,
};
use crate::schemas::{client_event_body, client_payload_schema, server_event_body};

/// The documentation revision described (spec §0: the latest change, 2026-06-30).
const DOC_REVISION: &str = "2026-06-30";

/// Envelope fields of the spec's §4.2 example, lent to the examples the docs show without one.
const EXAMPLE_ID: &str = "018d91c7-7b12-7474-9a84-7e8c0e9e4f1a";
const EXAMPLE_TIMESTAMP: &str = "2024-02-12T12:00:00Z";

fn generator(settings: SchemaSettings) -> SchemaGenerator {
    settings
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator()
}

/// `EVENT_TYPE_POLY_AGENT_MESSAGE` → `PolyAgentMessage`.
fn pascal(event_type: &str) -> String {
    event_type
        .strip_prefix("EVENT_TYPE_")
        .unwrap_or(event_type)
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_string() + &chars.as_str().to_ascii_lowercase()
            })
        })
        .collect()
}

/// The client frames the docs show (spec §1.4, §3.5, §4.1, §5), whole.
fn client_examples(event_type: &str) -> Vec<(&'static str, Value)> {
    match event_type {
        ClientEvent::USER_MESSAGE => vec![(
            "§4.1: a user message with custom metadata",
            json!({ "type": event_type, "payload": { "text": "Hello, I need some help." },
                    "metadata": { "custom": { "local_id": "draft_abc123" } } }),
        )],
        ClientEvent::USER_TYPING => vec![(
            "§5: the user starts typing",
            json!({ "type": event_type, "payload": { "state": "TYPING_STATE_STARTED" } }),
        )],
        _ => vec![(
            "§1.4, §3.5, §5: an event without fields",
            json!({ "type": event_type, "payload": {} }),
        )],
    }
}

/// A server frame with the §4.2 example's envelope around `payload`.
fn enveloped(event_type: &str, sequence: Value, payload: Value) -> Value {
    json!({ "id": EXAMPLE_ID, "sequence": sequence, "timestamp": EXAMPLE_TIMESTAMP,
            "type": event_type, "payload": payload })
}

/// The server frames and payloads the docs show (spec §4.2, §6.2.1, §6.2.2, §6.3.2, §6.4.1, §7).
fn server_examples(event_type: &str) -> Vec<(&'static str, Value)> {
    let message = json!({ "message_id": "msg_abc123", "text": "Hello! How can I help you today?",
        "attachments": [],
        "response_suggestions": [ { "message_text": "I have a question about my order" },
                                  { "message_text": "I need to make a booking" } ] });
    let start = json!({ "capabilities": { "streaming": true, "max_message_size_bytes": 131072,
        "max_reconnect_attempts": 5, "heartbeat_interval_seconds": 30 } });
    match event_type {
        ServerEvent::POLY_AGENT_MESSAGE => vec![(
            "§4.2: the documented envelope",
            enveloped(event_type, json!(5), message),
        )],
        ServerEvent::POLY_AGENT_MESSAGE_CHUNK => vec![(
            "§7: one streaming fragment (envelope of §4.2)",
            enveloped(
                event_type,
                json!(5),
                json!({ "message_id": "msg_abc123", "text": "I'd be happy to ", "attachments": [],
                        "response_suggestions": [], "chunk_index": 1, "is_complete": false }),
            ),
        )],
        ServerEvent::LIVE_AGENT_JOINED => vec![(
            "§6.2.1 (envelope of §4.2)",
            enveloped(
                event_type,
                json!(5),
                json!({ "agent": { "id": "agent_42", "name": "Sarah",
                                   "avatar_url": "https://example.com/avatars/sarah.png" } }),
            ),
        )],
        ServerEvent::LIVE_AGENT_TYPING => vec![(
            "§6.2.2: transient, so `sequence` is null (envelope of §4.2)",
            enveloped(
                event_type,
                Value::Null,
                json!({ "state": "TYPING_STATE_STARTED", "agent_id": "agent_42" }),
            ),
        )],
        ServerEvent::HANDOFF_QUEUE_STATUS => vec![(
            "§6.3.2 (envelope of §4.2)",
            enveloped(
                event_type,
                Value::Null,
                json!({ "queue_name": "General Support", "position_in_queue": 3,
                        "estimated_wait_seconds": 180 }),
            ),
        )],
        ServerEvent::SESSION_START => vec![(
            "§6.4.1 (envelope of §4.2)",
            enveloped(event_type, json!(1), start),
        )],
        ServerEvent::EVENT_BATCH => vec![(
            "§3.4: the history, made of the documented §6.4.1 and §4.2 events",
            enveloped(
                event_type,
                Value::Null,
                json!({ "events": [
                    enveloped(ServerEvent::SESSION_START, json!(1), start),
                    enveloped(ServerEvent::POLY_AGENT_MESSAGE, json!(2), message),
                ] }),
            ),
        )],
        _ => Vec::new(),
    }
}

fn examples(list: Vec<(&'static str, Value)>) -> Value {
    list.into_iter()
        .map(|(summary, payload)| json!({ "summary": summary, "payload": payload }))
        .collect()
}

/// Close codes the server sends (spec §3.7, §12 D1), for `x-close-codes`.
fn close_codes() -> Value {
    json!([
        { "code": CLOSE_SESSION_ENDED, "meaning": "Normal closure", "when": "right after SESSION_END (any reason); do not reconnect" },
        { "code": 1001, "meaning": "Going away", "when": "per-connection idle timeout while the session lives, or server shutdown; reconnect" },
        { "code": 1006, "meaning": "Abnormal closure (never sent; what a client sees on a drop)", "when": "network failure; reconnect" },
        { "code": 1008, "meaning": "Policy violation", "when": "the client did not read its frames within the write timeout (messaging-mock)" },
        { "code": 1002, "meaning": "Protocol error", "when": "an RFC 6455 violation by the client (messaging-mock)" },
        { "code": 1007, "meaning": "Invalid frame payload data", "when": "a text frame that is not UTF-8 (messaging-mock)" },
        { "code": 1009, "meaning": "Message too big", "when": "a frame over the server's hard limit (messaging-mock)" },
        { "code": 1011, "meaning": "Internal error", "when": "a transient server problem; reconnect" },
        { "code": CLOSE_SESSION_UNKNOWN, "meaning": "Session unknown", "when": "the session was forgotten while a socket was open; get a new token and session" },
        { "code": 4002, "meaning": "Transient server problem", "when": "reconnect" }
    ])
}

/// Handshake refusals: HTTP answers to the upgrade request (spec §3.2).
fn handshake_failures() -> Value {
    json!([
        { "status": 400, "error": catalog::INVALID_CONNECTION_PARAMETERS, "cause": "session_id or access_token missing" },
        { "status": 401, "error": catalog::AUTHENTICATION_FAILED, "cause": "the access token is invalid, expired, or not the session's; get a fresh token and a new session" },
        { "status": 404, "error": catalog::SESSION_NOT_FOUND, "cause": "unknown or expired session; create a new one" },
        { "status": 429, "error": catalog::CONNECTION_LIMIT_EXCEEDED, "cause": "too many sockets on the session (10)" }
    ])
}

/// Adds a message per client event type to `messages`; returns their names in order.
fn client_messages(g: &mut SchemaGenerator, messages: &mut Map<String, Value>) -> Vec<String> {
    let mut sent = Vec::new();
    for &event_type in ClientEvent::TYPES {
        let name = format!("Client{}", pascal(event_type));
        let payload = client_payload_schema(event_type, g);
        let metadata = g.subschema_for::<Metadata>();
        messages.insert(name.clone(), json!({
            "name": event_type,
            "title": format!("{event_type} (client → server)"),
            "summary": "A client frame: only `type`, `payload` and an optional `metadata` (spec §4.1, §5).",
            "contentType": "application/json",
            "payload": client_event_body(event_type, payload, metadata),
            "examples": examples(client_examples(event_type)),
        }));
        sent.push(name);
    }
    sent
}

/// Adds a message per known server event type to `messages`; returns their names in order.
fn server_messages(g: &mut SchemaGenerator, messages: &mut Map<String, Value>) -> Vec<String> {
    let mut received = Vec::new();
    for &event_type in ServerEvent::KNOWN_TYPES {
        let name = format!("Server{}", pascal(event_type));
        let payload = ServerEvent::payload_schema(event_type, g).unwrap_or_default();
        let metadata = g.subschema_for::<Metadata>();
        let summary = if event_type == ServerEvent::LANGUAGE_CHANGED {
            "A server frame (spec §4.2, §6). Added 2026-06-12: not sent under messaging-mock's `--profile 2026-05`."
        } else {
            "A server frame (spec §4.2, §6)."
        };
        let mut message = json!({
            "name": event_type,
            "title": format!("{event_type} (server → client)"),
            "summary": summary,
            "contentType": "application/json",
            "payload": server_event_body(event_type, payload, metadata),
        });
        let list = server_examples(event_type);
        if !list.is_empty() {
            message["examples"] = examples(list);
        }
        messages.insert(name.clone(), message);
        received.push(name);
    }
    received
}

/// The channel's message map: each component message by reference, under its own name.
fn channel_refs(messages: &Map<String, Value>) -> Map<String, Value> {
    messages
        .keys()
        .map(|name| {
            (
                name.clone(),
                json!({ "$ref": format!("#/components/messages/{name}") }),
            )
        })
        .collect()
}

/// An operation's message list: each of `names` by reference to the channel's message.
fn operation_refs(names: &[String]) -> Vec<Value> {
    names
        .iter()
        .map(|name| json!({ "$ref": format!("#/channels/session/messages/{name}") }))
        .collect()
}

/// The AsyncAPI 3.0 document of the WebSocket channel.
pub fn asyncapi() -> Value {
    let mut g = generator(SchemaSettings::draft07());
    let mut messages = Map::new();
    let sent = client_messages(&mut g, &mut messages);
    let received = server_messages(&mut g, &mut messages);
    let channel_refs = channel_refs(&messages);
    let schemas = g.take_definitions(true);
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "PolyAI Messaging API: the session WebSocket",
            "version": DOC_REVISION,
            "description": "One WebSocket per conversation, after the REST handshake (see openapi.json). The server replays the history as an EVENT_BATCH on every connect (after `cursor`), then sends events live; the client sends five event types. Generated by messaging-mock from its protocol types; the documentation revision is the info version.",
            "license": { "name": "MIT OR Apache-2.0" }
        },
        "defaultContentType": "application/json",
        "servers": {
            "mock": { "host": "127.0.0.1:8080", "protocol": "ws", "description": "messaging-mock's default address" },
            "production": { "host": "messaging.poly.ai", "protocol": "wss", "description": "The region-agnostic base URL (spec §1.2)" }
        },
        "channels": {
            "session": {
                "address": "/ws",
                "title": "A session's events",
                "description": "Open with `GET /ws?session_id=…&access_token=…[&cursor=N]`. A refused handshake is an HTTP answer (x-handshake-failures); the server closes with the codes in x-close-codes.",
                "messages": channel_refs,
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "required": ["session_id", "access_token"],
                            "properties": {
                                "session_id": { "type": "string", "description": "From POST /api/v1/sessions." },
                                "access_token": { "type": "string", "description": "The JWT from POST /api/v1/access-token (query, because browsers cannot set handshake headers)." },
                                "cursor": { "type": "string", "description": "Resume after this sequence: `N` (since 2026-05-29) or the legacy `seq:N`. Default 0, the full history. An invalid value is not an error: the server replays everything." }
                            }
                        },
                        "bindingVersion": "0.1.0"
                    }
                },
                "x-handshake-failures": handshake_failures(),
                "x-close-codes": close_codes()
            }
        },
        "operations": {
            "sendClientEvents": {
                "action": "send",
                "title": "The client sends",
                "channel": { "$ref": "#/channels/session" },
                "messages": operation_refs(&sent)
            },
            "receiveServerEvents": {
                "action": "receive",
                "title": "The client receives",
                "channel": { "$ref": "#/channels/session" },
                "messages": operation_refs(&received)
            }
        },
        "components": {
            "schemas": schemas,
            "messages": messages
        }
    })
}

fn error_response(description: &str, cases: &[(&str, &str)]) -> Value {
    let examples: Map<String, Value> = cases
        .iter()
        .map(|(name, error)| {
            (
                (*name).to_owned(),
                json!({ "summary": error, "value": { "error": error, "message": error } }),
            )
        })
        .collect();
    json!({
        "description": description,
        "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/ErrorBody" },
            "examples": examples
        } }
    })
}

fn rate_limited() -> Value {
    json!({
        "description": "Rate limited (spec §10.5): retry after `Retry-After` seconds.",
        "headers": { "Retry-After": { "description": "Seconds to wait.", "schema": { "type": "integer", "minimum": 0 } } },
        "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/ErrorBody" },
            "example": { "error": catalog::TOO_MANY_REQUESTS, "message": catalog::TOO_MANY_REQUESTS }
        } }
    })
}

/// The named body schemas of the REST endpoints, for `components/schemas`.
fn rest_schemas() -> Map<String, Value> {
    let mut g = generator(SchemaSettings::draft2020_12());
    let token = g.subschema_for::<AccessTokenResponse>();
    let request = g.subschema_for::<CreateSessionRequest>();
    let session = g.subschema_for::<CreateSessionResponse>();
    let error = g.subschema_for::<ErrorBody>();
    let mut schemas = g.take_definitions(true);
    // Named types come back as references; keep every body a named component.
    for (name, schema) in [
        ("AccessTokenResponse", token),
        ("CreateSessionRequest", request),
        ("CreateSessionResponse", session),
        ("ErrorBody", error),
    ] {
        if schema.get("$ref").is_none() {
            schemas.insert(name.into(), schema.to_value());
        }
    }
    schemas
}

/// `POST /api/v1/access-token` (spec §2.1).
fn access_token_operation() -> Value {
    json!({
        "operationId": "createAccessToken",
        "tags": ["handshake"],
        "summary": "Exchange the connector token for an access token",
        "description": "Spec §2.1. Send `X-Token` (the connector token) and `X-Host` (the registered domain; subdomains match) with the body `{}`.",
        "security": [ { "connectorToken": [] } ],
        "parameters": [ { "name": "X-Host", "in": "header", "required": true,
            "description": "The registered domain or app namespace (e.g. `https://www.yourcompany.com`, `com.yourcompany.app`); a subdomain of the registered host matches.",
            "schema": { "type": "string" }, "example": "localhost" } ],
        "requestBody": { "required": true, "content": { "application/json": {
            "schema": { "type": "object", "maxProperties": 0 }, "example": {} } } },
        "responses": {
            "200": { "description": "The access token.", "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/AccessTokenResponse" },
                "example": { "access_token": "eyJhbGc...", "expires_in": 86400, "token_type": "Bearer" } } } },
            "401": error_response("The connector is not accepted (spec §10.2).", &[
                ("missingHeaders", catalog::MISSING_AUTHENTICATION_HEADERS),
                ("unknownToken", catalog::CONNECTOR_TOKEN_DOES_NOT_EXIST),
                ("hostMismatch", catalog::FAILED_TO_VALIDATE_CONNECTOR),
                ("noHostDomain", catalog::CONNECTOR_MISSING_HOST_DOMAIN),
            ]),
            "429": rate_limited(),
            "500": error_response("Retry with backoff (spec §10.2).", &[
                ("tokenFailure", catalog::FAILED_TO_CREATE_ACCESS_TOKEN),
            ])
        }
    })
}

/// `POST /api/v1/sessions` (spec §2.2).
fn create_session_operation() -> Value {
    json!({
        "operationId": "createSession",
        "tags": ["handshake"],
        "summary": "Create a session (one conversation)",
        "description": "Spec §2.2. The body is optional; without it `streaming_enabled` is false. A session expires after about 10 minutes of inactivity.",
        "security": [ { "accessToken": [] } ],
        "requestBody": { "required": false, "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/CreateSessionRequest" },
            "example": { "platform": "web", "streaming_enabled": true } } } },
        "responses": {
            "200": { "description": "The session.", "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/CreateSessionResponse" },
                "example": { "session_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890" } } } },
            "400": error_response("A bad request (spec §10.3).", &[
                ("missingToken", catalog::MISSING_ACCESS_TOKEN),
                ("badBody", catalog::ERROR_PARSING_REQUEST),
            ]),
            "401": error_response("The access token is not accepted (spec §10.3).", &[
                ("notBearer", catalog::MISSING_AUTHENTICATION_HEADERS),
                ("invalidToken", catalog::INVALID_ACCESS_TOKEN),
            ]),
            "429": rate_limited(),
            "500": error_response("Retry with backoff (spec §10.3).", &[
                ("sessionFailure", catalog::FAILED_TO_CREATE_SESSION),
            ])
        }
    })
}

/// The OpenAPI 3.1 document of the two REST endpoints.
pub fn openapi() -> Value {
    let schemas = rest_schemas();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "PolyAI Messaging API: the REST handshake",
            "version": DOC_REVISION,
            "description": "Exchange a connector token for an access token, then create a session; then open the WebSocket described by asyncapi.json. Generated by messaging-mock from its protocol types; the documentation revision is the info version.",
            "license": { "name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0" }
        },
        "servers": [
            { "url": "http://127.0.0.1:8080", "description": "messaging-mock's default address" },
            { "url": "https://messaging.poly.ai", "description": "The region-agnostic base URL (spec §1.2)" }
        ],
        "tags": [ { "name": "handshake", "description": "Before the WebSocket." } ],
        "paths": {
            "/api/v1/access-token": { "post": access_token_operation() },
            "/api/v1/sessions": { "post": create_session_operation() }
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "connectorToken": { "type": "apiKey", "in": "header", "name": "X-Token", "description": "The connector token PolyAI provisions." },
                "accessToken": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "The access token from createAccessToken." }
            }
        }
    })
}
