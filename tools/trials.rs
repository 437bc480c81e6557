//! Tests that need something beyond the Rust toolchain (Node, Chromium, the npm tools, a JDK,
//! buildah, a virtualenv) run as libtest-mimic trials, so a missing prerequisite is reported as
//! what it is: the trial is *ignored*, with the reason in the summary, never counted as passed;
//! under `CI=true` it fails instead. Shared with `#[path]` by each crate's harness-less test
//! binary, beside `tools/browser_test.rs` (as `mod browser`).

use std::future::Future;
use std::time::Duration;

use libtest_mimic::{Completion, Failed, Trial};

use crate::browser::required;

/// A trial that needs something the machine may lack: `check` says what (at run time); when
/// it is missing the trial is ignored with the reason, or fails under `CI=true`.
pub fn needing<T: Send + 'static>(
    name: String,
    check: fn() -> Result<T, String>,
    test: impl FnOnce(T) -> Result<(), Failed> + Send + 'static,
) -> Trial {
    Trial::ignorable_test(name, move || match check() {
        Ok(found) => test(found).map(|()| Completion::Completed),
        Err(why) if required() => Err(format!("CI=true, but {why}").into()),
        Err(why) => Ok(Completion::ignored_with(why)),
    })
}

/// Runs `test` on a runtime of its own within `bound`; an `Err` or a panic fails the trial.
pub fn run<F>(bound: Duration, test: F) -> Result<(), Failed>
where
    F: Future<Output = Result<(), String>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failed::from(format!("no runtime: {e}")))?;
    runtime
        .block_on(async { tokio::time::timeout(bound, test).await })
        .map_err(|_| Failed::from(format!("exceeded its {} s bound", bound.as_secs())))?
        .map_err(Failed::from)
}

/// `node`, when it runs: the command that runs a script with the WebSocket global.
pub fn node() -> Result<String, String> {
    let found = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    found
        .then(|| "node --experimental-websocket".to_owned())
        .ok_or_else(|| "`node` is not on PATH".to_owned())
}
