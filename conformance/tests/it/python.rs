//! The Python example driver (`examples/drivers/python/`, on the helper in `drivers/python/`)
//! passes the whole catalogue: the full profile under two seeds and the thorough cases under a
//! third. It runs in the virtualenv `.ci/run` makes (`target/py-venv`, with `websockets`);
//! without it the test says so and skips, except under CI, where it fails.

use std::path::PathBuf;
use std::time::Duration;

use conformance::cases::{Tier, catalogue};
use conformance::driver::ProcessLauncher;
use conformance::runner::select;

use crate::bounded_by;
use crate::browser::repo;
use crate::kit::assert_strict_passes;

/// The venv's interpreter when it exists and has `websockets`.
fn venv_python() -> Option<PathBuf> {
    let python = repo().join("target/py-venv/bin/python");
    let usable = std::process::Command::new(&python)
        .args(["-c", "import websockets.asyncio.client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        assert!(
            !crate::required(),
            "CI=true but {} with `websockets` is missing (.ci/run creates it: python3 -m venv target/py-venv && target/py-venv/bin/pip install -r examples/drivers/python/requirements.txt)",
            python.display()
        );
        eprintln!(
            "SKIPPED: no target/py-venv with websockets (see examples/drivers/python/README.md)"
        );
        return None;
    }
    Some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_driver_passes_the_whole_catalogue() {
    let Some(python) = venv_python() else {
        return;
    };
    let script = repo().join("examples/drivers/python/driver.py");
    let launcher = ProcessLauncher {
        command: format!("{} {}", python.display(), script.display()),
        timeout: Duration::from_secs(10),
    };
    bounded_by(Duration::from_secs(170), async {
        let cases = catalogue().expect("cases");
        let full = select(&cases, Tier::Full, &[]);
        let thorough_only: Vec<_> = select(&cases, Tier::Thorough, &[])
            .into_iter()
            .filter(|c| c.tier == Tier::Thorough)
            .collect();
        assert!(!thorough_only.is_empty());
        let runs: [(u64, &[_]); 3] = [(51, &full), (52, &full), (53, &thorough_only)];
        assert_strict_passes(&launcher, &runs).await;
    })
    .await;
}
