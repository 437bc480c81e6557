//! Runs one of the browser tests (a Node script driving headless Chromium through
//! playwright-core) from `cargo test`, and says whether a missing prerequisite may skip a test.
//! Shared by the test crates with `#[path]` (as `mod browser` in each `tests/it/main.rs`).
//!
//! Prerequisites: `node`, `tools/node_modules/playwright-core` (`npm ci --prefix tools`) and
//! Chromium (`/usr/bin/chromium`, or `$CHROMIUM`); `.ci/run` installs all three. A browser test
//! is a trial (`tools/trials.rs`) that checks them with [`browser`] first: missing, it is
//! ignored with the reason, or fails under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where screenshots go: `docs/screenshots/` with `UPDATE_SCREENSHOTS=1` (the committed ones
/// the docs show), else `target/screenshots/`.
pub fn screenshots() -> PathBuf {
    let update = std::env::var("UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1");
    repo().join(if update {
        "docs/screenshots"
    } else {
        "target/screenshots"
    })
}

/// Whether a missing prerequisite must fail a test rather than skip it (under CI it must).
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The browser tests' prerequisites, or which one is missing.
pub fn browser() -> Result<(), String> {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node {
        return Err("`node` is not on PATH".into());
    }
    if !repo().join("tools/node_modules/playwright-core").is_dir() {
        return Err("playwright-core is not installed (run `npm ci --prefix tools`)".into());
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!(
            "no Chromium at {chromium} (apt-get install chromium)"
        ));
    }
    Ok(())
}

/// Runs `node --experimental-websocket <script>` with `env`, killed after `bound`; its stdout
/// when it succeeds, panics with its output when it fails. Check [`browser`] first.
pub fn run_browser_test(script: &Path, env: &[(&str, String)], bound: Duration) -> String {
    let mut child = Command::new("node")
        .arg("--experimental-websocket")
        .arg(script)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for node") {
            break Some(status);
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().expect("node output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    match status {
        Some(status) if status.success() => stdout,
        Some(status) => panic!("browser test failed ({status}):\n{stdout}\n{stderr}"),
        None => panic!("browser test exceeded {bound:?}:\n{stdout}\n{stderr}"),
    }
}
