//! Scenario files: every fixture validates (against the schema and the loader), runs end to end
//! through its `exercise` with a transcript snapshot named after it, and reproduces byte for byte
//! from its seed. Broken files each get their specific error.

use std::path::{Path, PathBuf};

use mock_server::Config;
use mock_server::scenario::raw::{ExerciseStep, ScenarioFile};
use mock_server::scenario::{self, ScenarioError};
use serde_json::Value;

use crate::support::{Client, Frame, bounded, new_session, normalise, start, ws_url};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scenarios")
}

fn fixture_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixtures dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            fixture_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

fn all_fixtures() -> Vec<PathBuf> {
    let mut files = Vec::new();
    fixture_files(&fixtures_dir(), &mut files);
    files
}

fn name_of(path: &Path) -> String {
    path.strip_prefix(fixtures_dir())
        .expect("under fixtures")
        .with_extension("")
        .to_string_lossy()
        .replace('\\', "/")
}

#[test]
fn every_fixture_validates_against_the_schema_and_loads() {
    let schema_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/scenario.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).expect("schema")).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("compiles");
    let files = all_fixtures();
    assert!(
        files.len() >= 20,
        "the catalogue has {} fixtures",
        files.len()
    );
    for path in &files {
        let text = std::fs::read_to_string(path).expect("readable");
        let value: Value = serde_json::from_str(&text).expect("JSON");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        scenario::load_file(path).unwrap_or_else(|e| panic!("{e}"));
        let raw: ScenarioFile = serde_json::from_str(&text).expect("raw");
        assert!(
            raw.exercise.is_some(),
            "{}: every fixture demonstrates itself",
            path.display()
        );
    }
    // Everything in the folder is embedded in the binary, and nothing else.
    let embedded: Vec<&str> = scenario::embedded().iter().map(|(name, _)| *name).collect();
    let on_disk: Vec<String> = files.iter().map(|p| name_of(p)).collect();
    assert_eq!(embedded, on_disk);
}

/// Runs a fixture's exercise against a fresh server: returns the transcript.
async fn run_exercise(name: &str, seed: u64) -> Vec<(&'static str, Value)> {
    run_exercise_with(name, name, seed, None).await
}

