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
        // The readiness line's control_url works as --url too, and the request log answers.
        let control_url = format!("{base}/_mock");
        let count = run(vec![
            "--url".into(),
            control_url.clone(),
            "requests".into(),
            "--endpoint".into(),
            "sessions".into(),
            "--count".into(),
        ])
        .await
        .expect("joined")
        .expect("runs");
        assert!(
            count.status.success(),
            "{}",
            String::from_utf8_lossy(&count.stderr)
        );
        let body: serde_json::Value = serde_json::from_slice(&count.stdout).expect("JSON");
        assert_eq!(body, serde_json::json!({"count": 0}));
        let armed = run(vec![
            "--url".into(),
            format!("{control_url}/"),
            "http-failures".into(),
            r#"{"sessions": 2}"#.into(),
        ])
        .await
        .expect("joined")
        .expect("runs");
        let body: serde_json::Value = serde_json::from_slice(&armed.stdout).expect("JSON");
        assert_eq!(body["sessions"], 2, "{body}");
        // A URL with some other path is refused with what to give instead, before any request.
        let wrong = run(vec![
            "--url".into(),
            format!("{base}/api/v1"),
            "health".into(),
        ])
        .await
        .expect("joined")
        .expect("runs");
        assert!(!wrong.status.success());
        let stderr = String::from_utf8_lossy(&wrong.stderr);
        assert!(stderr.contains("control_url"), "{stderr}");
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

/// `messaging-mock scenarios | head -1`: the reader goes away, and the binary stops quietly
/// with the status a shell reports for SIGPIPE instead of panicking.
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_a_listing_quietly() {
    use std::process::Stdio;
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader); // nobody will read: the first write fails with a broken pipe
    let output = binary()
        .arg("scenarios")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        output.status.code(),
        Some(mock_server::output::BROKEN_PIPE_STATUS),
        "{stderr}"
    );
    // The control: with a reader, the same listing succeeds.
    let listed = binary().arg("scenarios").output().expect("runs");
    assert!(listed.status.success());
    assert!(String::from_utf8_lossy(&listed.stdout).contains("playground"));
}

/// A configuration whose `connectors` leave out the default one says so at start-up.
#[cfg(unix)]
#[tokio::test]
async fn configured_connectors_that_replace_the_default_one_are_announced() {
    bounded(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let announced = |connectors: serde_json::Value| {
            let dir = dir.path().to_owned();
            tokio::task::spawn_blocking(move || {
                use std::io::{BufRead, BufReader};
                let config = dir.join("config.json");
                let body = serde_json::json!({ "connectors": connectors });
                std::fs::write(&config, body.to_string()).expect("write");
                let log = dir.join("stderr.log");
                let mut child = binary()
                    .args(["--bind", "127.0.0.1:0", "--config"])
                    .arg(&config)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::fs::File::create(&log).expect("log"))
                    .spawn()
                    .expect("spawns");
                let mut line = String::new();
                BufReader::new(child.stdout.take().expect("stdout"))
                    .read_line(&mut line)
                    .expect("a readiness line");
                let _ = child.kill();
                let _ = child.wait();
                let ready: serde_json::Value = serde_json::from_str(&line).expect("JSON");
                (ready, std::fs::read_to_string(&log).expect("log"))
            })
        };
        let (ready, stderr) = announced(serde_json::json!([
            {"id": "acme", "token": "tok-acme", "host": "https://www.acme.example"}
        ]))
        .await
        .expect("joined");
        assert_eq!(ready["connector_token"], "tok-acme");
        assert!(
            stderr.contains("replace the default one") && stderr.contains("acme"),
            "{stderr}"
        );
        // The control: keeping the default connector beside another announces nothing.
        let (_, stderr) = announced(serde_json::json!([
            {"id": "default", "token": "mock-connector-token", "host": "localhost"},
            {"id": "acme", "token": "tok-acme", "host": "https://www.acme.example"}
        ]))
        .await
        .expect("joined");
        assert!(!stderr.contains("replace the default one"), "{stderr}");
    })
    .await;
}

/// The harness that runs the Node, Python and JVM suites and the browser tests reads a child's
/// output while it runs: 1 MiB on stdout (16 pipe buffers) and some on stderr finish at once,
/// whole. Negative control: a child that outlives its bound is killed and says so.
#[test]
fn a_bounded_child_that_writes_more_than_a_pipe_holds_is_read_while_it_runs() {
    use std::process::Command;
    use std::time::{Duration, Instant};
    let started = Instant::now();
    let run = crate::browser::run_bounded(
        Command::new("sh").args([
            "-c",
            "head -c 1048576 /dev/zero | tr '\\0' x; echo done >&2",
        ]),
        Duration::from_secs(15),
    )
    .expect("sh runs");
    assert!(
        run.status.is_some_and(|s| s.success()),
        "finished on its own"
    );
    assert_eq!(run.stdout.len(), 1 << 20);
    assert_eq!(run.stderr, "done\n");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let slow = crate::browser::run_bounded(
        Command::new("sh").args(["-c", "echo started; sleep 30"]),
        Duration::from_millis(300),
    )
    .expect("sh runs");
    assert!(slow.status.is_none(), "killed at the bound");
    assert_eq!(slow.stdout, "started\n");
}
