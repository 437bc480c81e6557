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

/// What a bounded child process did: its exit status (`None`: killed at the bound) and its
/// output.
pub struct Bounded {
    pub status: Option<std::process::ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` with piped output, killed after `bound` together with everything it started
/// (it leads a process group of its own). Its stdout and stderr are read while it runs (a child
/// that writes more than a pipe holds must not stall on a full pipe); a descendant that escaped
/// the group and keeps a pipe open costs at most 5 s more, and what was read is kept.
pub fn run_bounded(command: &mut Command, bound: Duration) -> std::io::Result<Bounded> {
    use std::sync::{Arc, Mutex};
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(command, 0);
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    type Drained = (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>);
    fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> Drained {
        let read = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&read);
        let reader = std::thread::spawn(move || {
            let Some(mut pipe) = pipe else { return };
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&chunk[..n]);
            }
        });
        (read, reader)
    }
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > bound {
            #[cfg(unix)]
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let until = Instant::now() + Duration::from_secs(5);
    while !(out.1.is_finished() && err.1.is_finished()) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let text = |(read, _): Drained| {
        let bytes = read.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok(Bounded {
        status,
        stdout: text(out),
        stderr: text(err),
    })
}

/// Runs `node --experimental-websocket <script>` with `env`, killed after `bound`; its stdout
/// when it succeeds, panics with its output when it fails. Check [`browser`] first.
pub fn run_browser_test(script: &Path, env: &[(&str, String)], bound: Duration) -> String {
    let mut command = Command::new("node");
    command
        .arg("--experimental-websocket")
        .arg(script)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let run = run_bounded(&mut command, bound).expect("node starts");
    let (stdout, stderr) = (run.stdout, run.stderr);
    match run.status {
        Some(status) if status.success() => stdout,
        Some(status) => panic!("browser test failed ({status}):\n{stdout}\n{stderr}"),
        None => panic!("browser test exceeded {bound:?}:\n{stdout}\n{stderr}"),
    }
}