/// Runs fixture `name`'s exercise against a server playing `scenario` (recording into
/// `record_dir` when given).
pub async fn run_exercise_with(
    name: &str,
    scenario: &str,
    seed: u64,
    record_dir: Option<PathBuf>,
) -> Vec<(&'static str, Value)> {
    let text = scenario::embedded()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no fixture {name}"));
    let raw: ScenarioFile = serde_json::from_str(text).expect("fixture parses");
    let exercise = raw.exercise.expect("fixture has an exercise");
    let server = start(Config {
        scenario: scenario.to_owned(),
        record_dir,
        seed: Some(seed),
        logical_clock_epoch_ms: Some(1_767_225_600_000),
        ..Config::default()
    })
    .await;
    let (token, session) = new_session(&server, exercise.streaming).await;
    let mut transcript: Vec<(&'static str, Value)> = Vec::new();
    let mut client: Option<Client> = None;
    let mut last_sequence = 0u64;
    let mut completed: Vec<String> = Vec::new();
    let note_sequences = |frame: &Value, last: &mut u64| {
        let mut all = vec![frame.clone()];
        if let Some(events) = frame["payload"]["events"].as_array() {
            all.extend(events.iter().cloned());
        }
        for event in all {
            if let Some(seq) = event["sequence"].as_u64() {
                *last = (*last).max(seq);
            }
        }
    };
    for (i, step) in exercise.steps.iter().enumerate() {
        let at = format!("{name}: exercise step {i} ({step:?})");
        match step {
            ExerciseStep::Connect { cursor } => {
                let cursor = cursor.as_deref().map(|c| {
                    if c == "last" {
                        last_sequence.to_string()
                    } else {
                        c.to_owned()
                    }
                });
                let url = ws_url(&server, &session, &token, cursor.as_deref());
                let opened = Client::connect(&url)
                    .await
                    .unwrap_or_else(|r| panic!("{at}: refused {} {}", r.status, r.body));
                transcript.push(("connect", serde_json::json!({ "cursor": cursor })));
                client = Some(opened);
            }
            ExerciseStep::ConnectRefused(status) => {
                let url = ws_url(&server, &session, &token, None);
                let refused = Client::connect(&url)
                    .await
                    .err()
                    .unwrap_or_else(|| panic!("{at}: accepted"));
                assert_eq!(refused.status, *status, "{at}");
                transcript.push((
                    "refused",
                    serde_json::json!({ "status": refused.status, "body": refused.body }),
                ));
            }
            ExerciseStep::Join
            | ExerciseStep::Say(_)
            | ExerciseStep::Heartbeat
            | ExerciseStep::EndSession
            | ExerciseStep::SendRaw(_) => {
                let frame = match step {
                    ExerciseStep::Join => r#"{"type":"EVENT_TYPE_REQUEST_POLY_AGENT_JOIN","payload":{}}"#.to_owned(),
                    ExerciseStep::Say(text) => serde_json::json!({"type": "EVENT_TYPE_USER_MESSAGE", "payload": {"text": text}}).to_string(),
                    ExerciseStep::Heartbeat => r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{}}"#.to_owned(),
                    ExerciseStep::EndSession => r#"{"type":"EVENT_TYPE_USER_END_SESSION","payload":{}}"#.to_owned(),
                    ExerciseStep::SendRaw(raw) => raw.clone(),
                    _ => unreachable!(),
                };
                let socket = client
                    .as_mut()
                    .unwrap_or_else(|| panic!("{at}: not connected"));
                socket.send(&frame).await;
                let logged = serde_json::from_str(&frame).unwrap_or(Value::String(frame));
                transcript.push(("→", logged));
            }
            ExerciseStep::Expect(event_type) => {
                let socket = client
                    .as_mut()
                    .unwrap_or_else(|| panic!("{at}: not connected"));
                loop {
                    match socket.next().await {
                        Frame::Event(event) => {
                            note_sequences(&event, &mut last_sequence);
                            let done = event["type"] == event_type.as_str();
                            transcript.push(("←", event));
                            if done {
                                break;
                            }
                        }
                        Frame::Close(code) => {
                            panic!("{at}: closed with {code} before {event_type}")
                        }
                    }
                }
            }
            ExerciseStep::ExpectReply => {
                let socket = client
                    .as_mut()
                    .unwrap_or_else(|| panic!("{at}: not connected"));
                loop {
                    match socket.next().await {
                        Frame::Event(event) => {
                            note_sequences(&event, &mut last_sequence);
                            let done = completes_a_reply(&event, &mut completed);
                            transcript.push(("←", event));
                            if done {
                                break;
                            }
                        }
                        Frame::Close(code) => panic!("{at}: closed with {code} before the reply"),
                    }
                }
            }
            ExerciseStep::ExpectClose(code) => {
                let socket = client
                    .as_mut()
                    .unwrap_or_else(|| panic!("{at}: not connected"));
                loop {
                    match socket.next().await {
                        Frame::Event(event) => {
                            note_sequences(&event, &mut last_sequence);
                            transcript.push(("←", event));
                        }
                        Frame::Close(got) => {
                            assert_eq!(got, *code, "{at}");
                            transcript.push(("close", Value::from(got)));
                            break;
                        }
                    }
                }
                client = None;
            }
            ExerciseStep::WaitMs(ms) => {
                tokio::time::sleep(std::time::Duration::from_millis(*ms)).await
            }
        }
    }
    server.shutdown().await;
    transcript
}

/// Whether `event` finishes an agent reply not finished before (tracked by message id).
fn completes_a_reply(event: &Value, completed: &mut Vec<String>) -> bool {
    let mut finish = |e: &Value| -> bool {
        let kind = e["type"].as_str().unwrap_or_default();
        let done = kind == "EVENT_TYPE_POLY_AGENT_MESSAGE"
            || kind == "EVENT_TYPE_SYSTEM_MESSAGE"
            || (kind == "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK"
                && e["payload"]["is_complete"] == true);
        let id = e["payload"]["message_id"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| e["id"].to_string());
        if done && !completed.contains(&id) {
            completed.push(id);
            return true;
        }
        false
    };
    match event["payload"]["events"].as_array() {
        Some(events) if event["type"] == "EVENT_TYPE_EVENT_BATCH" => {
            // Only chunks finish a reply from history (a mid-stream reconnect).
            let mut any = false;
            for chunk in events
                .iter()
                .filter(|e| e["type"] == "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK")
            {
                any |= finish(chunk);
            }
            any
        }
        _ => finish(event),
    }
}

