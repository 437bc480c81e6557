//! The harness end to end at tiny sizes (`loadgen smoke`): every mode runs against both
//! servers and measures something. It judges no speed: CI machines are shared and noisy.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BOUND: Duration = Duration::from_secs(180);

/// `messaging-mock` next to `loadgen`; built first when this crate's tests run alone.
fn mock_binary(loadgen: &Path) -> PathBuf {
    let mock = loadgen.with_file_name(format!("messaging-mock{}", std::env::consts::EXE_SUFFIX));
    if !mock.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "mock-server", "--bin", "messaging-mock"])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building messaging-mock failed");
    }
    assert!(mock.is_file(), "no mock binary at {}", mock.display());
    mock
}

/// Runs `loadgen ARGS`, killed after `BOUND`: (exit code, stdout, stderr).
fn loadgen(args: &[&str]) -> (Option<i32>, String, String) {
    let exe = Path::new(env!("CARGO_BIN_EXE_loadgen"));
    mock_binary(exe);
    let mut child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning loadgen");
    let started = Instant::now();
    while child.try_wait().expect("waiting for loadgen").is_none() {
        if started.elapsed() > BOUND {
            let _ = child.kill();
            panic!("loadgen {args:?} ran longer than {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("collecting output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn metric(sample: &Value, name: &str) -> f64 {
    sample["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("no metric {name} in {sample}"))
}

#[test]
fn smoke_runs_every_mode_against_both_servers() {
    let (code, stdout, stderr) = loadgen(&["smoke", "--json", "--quiet"]);
    assert_eq!(code, Some(0), "loadgen smoke failed:\n{stderr}\n{stdout}");
    let results: Value = serde_json::from_str(&stdout).expect("--json prints one JSON document");
    assert!(results["machine"]["cores"].as_u64().is_some_and(|c| c >= 1));
    let comparisons = results["comparisons"].as_array().expect("comparisons");
    let names: Vec<&str> = comparisons
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for prefix in [
        "echo C=2",
        "echo over TLS C=2",
        "echo through the proxy C=2",
        "echo through a byte forwarder C=2",
        "turn C=2",
        "http C=2",
        "startup",
        "idle 20",
        "full 20",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(prefix)),
            "no {prefix} in {names:?}"
        );
    }
    for comparison in comparisons {
        let samples = comparison["samples"].as_array().expect("samples");
        let servers: Vec<&str> = samples
            .iter()
            .filter_map(|s| s["server"].as_str())
            .collect();
        let mock_only = comparison["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("turn"));
        let through = |what: &str| {
            comparison["name"]
                .as_str()
                .is_some_and(|n| n.contains(what))
        };
        let expected: &[&str] = if mock_only {
            &["mock"]
        } else if through("through the proxy") {
            &["mock", "proxied"]
        } else if through("through a byte forwarder") {
            &["mock", "forwarded"]
        } else {
            &["reference", "mock"]
        };
        assert_eq!(servers, expected, "{}", comparison["name"]);
        for sample in samples {
            assert_eq!(sample["errors"], 0, "{sample}");
        }
    }
    let echo = &comparisons[0]["samples"];
    for sample in echo.as_array().expect("echo samples") {
        assert!(metric(sample, "msgs_per_s") > 0.0);
        assert!(metric(sample, "p50_us") <= metric(sample, "p99_us"));
        assert!(metric(sample, "p99_us") <= metric(sample, "p999_us"));
        assert!(metric(sample, "rss_mib") > 0.0);
    }
    let startup = comparisons
        .iter()
        .find(|c| c["name"] == "startup")
        .expect("startup");
    for sample in startup["samples"].as_array().expect("startup samples") {
        let first_200 = metric(sample, "first_200_ms");
        assert!(metric(sample, "ready_ms") <= first_200);
        assert!(first_200 <= metric(sample, "first_echo_ms"));
    }
    let idle = comparisons
        .iter()
        .find(|c| c["name"].as_str().is_some_and(|n| n.starts_with("idle")))
        .expect("idle");
    for sample in idle["samples"].as_array().expect("idle samples") {
        assert_eq!(metric(sample, "sessions"), 20.0);
    }
}

#[test]
fn a_short_soak_churns_sessions_and_finds_every_received_frame_in_the_recordings() {
    let dir = std::env::temp_dir().join(format!("loadgen-soak-{}", std::process::id()));
    let record = dir.to_string_lossy().into_owned();
    let (code, stdout, stderr) = loadgen(&[
        "soak",
        "--duration",
        "3",
        "--concurrency",
        "4",
        "--interval",
        "0.5",
        "--retention",
        "1",
        "--record",
        &record,
        "--json",
        "--quiet",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(0), "loadgen soak failed:\n{stderr}\n{stdout}");
    let report: Value = serde_json::from_str(&stdout).expect("--json prints one JSON document");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["frames_missing"], 0, "{report}");
    assert!(
        report["sessions"].as_u64().is_some_and(|n| n >= 4),
        "{report}"
    );
    assert_eq!(report["recordings_checked"], report["sessions"]);
    assert!(report["frames_received"].as_u64().is_some_and(|n| n > 0));
    assert!(report["series"].as_array().is_some_and(|s| s.len() >= 4));
}

#[test]
fn a_missing_mock_binary_is_a_clear_error() {
    let (code, _, stderr) = loadgen(&["echo", "--mock-bin", "/nonexistent/messaging-mock"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("mock server binary not found"), "{stderr}");
}
