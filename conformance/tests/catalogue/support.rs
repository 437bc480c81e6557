//! What the trials share: a runtime and a time bound per trial, the permits of trials that
//! drive external processes, and prerequisites that make a trial ignored with its reason (or,
//! under `CI=true`, failed).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use conformance::cases::Case;
use conformance::driver::Launcher;
use conformance::params::Params;
use conformance::runner::{CaseResult, run_cases, run_passes, unexpected_findings};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use crate::browser::repo;
pub use crate::trials::{needing, node, run};

/// The outer bound of a trial that queues for a permit (its own bound starts with the permit).
pub const UNBOUNDED_WAIT: Duration = Duration::from_secs(3 * 3600);

/// Runs `test` once it holds a permit, within `bound` from then (waiting for the permit does not
/// count).
pub async fn with_permit<F>(bound: Duration, test: F) -> Result<(), String>
where
    F: Future<Output = Result<(), String>>,
{
    let _permit = external_permit().await;
    tokio::time::timeout(bound, test)
        .await
        .map_err(|_| format!("exceeded its {} s bound", bound.as_secs()))?
}

/// One permit per core for trials that drive external processes.
async fn external_permit() -> OwnedSemaphorePermit {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    let permits = PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Arc::new(Semaphore::new(cores))
    });
    Arc::clone(permits)
        .acquire_owned()
        .await
        .expect("the semaphore is never closed")
}

/// The virtualenv's Python with `websockets` (`.ci/run` makes `target/py-venv`).
pub fn python() -> Result<String, String> {
    let python = repo().join("target/py-venv/bin/python");
    let usable = std::process::Command::new(&python)
        .args(["-c", "import websockets.asyncio.client"])
        .output()
        .is_ok_and(|o| o.status.success());
    usable.then(|| python.display().to_string()).ok_or_else(|| {
        "target/py-venv with `websockets` is missing (python3 -m venv target/py-venv && target/py-venv/bin/pip install -r examples/drivers/python/requirements.txt)".to_owned()
    })
}

/// The Java example driver, compiled once with the JVM helper into `target/java-example`;
/// the command that runs it.
pub fn java() -> Result<String, String> {
    static BUILT: OnceLock<Result<String, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = repo().join(format!("target/java-example-{}", std::process::id()));
            compile_java(&repo().join("examples/drivers/java"), &out)
        })
        .clone()
}

/// Compiles the JVM helper with the `Client.java` and `Driver.java` in `example` into `out`;
/// the command that runs that driver.
pub fn compile_java(example: &Path, out: &Path) -> Result<String, String> {
    let compiled = std::process::Command::new("javac")
        .arg("-d")
        .arg(out)
        .arg(repo().join("drivers/jvm/MessagingDriver.java"))
        .args(["Client.java", "Driver.java"].map(|s| example.join(s)))
        .output()
        .map_err(|e| format!("`javac` cannot run: {e}"))?;
    if !compiled.status.success() {
        return Err(format!(
            "javac failed: {}",
            String::from_utf8_lossy(&compiled.stderr)
        ));
    }
    // The flags a short-lived JVM per case wants (examples/drivers/java/README.md):
    // the serial collector and the first JIT tier, so sixteen of them fit two cores.
    Ok(format!(
        "java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp {} Driver",
        out.display()
    ))
}

/// Runs `cases`, `jobs` at a time, with `seed` against `launcher`; `Err` lists every finding
/// that is not a pass or a reasoned skip, or says the strict run failed.
pub async fn strict_pass<L: Launcher>(
    cases: &[&Case],
    params: &Params,
    launcher: &L,
    jobs: usize,
) -> Result<Vec<CaseResult>, String> {
    let seed = params.seed();
    let over = if params.tls().is_some() {
        " over TLS"
    } else {
        ""
    };
    let results = run_cases(cases, params, launcher, jobs, |_, _, _| {}).await;
    let problems = unexpected_findings(&results);
    if !problems.is_empty() {
        return Err(format!("seed {seed}{over}:\n{}", problems.join("\n")));
    }
    if !run_passes(&results, true) {
        return Err(format!("seed {seed}{over}: the strict run does not pass"));
    }
    Ok(results)
}

/// The parameters of `seed`, every mock serving TLS when `tls` (`run --tls`).
pub fn params(seed: u64, tls: bool) -> Result<Params, String> {
    let params = Params::draw(seed);
    if tls {
        Ok(params.with_tls(conformance::tls::RunTls::generate()?))
    } else {
        Ok(params)
    }
}

/// The repository path of the scratch directory a trial may write.
pub fn scratch(name: &str) -> PathBuf {
    repo().join("target/catalogue").join(name)
}
