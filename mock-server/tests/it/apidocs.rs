//! The AsyncAPI 3.0 and OpenAPI 3.1 documents: they describe every event, their examples and
//! the mock's own frames fit their schemas, and the ecosystem's validators (the AsyncAPI parser,
//! Redocly's linter; `tools/validate-apis.mjs`) accept them, and reject broken ones.

use std::path::PathBuf;
use std::process::Command;

use mock_server::Config;
use mock_server::apidocs::{asyncapi, openapi};
use mock_server::protocol::{ClientEvent, ServerEvent};
use serde_json::{Value, json};

use crate::browser::repo;
use crate::support::{Client, JOIN, bounded, new_session, start, user_message, ws_url};

/// A validator for the payload of message `name`, resolving refs inside the document.
fn message_validator(doc: &Value, name: &str) -> jsonschema::Validator {
    let mut root = doc.clone();
    root["$ref"] = json!(format!("#/components/messages/{name}/payload"));
    jsonschema::draft7::new(&root).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn message_name(direction: &str, event_type: &str) -> String {
    let pascal: String = event_type
        .trim_start_matches("EVENT_TYPE_")
        .split('_')
        .map(|w| w[..1].to_owned() + &w[1..].to_ascii_lowercase())
        .collect();
    format!("{direction}{pascal}")
}

#[test]
fn every_event_is_a_message_and_every_example_fits_its_schema() {
    let doc = asyncapi();
    let messages = doc["components"]["messages"].as_object().expect("messages");
    let expected: Vec<String> = ClientEvent::TYPES
        .iter()
        .map(|t| message_name("Client", t))
        .chain(
            ServerEvent::KNOWN_TYPES
                .iter()
                .map(|t| message_name("Server", t)),
        )
        .collect();
    for name in &expected {
        assert!(messages.contains_key(name), "no message {name}");
    }
    assert_eq!(messages.len(), expected.len());
    let mut examples = 0;
    for (name, message) in messages {
        let validator = message_validator(&doc, name);
        for example in message["examples"].as_array().into_iter().flatten() {
            let errors: Vec<String> = validator
                .iter_errors(&example["payload"])
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{name} example: {errors:?}");
            examples += 1;
        }
    }
    assert!(examples >= 11, "the spec's examples are there: {examples}");
    // The §4.2 example, verbatim.
    let documented = &messages["ServerPolyAgentMessage"]["examples"][0]["payload"];
    assert_eq!(documented["payload"]["message_id"], "msg_abc123");
    assert_eq!(documented["sequence"], 5);

    // Negative controls: an example that breaks its schema, and one broken differently.
    let validator = message_validator(&doc, "ClientUserMessage");
    let mut wrong_type = messages["ClientUserMessage"]["examples"][0]["payload"].clone();
    wrong_type["payload"]["text"] = json!(5);
    assert!(!validator.is_valid(&wrong_type));
    let mut server_field = messages["ClientUserMessage"]["examples"][0]["payload"].clone();
    server_field["sequence"] = json!(3);
    assert!(
        !validator.is_valid(&server_field),
        "a client must not send `sequence`"
    );
}

#[test]
fn the_rest_document_describes_both_endpoints_with_the_catalogued_errors() {
    let doc = openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    let token = &doc["paths"]["/api/v1/access-token"]["post"];
    let session = &doc["paths"]["/api/v1/sessions"]["post"];
    let strings = |op: &Value, status: &str| -> Vec<String> {
        op["responses"][status]["content"]["application/json"]["examples"]
            .as_object()
            .map(|e| {
                e.values()
                    .map(|x| x["value"]["error"].as_str().expect("error").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(strings(token, "401").len(), 4);
    assert!(strings(session, "400").contains(&"Error parsing request".to_owned()));
    assert!(strings(session, "401").contains(&"Invalid access token".to_owned()));
    for op in [token, session] {
        assert!(op["responses"]["429"]["headers"]["Retry-After"].is_object());
    }
}

/// The mock's own frames fit the AsyncAPI messages for their types (the document describes
/// what is served, not an idealisation of it).
#[tokio::test]
async fn the_mocks_frames_fit_the_asyncapi_messages() {
    bounded(async {
        let doc = asyncapi();
        let server = start(Config::default()).await;
        let (token, session) = new_session(&server, true).await;
        let mut client = Client::connect(&ws_url(&server, &session, &token, None))
            .await
            .expect("open");
        client.send(JOIN).await;
        client.until("EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK").await;
        client.send(&user_message("#handoff")).await;
        let mut frames = client.until("EVENT_TYPE_LIVE_AGENT_JOINED").await;
        frames.extend(
            client
                .log
                .iter()
                .filter(|(direction, _)| *direction == "←")
                .map(|(_, f)| f.clone()),
        );
        let mut types = std::collections::BTreeSet::new();
        for frame in &frames {
            let event_type = frame["type"].as_str().expect("type");
            let name = message_name("Server", event_type);
            let validator = message_validator(&doc, &name);
            let errors: Vec<String> = validator
                .iter_errors(frame)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{name}: {errors:?}\n{frame}");
            types.insert(event_type.to_owned());
        }
        assert!(types.len() >= 6, "a varied conversation: {types:?}");
        server.shutdown().await;
    })
    .await;
}

/// `node tools/validate-apis.mjs ARGS`: `None` when node or the tools are missing outside CI.
fn validate(args: &[PathBuf]) -> Option<(bool, String)> {
    let installed = repo().join("tools/node_modules/@asyncapi/parser").is_dir()
        && repo()
            .join("tools/node_modules/@redocly/openapi-core")
            .is_dir();
    let node = Command::new("node").arg("--version").output().is_ok();
    if !(installed && node) {
        assert!(
            !crate::browser::required(),
            "CI=true but node or tools/node_modules is missing (.ci/run runs `npm ci --prefix tools`)"
        );
        eprintln!("SKIPPED: the API validators are not installed (npm ci --prefix tools)");
        return None;
    }
    let output = Command::new("node")
        .arg(repo().join("tools/validate-apis.mjs"))
        .args(args)
        .output()
        .expect("node runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    Some((output.status.success(), text))
}

#[test]
fn the_ecosystem_validators_accept_the_committed_documents_and_reject_broken_ones() {
    let schemas = repo().join("schemas");
    let committed = [
        schemas.join("asyncapi.json"),
        schemas.join("openapi.json"),
        schemas.join("control-openapi.json"),
    ];
    let Some((ok, output)) = validate(&committed) else {
        return;
    };
    assert!(ok, "{output}");
    assert!(
        output.contains("AsyncAPI 3.0.0") && output.contains("OpenAPI 3.1.0"),
        "{output}"
    );

    // Negative controls, each broken in its own way.
    let dir = repo().join(format!("target/apidocs-controls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let write = |name: &str, value: &Value| {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string(value).expect("json")).expect("write");
        path
    };
    let good_rest = schemas.join("openapi.json");

    let mut bad_example = asyncapi();
    bad_example["components"]["messages"]["ClientUserMessage"]["examples"][0]["payload"]["payload"]
        ["text"] = json!(5);
    let bad_example = write("bad-example.json", &bad_example);
    let (ok, output) = validate(&[bad_example, good_rest.clone()]).expect("installed");
    assert!(
        !ok && output.contains("bad-example.json: error"),
        "an example off its schema:\n{output}"
    );

    let mut dangling = asyncapi();
    dangling["operations"]["sendClientEvents"]["channel"] = json!({ "$ref": "#/channels/nowhere" });
    let dangling = write("dangling.json", &dangling);
    let (ok, output) = validate(&[dangling, good_rest]).expect("installed");
    assert!(
        !ok && output.contains("dangling.json: error"),
        "a dangling channel:\n{output}"
    );

    let mut rest = openapi();
    rest["paths"]["/api/v1/sessions"]["post"]["responses"]["200"]["content"]["application/json"]
        ["schema"] = json!({ "$ref": "#/components/schemas/Nowhere" });
    let rest = write("bad-rest.json", &rest);
    let (ok, output) = validate(&[schemas.join("asyncapi.json"), rest]).expect("installed");
    assert!(
        !ok && output.contains("bad-rest.json: error"),
        "a missing schema:\n{output}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
