//! The `messaging-mock` binary: one readiness line, a working default, clean exit on SIGTERM.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Client, bounded};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_messaging-mock"))
}

#[test]
fn a_bad_config_is_refused_with_a_message_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("mm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad.json");
    std::fs::write(&path, r#"{"session_idle_timeout_seconds": -5}"#).expect("write");
    let output = binary().arg("--config").arg(&path).output().expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("session_idle_timeout_seconds"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "no readiness line for a server that did not start"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn serves_with_defaults_prints_one_ready_line_and_exits_cleanly_on_sigterm() {
    bounded(async {
        let args = ["--bind", "127.0.0.1:0", "--seed", "7"].map(std::ffi::OsStr::new);
        let (mut child, ready) = crate::support::spawn_binary(&args).await;
        assert_eq!(ready["ready"], true);
        assert_eq!(ready["connector_token"], "mock-connector-token");
        assert_eq!(ready["seed"], 7);
        let console = ready["console_url"].as_str().expect("console_url");
        assert!(
            console.starts_with("http://127.0.0.1:") && console.ends_with("/_mock/ui/"),
            "{console}"
        );
        let ws_url = ready["ws_url"].as_str().expect("ws_url").to_owned();
        assert!(
            ws_url.starts_with("ws://127.0.0.1:") && ws_url.ends_with("/ws"),
            "{ws_url}"
        );

        // A handshake without parameters reaches the real server and is refused properly.
        let refused = Client::connect(&ws_url).await.err().expect("refused");
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (400, "invalid connection parameters")
        );

        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("joined")
            .expect("waits");
        assert!(exit.success(), "{exit:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    })
    .await;
}

#[tokio::test]
async fn ctl_talks_to_the_control_api() {
    bounded(async {
        let server = crate::support::start(mock_server::Config::default()).await;
        let base = server.base_url();
        let run = move |args: Vec<String>| {
            tokio::task::spawn_blocking(move || binary().arg("ctl").args(args).output())
        };
        let health = run(vec!["--url".into(), base.clone(), "health".into()])
            .await
            .expect("joined")
            .expect("runs");
        assert!(
            health.status.success(),
            "{}",
            String::from_utf8_lossy(&health.stderr)
        );
        let body: serde_json::Value = serde_json::from_slice(&health.stdout).expect("JSON");
        assert_eq!(body["ok"], true);
        let missing = run(vec![
            "--url".into(),
            base.clone(),
            "session".into(),
            "nope".into(),
        ])
        .await
        .expect("joined")
        .expect("runs");
        assert!(!missing.status.success());
        assert!(
            String::from_utf8_lossy(&missing.stderr).contains("404"),
            "{}",
            String::from_utf8_lossy(&missing.stderr)
        );
        server.shutdown().await;
    })
    .await;
}

/// `--version` names the binary, the crate version and the commit it was built from.
#[test]
fn version_names_the_binary_and_the_git_revision() {
    let output = binary().arg("--version").output().expect("runs");
    assert!(output.status.success());
    let line = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let expected = format!("messaging-mock {} (git ", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&expected), "{line}");
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(head) = head {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        assert_eq!(
            line,
            format!("{expected}{head})"),
            "built from this checkout's HEAD"
        );
    }
}
