//! Fuzzing by property: client-frame decoding, cursor parsing, scenario parsing and control
//! bodies get arbitrary and near-valid input; nothing panics, and every answer is one the
//! protocol documents.
//!
//! `cargo test` runs a few thousand cases in all. The long mode runs as many as you ask and
//! reports cases per second (docs/mock.md, "Limits and hostile input"):
//!
//! ```sh
//! FUZZ_CASES=1000000 cargo test --release -p mock-server --test it fuzz:: -- --nocapture
//! ```

use std::sync::Arc;
use std::time::Instant;

use mock_server::engine::history::parse_cursor;
use mock_server::protocol::{ClientEvent, DecodeOptions, RawFrame, catalog, decode_client_frame};
use mock_server::{Config, MockServer};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::Value;

use crate::support::{http, new_session};

/// Cases per property: `FUZZ_CASES` when set (the long mode), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `check` over `cases` draws of `strategy`, then prints the rate. Fails with the
/// shrunk input when a case fails or panics.
fn fuzz<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let started = Instant::now();
    let outcome = runner.run(&strategy, check);
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "fuzz {name}: {cases} cases in {seconds:.1} s ({:.0} cases/s)",
        f64::from(cases) / seconds.max(1e-9)
    );
    if let Err(error) = outcome {
        panic!("fuzz {name}: {error}");
    }
}

/// Keys that mean something somewhere, and some that do not.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "type", "payload", "text", "metadata", "custom", "id", "sequence", "timestamp",
            "is_typing", "reason", "advance_ms", "scale", "count", "status", "scenario",
            "retry_after_seconds", "sessions", "access_token", "sessions_429", "reply", "close",
            "refuse_handshakes", "stream", "chunks", "steps", "rules", "name", "persona",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z_]{1,12}",
    ]
}

/// Strings: event types, reasons and the like, or anything at all.
fn text() -> impl Strategy<Value = String> {
    let mut known: Vec<&'static str> = ClientEvent::TYPES.to_vec();
    known.extend([
        "EVENT_TYPE_POLY_AGENT_MESSAGE",
        "EVENT_TYPE_SESSION_END",
        "REASON_USER_END",
        "REASON_NATURAL_END",
        "drop",
        "handoff_accepted",
        "playground",
        "",
    ]);
    prop_oneof![
        2 => prop::sample::select(known).prop_map(str::to_owned),
        2 => any::<String>(),
        1 => "\\PC{0,4}",
    ]
}

/// Any JSON value, weighted toward the protocol's shapes.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A client frame: JSON shaped like one, JSON of any shape, or any text at all.
fn frame_text() -> impl Strategy<Value = String> {
    let shaped = (
        prop::sample::select(ClientEvent::TYPES.to_vec()),
        json(),
        prop::option::of(json()),
    )
        .prop_map(|(kind, payload, metadata)| {
            let mut frame = serde_json::json!({ "type": kind, "payload": payload });
            if let Some(metadata) = metadata {
                frame["metadata"] = metadata;
            }
            frame.to_string()
        });
    prop_oneof![
        3 => shaped,
        2 => json().prop_map(|v| v.to_string()),
        1 => any::<String>(),
    ]
}

#[test]
fn client_frame_decoding_never_panics_and_answers_only_catalog_strings() {
    let options = DecodeOptions::default();
    fuzz("client frames", cases(3_000), frame_text(), |text| {
        match decode_client_frame(RawFrame::Text(&text), &options) {
            Ok(frame) => {
                prop_assert!(ClientEvent::TYPES.contains(&frame.event.event_type()));
                // What decodes is a JSON object with a known type.
                let value: Value =
                    serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(value["type"].as_str(), Some(frame.event.event_type()));
            }
            Err(rejection) => {
                let message = rejection.error.system_message();
                prop_assert!(
                    message == catalog::UNKNOWN_EVENT_OR_INVALID_FORMAT
                        || message == catalog::MESSAGE_TOO_LARGE
                        || message.starts_with(catalog::EVENT_TYPE_NOT_ALLOWED_PREFIX),
                    "{message}"
                );
            }
        }
        Ok(())
    });
    fuzz(
        "binary frames",
        cases(1_000),
        prop::collection::vec(any::<u8>(), 0..256),
        |bytes| {
            let decoded = decode_client_frame(RawFrame::Binary(&bytes), &options);
            prop_assert!(decoded.is_err(), "binary frames are refused (spec §12 B11)");
            Ok(())
        },
    );
}

