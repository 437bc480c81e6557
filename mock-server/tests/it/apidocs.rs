//! The AsyncAPI 3.0 and OpenAPI 3.1 documents: they describe every event, and their examples
//! and the mock's own frames fit their schemas. (The ecosystem's validators run in the
//! `external` test binary, which needs Node and the npm tools.)

use mock_server::Config;
use mock_server::apidocs::{asyncapi, openapi};
use mock_server::protocol::{ClientEvent, ServerEvent};
use serde_json::{Value, json};

use crate::support::{JOIN, bounded, new_session_client, start, user_message};

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
        let (_token, _session, mut client) = new_session_client(&server, true).await;
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
