//! The JSON Schemas published in `schemas/`, generated from the [`crate::protocol`] types.
//!
//! [`generate`] is pure: it returns file names and contents. `messaging-mock generate-schemas`
//! writes them; a test compares them with the committed files.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::protocol::{
    AccessTokenResponse, ClientEvent, CreateSessionRequest, CreateSessionResponse, ErrorBody,
    Metadata, ServerEvent, UserMessage, UserTyping, payloads::Empty,
};

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFile {
    /// File name inside `schemas/`.
    pub name: String,
    pub contents: String,
}

const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The file name of the schema for one event type: `server-event-poly-agent-message.schema.json`.
pub fn event_file_name(direction: &str, event_type: &str) -> String {
    let stem = event_type
        .strip_prefix("EVENT_TYPE_")
        .unwrap_or(event_type)
        .to_ascii_lowercase()
        .replace('_', "-");
    format!("{direction}-event-{stem}.schema.json")
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12().into_generator()
}

/// Wraps `body` as a standalone document with the definitions `generator` collected.
fn document(title: &str, description: &str, body: Value, generator: &mut SchemaGenerator) -> Value {
    let mut doc = Map::new();
    doc.insert("$schema".into(), DIALECT.into());
    doc.insert("title".into(), title.into());
    doc.insert("description".into(), description.into());
    if let Value::Object(body) = body {
        doc.extend(body);
    }
    let defs = generator.take_definitions(true);
    if !defs.is_empty() {
        doc.insert("$defs".into(), Value::Object(defs));
    }
    Value::Object(doc)
}

pub(crate) fn server_event_body(event_type: &str, payload: Schema, metadata: Schema) -> Value {
    json!({
        "type": "object",
        "required": ["id", "sequence", "timestamp", "type", "payload"],
        "properties": {
            "id": { "type": "string", "description": "Unique event id (UUID); the deduplication key." },
            "sequence": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "Per-session order and reconnect cursor; null for transient events."
            },
            "timestamp": { "type": "string", "description": "RFC 3339 time the server processed the event." },
            "type": { "const": event_type },
            "payload": payload,
            "metadata": metadata
        }
    })
}

pub(crate) fn client_event_body(event_type: &str, payload: Schema, metadata: Schema) -> Value {
    json!({
        "type": "object",
        "required": ["type", "payload"],
        "properties": {
            "type": { "const": event_type },
            "payload": payload,
            "metadata": metadata
        },
        "not": {
            "description": "id, sequence and timestamp are assigned by the server and must not be sent.",
            "anyOf": [
                { "required": ["id"] },
                { "required": ["sequence"] },
                { "required": ["timestamp"] }
            ]
        }
    })
}

pub(crate) fn client_payload_schema(event_type: &str, generator: &mut SchemaGenerator) -> Schema {
    match event_type {
        ClientEvent::USER_MESSAGE => generator.subschema_for::<UserMessage>(),
        ClientEvent::USER_TYPING => generator.subschema_for::<UserTyping>(),
        _ => generator.subschema_for::<Empty>(),
    }
}

fn http_body<T: JsonSchema>(name: &str, description: &str) -> (String, Value) {
    let mut generator = generator();
    let root = generator.root_schema_for::<T>();
    let mut value = root.to_value();
    if let Value::Object(map) = &mut value {
        map.insert("title".into(), name.into());
        map.insert("description".into(), description.into());
    }
    (format!("{name}.schema.json"), value)
}

/// The scenario file format (`fixtures/scenarios/**.json`).
fn scenario_schema() -> Value {
    let mut generator = generator();
    let mut value = generator
        .root_schema_for::<crate::scenario::raw::ScenarioFile>()
        .to_value();
    if let Value::Object(map) = &mut value {
        map.insert("title".into(), "Scenario".into());
        map.insert(
            "description".into(),
            "A messaging-mock scenario: persona, capabilities, pacing, greeting, rules (trigger -> steps), fallback, and an optional scripted client. See fixtures/README.md.".into(),
        );
    }
    value
}