#[test]
fn cursor_parsing_accepts_exactly_the_documented_forms() {
    let cursor = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| format!("seq:{n}")),
        "[0-9]{0,25}",
        "(seq:)?-?[0-9a-f ]{0,6}",
        any::<String>(),
    ];
    fuzz(
        "cursors",
        cases(3_000),
        (cursor, any::<bool>()),
        |(raw, plain)| {
            // `plain: false` is the 2026-05 revision: only `seq:N`.
            let parsed = parse_cursor(Some(&raw), plain);
            let prefixed = raw.starts_with("seq:");
            let digits = raw.strip_prefix("seq:").unwrap_or(&raw);
            let valid = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (plain || prefixed);
            match digits.parse::<u64>() {
                Ok(n) if valid => prop_assert_eq!(parsed.ok(), Some(n)),
                _ => prop_assert!(parsed.is_err(), "{raw:?} is not a cursor (plain: {plain})"),
            }
            Ok(())
        },
    );
}

/// A valid scenario file (the embedded default), with one value somewhere replaced.
fn mutated_scenario() -> impl Strategy<Value = String> {
    let base: Value =
        serde_json::from_str(include_str!("../../../fixtures/scenarios/playground.json"))
            .expect("the playground fixture is JSON");
    let pointers = Arc::new(pointers(&base, String::new()));
    (0..pointers.len(), json()).prop_map(move |(i, replacement)| {
        let mut value = base.clone();
        if let Some(slot) = value.pointer_mut(&pointers[i]) {
            *slot = replacement;
        }
        value.to_string()
    })
}

fn pointers(value: &Value, at: String) -> Vec<String> {
    let mut out = vec![at.clone()];
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.extend(pointers(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                ));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                out.extend(pointers(v, format!("{at}/{i}")));
            }
        }
        _ => {}
    }
    out
}

#[test]
fn scenario_parsing_never_panics_and_names_where_a_file_is_wrong() {
    let scenario = prop_oneof![
        3 => mutated_scenario(),
        1 => json().prop_map(|v| v.to_string()),
        1 => any::<String>(),
    ];
    fuzz("scenario files", cases(1_500), scenario, |text| {
        if let Err(error) = mock_server::scenario::parse("fuzz", "fuzz.json", &text) {
            prop_assert!(!error.problem.is_empty());
            prop_assert_eq!(error.file.as_str(), "fuzz.json");
        }
        Ok(())
    });
}

/// Control requests with arbitrary bodies: only documented statuses, never a 5xx, and the
/// server still answers health afterwards.
#[test]
fn control_bodies_get_only_documented_statuses() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (server, session) = runtime.block_on(async {
        let server = MockServer::start_with(Config::default())
            .await
            .expect("starts");
        let (_, session) = new_session(&server, false).await;
        (server, session)
    });
    let targets = vec![
        ("POST", "/_mock/clock".to_owned()),
        ("POST", "/_mock/http-failures".to_owned()),
        ("PUT", "/_mock/next-scenario".to_owned()),
        ("POST", format!("/_mock/sessions/{session}/steps")),
        ("POST", format!("/_mock/sessions/{session}/faults")),
    ];
    let request = (prop::sample::select(targets), json());
    fuzz(
        "control bodies",
        cases(600),
        request,
        |((method, path), body)| {
            // Advancing the clock for real would end the session; keep the steps' session alive.
            let body = match (&body, path.as_str()) {
                (Value::Object(map), "/_mock/clock") if map.contains_key("advance_ms") => {
                    Value::Null
                }
                _ => body,
            };
            let status = runtime.block_on(async {
                let response = http(
                    &server,
                    method,
                    &path,
                    &[("content-type", "application/json")],
                    &body.to_string(),
                )
                .await;
                response.status.as_u16()
            });
            prop_assert!(
                [200, 400, 404, 409].contains(&status),
                "{method} {path} {body} answered {status}"
            );
            Ok(())
        },
    );
    let health = runtime.block_on(http(&server, "GET", "/_mock/health", &[], ""));
    assert_eq!(health.status.as_u16(), 200);
}

/// Negative control for the harness itself: a property that does not hold must fail the test.
#[test]
#[should_panic(expected = "fuzz a false property")]
fn the_harness_fails_a_property_that_does_not_hold() {
    fuzz("a false property", 200, any::<u8>(), |byte| {
        prop_assert!(byte < 200, "{byte}");
        Ok(())
    });
}
