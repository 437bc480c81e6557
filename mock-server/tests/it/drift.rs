//! `messaging-mock drift`: a recording of the mock itself shows no drift against the same
//! scenario, and a recording made against another scenario is told apart, field by field.

use mock_server::Config;
use mock_server::drift::drift;

use crate::support::{
    JOIN, bounded, converse, new_session, new_session_client, start, user_message, ws_url,
};

/// Records one conversation (join, greeting, a question and its answer) with `scenario`:
/// the recording's path, kept in `dir`.
async fn record(dir: &std::path::Path, scenario: &str) -> std::path::PathBuf {
    let server = start(Config {
        scenario: scenario.to_owned(),
        seed: Some(5),
        record_dir: Some(dir.to_owned()),
        ..Config::default()
    })
    .await;
    let (token, session) = new_session(&server, false).await;
    converse(&ws_url(&server, &session, &token, None)).await;
    server.shutdown().await;
    dir.join(format!("{session}.jsonl"))
}

fn config(scenario: &str) -> Config {
    Config {
        scenario: scenario.to_owned(),
        seed: Some(5),
        time_scale: 20.0,
        ..Config::default()
    }
}

#[tokio::test]
async fn the_mock_does_not_drift_from_itself_and_a_changed_scenario_is_named() {
    bounded(async {
        let dir = tempfile::tempdir().expect("a directory");
        let recording = record(dir.path(), "playground").await;
        let text = std::fs::read_to_string(&recording).expect("recorded");
        let entries = mock_server::journal::read_recording(&text).expect("a recording");

        let same = drift(&entries, config("playground")).await.expect("runs");
        assert_eq!(same.differences, vec![], "{same:?}");
        assert_eq!(same.client_frames, 2);
        assert!(same.recorded_events >= 5, "{same:?}");

        // Negative control: the same client against another agent.
        let other = drift(&entries, config("lifecycle/basic-conversation"))
            .await
            .expect("runs");
        assert!(!other.differences.is_empty());
        assert!(
            other.differences.iter().all(|d| !d.after_fault) && other.faults.is_empty(),
            "no fault was injected: {other:?}"
        );
        assert!(
            other
                .differences
                .iter()
                .any(|d| d.after.starts_with("client frame") && d.what.contains("`payload.")),
            "{:#?}",
            other.differences
        );
    })
    .await;
}

#[tokio::test]
async fn the_binary_exits_0_without_drift_1_with_and_2_on_a_bad_recording() {
    bounded(async {
        let dir = tempfile::tempdir().expect("a directory");
        let recording = record(dir.path(), "playground").await;
        let run = |scenario: &str| {
            std::process::Command::new(env!("CARGO_BIN_EXE_messaging-mock"))
                .arg("drift")
                .arg(&recording)
                .args(["--scenario", scenario])
                .output()
                .expect("runs")
        };
        let same = run("playground");
        let out = String::from_utf8_lossy(&same.stdout).into_owned();
        assert_eq!(same.status.code(), Some(0), "{out}");
        assert!(out.contains("0 difference(s)"), "{out}");
        let changed = run("lifecycle/basic-conversation");
        let out = String::from_utf8_lossy(&changed.stdout).into_owned();
        assert_eq!(changed.status.code(), Some(1), "{out}");
        assert!(out.contains("connection 1, after client frame"), "{out}");
        let garbage = dir.path().join("garbage.jsonl");
        std::fs::write(&garbage, "not a recording\n").expect("writes");
        let bad = std::process::Command::new(env!("CARGO_BIN_EXE_messaging-mock"))
            .arg("drift")
            .arg(&garbage)
            .output()
            .expect("runs");
        assert_eq!(
            bad.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&bad.stderr)
        );
    })
    .await;
}

#[tokio::test]
async fn differences_after_an_injected_fault_are_marked_as_the_faults() {
    bounded(async {
        let dir = tempfile::tempdir().expect("a directory");
        let server = start(Config {
            seed: Some(5),
            record_dir: Some(dir.path().to_owned()),
            ..Config::default()
        })
        .await;
        // The greeting as the scenario has it; then the next event (the question's echo)
        // sent twice by a fault.
        let (_, session, mut client) = new_session_client(&server, false).await;
        client.next_event().await;
        client.send(JOIN).await;
        client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        server
            .inject_faults(
                &session,
                vec![serde_json::from_str(r#""duplicate_next""#).expect("a fault")],
            )
            .expect("injected");
        client
            .send(&user_message("What are your opening hours?"))
            .await;
        client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        server.shutdown().await;
        let text =
            std::fs::read_to_string(dir.path().join(format!("{session}.jsonl"))).expect("recorded");
        let entries = mock_server::journal::read_recording(&text).expect("a recording");

        let report = drift(&entries, config("playground")).await.expect("runs");
        assert_eq!(report.faults.len(), 1, "{report:?}");
        assert!(
            !report.differences.is_empty(),
            "the duplicate is not replayed: {report:?}"
        );
        assert!(
            report
                .differences
                .iter()
                .all(|d| d.after_fault && d.after.starts_with("client frame 2")),
            "only the question's answer differs, after the fault: {:#?}",
            report.differences
        );
    })
    .await;
}