#[tokio::test]
async fn every_fixture_runs_end_to_end_and_matches_its_snapshot() {
    for path in all_fixtures() {
        let name = name_of(&path);
        let transcript = bounded(run_exercise(&name, 7)).await;
        assert!(
            transcript.iter().any(|(dir, _)| *dir == "←"),
            "{name}: nothing received"
        );
        let snapshot = format!("scenario-{}", name.replace('/', "-"));
        insta::assert_json_snapshot!(snapshot, normalise(&transcript));
    }
}

#[tokio::test]
async fn the_same_seed_gives_byte_identical_transcripts() {
    for name in [
        "lifecycle/streaming-conversation",
        "handoff/server-managed",
        "faults/live-delivery",
    ] {
        let first = bounded(run_exercise(name, 99)).await;
        let second = bounded(run_exercise(name, 99)).await;
        let render = |t: &[(&str, Value)]| {
            t.iter()
                .map(|(d, v)| format!("{d} {v}\n"))
                .collect::<String>()
        };
        assert_eq!(render(&first), render(&second), "{name}");
        let other = bounded(run_exercise(name, 100)).await;
        assert_ne!(
            render(&first),
            render(&other),
            "{name}: the seed changes the ids"
        );
    }
}

/// (case, file text, expected pointer, expected words in the problem)
const BROKEN: &[(&str, &str, &str, &str)] = &[
    ("not JSON", "{", "", "EOF"),
    ("missing description", r#"{"rules": []}"#, "", "description"),
    (
        "unknown top-level field",
        r#"{"description": "x", "rulez": []}"#,
        "/rulez",
        "rulez",
    ),
    (
        "blank description",
        r#"{"description": " "}"#,
        "/description",
        "must say",
    ),
    (
        "unknown step",
        r#"{"description": "x", "rules": [{"when": "join", "steps": ["dance"]}]}"#,
        "/rules/0/steps/0",
        "dance",
    ),
    (
        "wrong step field type",
        r#"{"description": "x", "rules": [{"when": "join", "steps": [{"pause_ms": "soon"}]}]}"#,
        "/rules/0/steps/0/pause_ms",
        "invalid type",
    ),
    (
        "bad regex",
        r#"{"description": "x", "rules": [{"when": {"message": {"regex": "(["}}, "steps": []}]}"#,
        "/rules/0/when/message/regex",
        "invalid regex",
    ),
    (
        "two matchers",
        r#"{"description": "x", "rules": [{"when": {"message": {"equals": "a", "contains": "b"}}, "steps": []}]}"#,
        "/rules/0/when/message",
        "at most one",
    ),
    (
        "nth message zero",
        r#"{"description": "x", "rules": [{"when": {"nth_message": 0}, "steps": []}]}"#,
        "/rules/0/when/nth_message",
        "counts from 1",
    ),
    (
        "probability above one",
        r#"{"description": "x", "rules": [{"when": "join", "steps": ["join"], "probability": 1.5}]}"#,
        "/rules/0/probability",
        "within 0..1",
    ),
    (
        "unsendable close code",
        r#"{"description": "x", "rules": [{"when": "join", "steps": [{"fault": {"close": 1006}}]}]}"#,
        "/rules/0/steps/0/fault/close",
        "1006",
    ),
    (
        "refusal with a success status",
        r#"{"description": "x", "rules": [{"when": "join", "steps": [{"fault": {"refuse_handshakes": {"count": 1, "status": 200}}}]}]}"#,
        "/rules/0/steps/0/fault/refuse_handshakes/status",
        "400–599",
    ),
    (
        "stream with text and chunks",
        r#"{"description": "x", "rules": [{"when": "join", "steps": [{"stream": {"text": "a", "chunks": [{"text": "b"}]}}]}]}"#,
        "/rules/0/steps/0/stream",
        "exactly one",
    ),
    (
        "interrupt after every chunk",
        r#"{"description": "x", "rules": [{"when": "join", "steps": [{"stream": {"chunks": [{"text": "a"}, {"text": "b"}], "interrupt_after": 2}}]}]}"#,
        "/rules/0/steps/0/stream/interrupt_after",
        "between 1 and 1",
    ),
    (
        "unknown typing state",
        r#"{"description": "x", "rules": [{"when": "join", "steps": [{"live_agent_typing": "TYPING_STATE_MAYBE"}]}]}"#,
        "/rules/0/steps/0/live_agent_typing",
        "TYPING_STATE_MAYBE",
    ),
    (
        "greeting and a join rule",
        r#"{"description": "x", "greeting": {"text": "hi"}, "rules": [{"when": "join", "steps": ["join"]}]}"#,
        "/greeting",
        "join",
    ),
    (
        "tiny message size",
        r#"{"description": "x", "capabilities": {"max_message_size_bytes": 10}}"#,
        "/capabilities/max_message_size_bytes",
        "1024",
    ),
    (
        "unknown error kind",
        r#"{"description": "x", "rules": [{"when": "join", "steps": [{"error": "oops"}]}]}"#,
        "/rules/0/steps/0/error",
        "oops",
    ),
    (
        "empty join steps",
        r#"{"description": "x", "rules": [{"when": "join", "steps": []}]}"#,
        "/rules/0/steps",
        "must not be empty",
    ),
];

#[test]
fn each_broken_file_gets_its_specific_error() {
    for (case, text, pointer, words) in BROKEN {
        let error: ScenarioError = match scenario::parse("broken", "broken.json", text) {
            Ok(_) => panic!("{case}: accepted"),
            Err(error) => error,
        };
        assert_eq!(error.file, "broken.json", "{case}");
        assert_eq!(error.pointer, *pointer, "{case}: {error}");
        assert!(
            error.problem.contains(words),
            "{case}: `{}` lacks `{words}`",
            error.problem
        );
    }
}

#[tokio::test]
async fn a_server_with_a_broken_scenario_does_not_start() {
    let dir = std::env::temp_dir().join(format!("mm-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("broken.json");
    std::fs::write(
        &path,
        r#"{"description": "x", "rules": [{"when": {"nth_message": 0}, "steps": []}]}"#,
    )
    .expect("write");
    let error = mock_server::MockServer::start_with(Config {
        scenario: path.display().to_string(),
        ..Config::default()
    })
    .await
    .expect_err("refused");
    let message = format!("{error:#}");
    assert!(
        message.contains("broken.json") && message.contains("/rules/0/when/nth_message"),
        "{message}"
    );
}

#[tokio::test]
async fn a_connector_token_of_the_form_scenario_name_selects_that_scenario() {
    bounded(async {
        let server = start(Config::default()).await;
        let (_, host) = server.credentials();
        let response = crate::support::http(
            &server,
            "POST",
            "/api/v1/access-token",
            &[
                ("x-token", "scenario:handoff/client-managed"),
                ("x-host", &host),
            ],
            "{}",
        )
        .await;
        assert_eq!(response.status, 200);
        let token = response.json()["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
        let session = crate::support::create_session(&server, &token, false).await;
        let mut client = Client::connect(&ws_url(&server, &session, &token, None))
            .await
            .expect("open");
        client.next_event().await;
        client.send(crate::support::JOIN).await;
        let greeting = client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        assert_eq!(
            greeting.last().expect("greeting")["payload"]["text"],
            "Hello, I'm the booking assistant. What can I do for you?"
        );

        let unknown = crate::support::http(
            &server,
            "POST",
            "/api/v1/access-token",
            &[("x-token", "scenario:nope"), ("x-host", &host)],
            "{}",
        )
        .await;
        assert_eq!(
            (unknown.status.as_u16(), unknown.json()["message"].as_str()),
            (401, Some("Connector token does not exist"))
        );
        server.shutdown().await;
    })
    .await;
}
