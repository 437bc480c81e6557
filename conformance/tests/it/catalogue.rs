//! The kit tests itself: the reference client passes every case, and each deliberately broken
//! client is failed by the check for its own defect.

use conformance::catalogue::{Case, catalogue};
use conformance::driver::InProcess;
use conformance::obligations::OBLIGATIONS;
use conformance::reference::Defects;
use conformance::runner::{CaseResult, Verdict, run_case};

async fn run(case: &Case, defects: Defects) -> CaseResult {
    run_case(case, |env| async move {
        Ok(InProcess::with_defects(env, defects))
    })
    .await
}

fn case(id: &str) -> Case {
    catalogue()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

#[tokio::test]
async fn the_reference_client_passes_every_case() {
    {
        for case in catalogue() {
            let result = crate::bounded(run(&case, Defects::default())).await;
            assert!(
                result.driver_error.is_none(),
                "{}: {:?}",
                case.id,
                result.driver_error
            );
            for finding in &result.findings {
                // AUTH-4 and SEC-1 are about the app's code: skipped, with the reason, for all.
                let expected = if matches!(finding.obligation, "AUTH-4" | "SEC-1") {
                    matches!(finding.verdict, Verdict::Skipped(_))
                } else {
                    finding.verdict == Verdict::Pass
                };
                assert!(
                    expected,
                    "{}: {} {:?} ({:?})",
                    case.id, finding.obligation, finding.verdict, result.notes
                );
            }
            assert!(!result.findings.is_empty(), "{} checks nothing", case.id);
        }
    }
}

#[test]
fn every_case_checks_known_obligations() {
    for case in catalogue() {
        for (id, _) in &case.checks {
            assert!(
                OBLIGATIONS.iter().any(|o| o.id == *id),
                "{}: unknown obligation {id}",
                case.id
            );
        }
    }
}

/// Runs `case` with one defect and asserts `obligation` is failed or warned in it.
async fn caught(defect: &str, case_id: &str, obligation: &str) {
    let defects = Defects::each()
        .into_iter()
        .find(|(name, _)| *name == defect)
        .map(|(_, d)| d)
        .unwrap_or_else(|| panic!("no defect {defect}"));
    let result = crate::bounded(run(&case(case_id), defects)).await;
    let verdicts = result.verdict_of(obligation);
    assert!(
        verdicts
            .iter()
            .any(|v| matches!(v, Verdict::Fail(_) | Verdict::Warn(_))),
        "{defect} escaped {obligation} in {case_id}: {verdicts:?} (driver error: {:?})",
        result.driver_error
    );
}

#[tokio::test]
async fn no_dedup_is_caught_by_msg_2() {
    caught("no-dedup", "live-delivery", "MSG-2").await;
}

#[tokio::test]
async fn arrival_order_is_caught_by_msg_3() {
    caught("arrival-order", "live-delivery", "MSG-3").await;
}

#[tokio::test]
async fn not_flattening_batches_is_caught_by_msg_1() {
    caught("no-batch-flattening", "live-delivery", "MSG-1").await;
}

#[tokio::test]
async fn joining_on_reconnect_is_caught_by_ws_4() {
    caught("join-on-reconnect", "reconnect-mid-stream", "WS-4").await;
}

#[tokio::test]
async fn a_new_session_on_reconnect_is_caught_by_rc_1() {
    caught("new-session-on-reconnect", "reconnect-mid-stream", "RC-1").await;
}

#[tokio::test]
async fn reconnecting_without_a_cursor_is_caught_by_rc_2() {
    caught("no-cursor", "reconnect-mid-stream", "RC-2").await;
}

#[tokio::test]
async fn no_heartbeat_is_caught_by_hb_1() {
    caught("no-heartbeat", "heartbeat", "HB-1").await;
}

#[tokio::test]
async fn ignoring_the_advertised_interval_is_caught_by_hb_2() {
    caught("fixed-heartbeat", "heartbeat", "HB-2").await;
}

#[tokio::test]
async fn reconnecting_after_the_end_is_caught_by_ux_4() {
    caught("reconnect-after-end", "new-session", "UX-4").await;
}

#[tokio::test]
async fn closing_on_an_unknown_event_is_caught_by_err_2() {
    caught("close-on-unknown-event", "tolerance", "ERR-2").await;
}

#[tokio::test]
async fn closing_on_an_error_message_is_caught_by_err_1() {
    caught("close-on-error-message", "error-messages", "ERR-1").await;
}

#[tokio::test]
async fn joining_before_the_history_is_caught_by_ws_2() {
    caught("join-before-history", "join-timing", "WS-2").await;
}

#[test]
fn every_defect_has_a_test_that_catches_it() {
    let source = include_str!("catalogue.rs");
    for (name, _) in Defects::each() {
        assert!(
            source.contains(&format!("caught(\"{name}\"")),
            "no test catches {name}"
        );
    }
}

#[tokio::test]
async fn sending_oversized_frames_is_caught_by_ws_7() {
    caught("oversized-frames", "oversized-message", "WS-7").await;
}

#[tokio::test]
async fn never_resending_is_caught_by_msg_5() {
    caught("no-resend", "lost-message", "MSG-5").await;
}

#[tokio::test]
async fn reconnecting_without_backoff_is_caught_by_rc_3_and_rc_4() {
    caught("no-backoff", "unreachable", "RC-3").await;
    caught("no-backoff", "unreachable", "RC-4").await;
}

#[tokio::test]
async fn rest_calls_without_json_content_type_are_caught_by_auth_1_and_auth_2() {
    caught("no-content-type", "new-session", "AUTH-1").await;
    caught("no-content-type", "new-session", "AUTH-2").await;
}

/// `CONFORMANCE_DRIVER="<command>" cargo test -p conformance` grades an external driver.
#[tokio::test]
async fn an_external_driver_given_in_conformance_driver_passes_every_must() {
    let Ok(command) = std::env::var("CONFORMANCE_DRIVER") else {
        eprintln!(
            "SKIPPED an_external_driver_given_in_conformance_driver_passes_every_must: CONFORMANCE_DRIVER is not set"
        );
        return;
    };
    let workdir = std::env::temp_dir();
    let mut failures = Vec::new();
    for case in catalogue() {
        let command = command.clone();
        let workdir = workdir.clone();
        let result = run_case(&case, |env| async move {
            conformance::driver::ProcessDriver::launch(
                &command,
                &env,
                &workdir,
                std::time::Duration::from_secs(10),
            )
            .await
        })
        .await;
        if result.failed() {
            failures.push(format!(
                "{}: {:?} {:?}",
                case.id, result.driver_error, result.findings
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The independent Node 20 driver in `examples/drivers/node/` passes the whole catalogue,
/// warnings included. Skipped, with the reason printed, where `node` is missing.
#[tokio::test]
async fn the_node_driver_passes_every_case() {
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED the_node_driver_passes_every_case: `node` is not on PATH");
        return;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/drivers/node/driver.mjs");
    let command = format!("node --experimental-websocket {}", script.display());
    let workdir = std::env::temp_dir();
    let mut problems = Vec::new();
    for case in catalogue() {
        let command = command.clone();
        let workdir = workdir.clone();
        let result = crate::bounded(run_case(&case, |env| async move {
            conformance::driver::ProcessDriver::launch(
                &command,
                &env,
                &workdir,
                std::time::Duration::from_secs(10),
            )
            .await
        }))
        .await;
        if result.failed() || result.warned() {
            problems.push(format!(
                "{}: {:?} {:?} {:?}",
                case.id, result.driver_error, result.findings, result.notes
            ));
        }
        // Every conformant client shows what the reference shows.
        if let Some(view) = &result.view {
            let expected = snapshot_of(case.id);
            let actual = conformance::runner::normalised_view(view);
            if expected != actual {
                problems.push(format!(
                    "{}: the view differs from the snapshot:\n{}",
                    case.id,
                    diff(&expected, &actual)
                ));
            }
        } else {
            problems.push(format!("{}: no view", case.id));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The reference client's final view of every case, normalised, is a committed snapshot named
/// after the case; other clients are compared with it (see `the_node_driver_passes_every_case`).
#[tokio::test]
async fn the_reference_views_match_their_snapshots() {
    {
        for case in catalogue() {
            let result = crate::bounded(run(&case, Defects::default())).await;
            let view = result
                .view
                .as_ref()
                .unwrap_or_else(|| panic!("{}: no view", case.id));
            insta::assert_json_snapshot!(
                format!("view-{}", case.id),
                conformance::runner::normalised_view(view)
            );
        }
    }
}

/// The committed view snapshot of `case`.
pub fn snapshot_of(case: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "tests/it/snapshots/it__catalogue__view-{case}.snap"
    ));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let body = text.splitn(3, "---").nth(2).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Lines of `expected` and `actual` (pretty JSON) that differ, `-`/`+` marked.
pub fn diff(expected: &serde_json::Value, actual: &serde_json::Value) -> String {
    // Keys sorted, so the lines line up whatever order each client wrote them in.
    fn sorted(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                serde_json::Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sorted).collect())
            }
            other => other.clone(),
        }
    }
    let expected = serde_json::to_string_pretty(&sorted(expected)).unwrap_or_default();
    let actual = serde_json::to_string_pretty(&sorted(actual)).unwrap_or_default();
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                if let Some(x) = x {
                    out.push_str(&format!("- {x}\n"));
                }
                if let Some(y) = y {
                    out.push_str(&format!("+ {y}\n"));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn never_showing_the_typing_indicator_is_caught_by_ux_1() {
    caught("no-typing-indicator", "typing-indicator", "UX-1").await;
}

#[tokio::test]
async fn a_stale_cursor_is_caught_by_rc_2() {
    caught("stale-cursor", "reconnect-mid-stream", "RC-2").await;
}

#[tokio::test]
async fn sending_server_assigned_fields_is_caught_by_ws_5() {
    caught("server-fields", "new-session", "WS-5").await;
}

#[tokio::test]
async fn chunks_in_arrival_order_are_caught_by_msg_4() {
    caught("chunks-in-arrival-order", "swapped-chunks", "MSG-4").await;
}

#[tokio::test]
async fn dropping_the_final_chunks_extras_is_caught_by_msg_4() {
    caught("drop-final-chunk-extras", "late-attachments", "MSG-4").await;
}

#[tokio::test]
async fn giving_up_on_a_failed_rest_call_is_caught_by_auth_5() {
    caught("no-rest-retry", "rest-failures", "AUTH-5").await;
}
