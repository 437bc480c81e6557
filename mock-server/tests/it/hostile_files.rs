//! Scenario files named through the control API by a caller who may not own them (round
//! three of the hostile probes): a FIFO, many spellings of one big file, a symlink swapped
//! while it is checked, and files whose contents the answer must not echo.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mock_server::{Config, MockServer};

use crate::hostile::{put_scenario, still_serves};
use crate::support::{bounded, http, start};

async fn scenario_names(server: &MockServer) -> Vec<String> {
    let listed = http(server, "GET", "/_mock/scenarios", &[], "").await;
    serde_json::from_slice(&listed.body).expect("a list of names")
}

fn scenario(description: &str) -> String {
    serde_json::json!({"description": description, "greeting": {"text": "Hello"}}).to_string()
}

/// Finding 1: a FIFO named `*.json` pinned a blocking thread per request, never answered, and
/// kept the process alive after shutdown until something opened the FIFO for writing.
#[tokio::test]
async fn a_fifo_named_like_a_scenario_is_refused_at_once_and_does_not_hold_up_shutdown() {
    bounded(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("pipe.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success(), "mkfifo");
        for dirs in [Vec::new(), vec![dir.path().to_owned()]] {
            let server = start(Config {
                scenario_dirs: dirs,
                ..Config::default()
            })
            .await;
            let started = Instant::now();
            let (status, message) = put_scenario(&server, &fifo.display().to_string()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
            assert!(
                message.contains("not a readable scenario file"),
                "{message}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "answered at once"
            );
            still_serves(&server).await;
            let stopping = Instant::now();
            server.shutdown().await;
            assert!(
                stopping.elapsed() < Duration::from_secs(5),
                "shutdown is not held up"
            );
        }
    })
    .await;
}

/// Finding 2: every spelling of one path (`D/big.json`, `D/./big.json`, …) parsed and kept
/// another copy, and a reset freed none of them.
#[tokio::test]
async fn one_file_is_held_once_however_it_is_spelt_and_loaded_files_are_bounded_and_forgotten_on_reset()
 {
    bounded(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let big = dir.path().join("big.json");
        std::fs::write(&big, scenario(&"x".repeat(512 * 1024))).expect("written");
        let server = start(Config::default()).await;
        let before = scenario_names(&server).await.len();
        for dots in 0..30 {
            let spelt = format!("{}/{}big.json", dir.path().display(), "./".repeat(dots));
            assert_eq!(
                put_scenario(&server, &spelt).await.0,
                StatusCode::OK,
                "{spelt}"
            );
        }
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("dir");
        let roundabout = format!("{}/../big.json", sub.display());
        assert_eq!(put_scenario(&server, &roundabout).await.0, StatusCode::OK);
        assert_eq!(
            scenario_names(&server).await.len(),
            before + 1,
            "31 spellings, one copy"
        );
        // Distinct files are bounded too: past the cap a load is refused, saying why.
        let mut refused = None;
        for i in 0..=mock_server::scenario::MAX_LOADED_FILES {
            let path = dir.path().join(format!("s{i}.json"));
            std::fs::write(&path, scenario("small")).expect("written");
            let (status, message) = put_scenario(&server, &path.display().to_string()).await;
            if status != StatusCode::OK {
                refused = Some((i, status, message));
                break;
            }
        }
        let (at, status, message) = refused.expect("the cap is reached");
        assert_eq!(
            at + 1,
            mock_server::scenario::MAX_LOADED_FILES,
            "big.json counts"
        );
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(message.contains("/_mock/reset"), "{message}");
        // A reset forgets every loaded file; loading works again.
        assert_eq!(
            http(&server, "POST", "/_mock/reset", &[], "").await.status,
            StatusCode::OK
        );
        assert_eq!(scenario_names(&server).await.len(), before);
        assert_eq!(
            put_scenario(&server, &big.display().to_string()).await.0,
            StatusCode::OK
        );
        still_serves(&server).await;
        server.shutdown().await;
    })
    .await;
}