fn render(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// One file before rendering: its name, its document, and its kind for the README's index.
type Entry = (String, Value, &'static str);

/// Every schema file, plus `README.md` indexing them.
pub fn generate() -> Vec<SchemaFile> {
    let mut files: Vec<Entry> = Vec::new();
    client_event_files(&mut files);
    server_event_files(&mut files);
    http_body_files(&mut files);
    files.push((
        "scenario.schema.json".into(),
        scenario_schema(),
        "scenario file",
    ));
    api_documents(&mut files);
    render_with_readme(files)
}

/// Client events, one file each, and the union.
fn client_event_files(files: &mut Vec<Entry>) {
    let mut union_generator = generator();
    let mut client_union = Vec::new();
    for &event_type in ClientEvent::TYPES {
        let mut g = generator();
        let payload = client_payload_schema(event_type, &mut g);
        let metadata = g.subschema_for::<Metadata>();
        let body = client_event_body(event_type, payload, metadata);
        let doc = document(
            event_type,
            "A client → server frame (spec §5).",
            body,
            &mut g,
        );
        files.push((event_file_name("client", event_type), doc, "client event"));

        let payload = client_payload_schema(event_type, &mut union_generator);
        let metadata = union_generator.subschema_for::<Metadata>();
        client_union.push(client_event_body(event_type, payload, metadata));
    }
    let client_frame = document(
        "ClientFrame",
        "Any client → server frame: exactly one of the five client events (spec §5).",
        json!({ "oneOf": client_union }),
        &mut union_generator,
    );
    files.push(("client-frame.schema.json".into(), client_frame, "union"));
}

/// Server events, one file each, and the union.
fn server_event_files(files: &mut Vec<Entry>) {
    let mut union_generator = generator();
    let mut server_union = Vec::new();
    for &event_type in ServerEvent::KNOWN_TYPES {
        let mut g = generator();
        let payload = ServerEvent::payload_schema(event_type, &mut g).unwrap_or_default();
        let metadata = g.subschema_for::<Metadata>();
        let body = server_event_body(event_type, payload, metadata);
        let doc = document(
            event_type,
            "A server → client frame (spec §4.2, §6).",
            body,
            &mut g,
        );
        files.push((event_file_name("server", event_type), doc, "server event"));

        let payload =
            ServerEvent::payload_schema(event_type, &mut union_generator).unwrap_or_default();
        let metadata = union_generator.subschema_for::<Metadata>();
        server_union.push(server_event_body(event_type, payload, metadata));
    }
    let envelope = document(
        "ServerEnvelope",
        "Any server → client frame: exactly one of the documented server events (spec §4.2, §6.6).",
        json!({ "oneOf": server_union }),
        &mut union_generator,
    );
    files.push(("server-envelope.schema.json".into(), envelope, "union"));
}

/// The bodies of the REST requests and answers.
fn http_body_files(files: &mut Vec<Entry>) {
    for (name, doc) in [
        http_body::<AccessTokenResponse>(
            "http-access-token-response",
            "200 OK of POST /api/v1/access-token (spec §2.1).",
        ),
        http_body::<CreateSessionRequest>(
            "http-create-session-request",
            "Optional body of POST /api/v1/sessions (spec §2.2).",
        ),
        http_body::<CreateSessionResponse>(
            "http-create-session-response",
            "200 OK of POST /api/v1/sessions (spec §2.2).",
        ),
        http_body::<ErrorBody>(
            "http-error",
            "Body of every REST error: the catalog string under both keys (spec §12 A1).",
        ),
    ] {
        files.push((name, doc, "HTTP body"));
    }
}

/// The OpenAPI and AsyncAPI documents: the control API, the WebSocket, the REST handshake.
fn api_documents(files: &mut Vec<Entry>) {
    files.push((
        "control-openapi.json".into(),
        crate::control::openapi::document(),
        "OpenAPI 3.1: the control API",
    ));
    files.push((
        "asyncapi.json".into(),
        crate::apidocs::asyncapi(),
        "AsyncAPI 3.0: the WebSocket",
    ));
    files.push((
        "openapi.json".into(),
        crate::apidocs::openapi(),
        "OpenAPI 3.1: the REST handshake",
    ));
}

/// Renders every file and appends `README.md`, a table of them in order.
fn render_with_readme(files: Vec<Entry>) -> Vec<SchemaFile> {
    let mut readme = String::from(
        "# JSON Schemas\n\n\
         Generated from the Rust types in `mock-server/src/protocol/` (draft 2020-12). Do not edit by\n\
         hand: run `cargo run -p mock-server -- generate-schemas` from the repository root.\n\
         `cargo test` fails when these files are stale.\n\n\
         `conformance/` holds the conformance kit's own: its case files and the driver contract's\n\
         view, generated from `conformance/src/` by `cargo run -p conformance -- generate-schemas`.\n\n\
         | File | Kind | Describes |\n|---|---|---|\n",
    );
    let mut out = Vec::with_capacity(files.len() + 1);
    for (name, doc, kind) in files {
        let title = doc
            .get("title")
            .or_else(|| doc.pointer("/info/title"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        readme.push_str(&format!("| [`{name}`]({name}) | {kind} | `{title}` |\n"));
        out.push(SchemaFile {
            name,
            contents: render(&doc),
        });
    }
    out.push(SchemaFile {
        name: "README.md".into(),
        contents: readme,
    });
    out
}