/// Finding 3: the canonical path was checked, then the original path opened; swapping a
/// symlink between a file inside `--scenario-dir` and one outside read the outside file.
#[tokio::test]
async fn a_symlink_swapped_while_it_is_checked_never_reads_outside_the_scenario_dir() {
    bounded(async {
        let inside = tempfile::tempdir().expect("temp dir");
        let outside = tempfile::tempdir().expect("temp dir");
        std::fs::write(inside.path().join("mine.json"), scenario("mine")).expect("written");
        // Outside: a file that is not a valid scenario, so a load that read it says so.
        std::fs::write(outside.path().join("secret.json"), r#"{"description": 5}"#)
            .expect("written");
        let link = inside.path().join("race.json");
        let server = start(Config {
            scenario_dirs: vec![inside.path().to_owned()],
            ..Config::default()
        })
        .await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Stops the swapper however this test ends (a failed assertion included).
        struct StopOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let guard = StopOnDrop(stop.clone());
        let swapper = {
            let (link, stop) = (link.clone(), stop.clone());
            let targets = [
                inside.path().join("mine.json"),
                outside.path().join("secret.json"),
            ];
            std::thread::spawn(move || {
                let spare = link.with_extension("tmp");
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::fs::remove_file(&spare);
                    if std::os::unix::fs::symlink(&targets[i % 2], &spare).is_ok() {
                        let _ = std::fs::rename(&spare, &link);
                    }
                    i += 1;
                }
            })
        };
        let (mut accepted, mut refused) = (0, 0);
        // A new spelling each time, so no load is answered from an earlier one.
        std::fs::create_dir(inside.path().join("sub")).expect("dir");
        let spelling = |i: usize| {
            format!(
                "{}/{}{}race.json",
                inside.path().display(),
                "./".repeat(i % 60),
                "sub/../".repeat(i / 60)
            )
        };
        let deadline = Instant::now() + Duration::from_secs(6);
        // Eight loads at a time (each on a blocking thread of its own), for up to 6 s.
        let mut answers = Vec::new();
        while answers.len() < 3_600 && Instant::now() < deadline {
            let spelt: Vec<String> = (answers.len()..answers.len() + 8).map(spelling).collect();
            let batch = spelt.iter().map(|path| put_scenario(&server, path));
            answers.extend(futures_util::future::join_all(batch).await);
        }
        for (status, message) in answers {
            match status {
                StatusCode::OK => accepted += 1,
                _ => {
                    assert!(
                        message.contains("not a readable scenario file"),
                        "the outside file was read: {message}"
                    );
                    refused += 1;
                }
            }
        }
        drop(guard);
        swapper.join().expect("swapper");
        assert!(
            accepted > 0 && refused > 0,
            "both sides of the race were hit: {accepted} accepted, {refused} refused"
        );
        let names = scenario_names(&server).await;
        let outside_path = outside.path().canonicalize().expect("canonical");
        assert!(
            !names
                .iter()
                .any(|n| Path::new(n).starts_with(&outside_path)),
            "{names:?}"
        );
        server.shutdown().await;
    })
    .await;
}

/// Finding 6: a file's values came back in the error (`{"persona": "SECRET-CANARY-77"}`), and
/// an unknown key was named, so any loopback caller could read fragments of any `.json` file.
#[tokio::test]
async fn errors_for_files_named_through_the_control_api_carry_the_pointer_not_the_values() {
    bounded(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = start(Config::default()).await;
        let cases = [
            (r#"{"persona": "SECRET-CANARY-77"}"#, "/persona"),
            (r#"{"SECRET-KEY-88": 1, "description": "d"}"#, "/…"),
            (
                r#"{"description": "d", "exercise": {"steps": [], "notes": {"SECRET-NOTE-99": 5}}}"#,
                "/exercise/notes/…",
            ),
            (
                r#"{"description": "d", "rules": [{"when": {"message": {"regex": "(SECRET-RE-11"}}, "steps": [{"reply": {"text": "x"}}]}]}"#,
                "/rules/0/when/message/regex",
            ),
            ("SECRET-SYNTAX-22", ""),
        ];
        for (i, (text, pointer)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("leak{i}.json"));
            std::fs::write(&path, text).expect("written");
            let (status, message) = put_scenario(&server, &path.display().to_string()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
            assert!(!message.contains("SECRET"), "echoes the file: {message}");
            assert!(
                message.contains(&format!("at {pointer}:")),
                "names the pointer {pointer:?}: {message}"
            );
            // The command line (the file's owner) still gets every detail (a syntax error
            // has none to give).
            let full = mock_server::scenario::load_file(&path).expect_err("invalid");
            assert_eq!(
                full.to_string().contains("SECRET"),
                !text.starts_with("SECRET"),
                "{full}"
            );
        }
        server.shutdown().await;
    })
    .await;
}
