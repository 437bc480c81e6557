//! The independent Node 20 driver in `examples/drivers/node/` (written from the spec, not from
//! the reference client) passes the full profile under several seeds, warnings included.
//! Where `node` is missing the test says so and skips, except under CI, where it fails.

use std::time::Duration;

use conformance::cases::{Tier, catalogue};
use conformance::driver::ProcessLauncher;
use conformance::runner::select;

use crate::bounded_by;
use crate::kit::assert_strict_passes;

pub fn node_available() -> bool {
    let found = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !crate::required(),
            "CI=true but `node` is not on PATH (.ci/run installs it)"
        );
        eprintln!("SKIPPED: `node` is not on PATH");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_driver_passes_the_full_profile_under_two_seeds() {
    if !node_available() {
        return;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/drivers/node/driver.mjs");
    let launcher = ProcessLauncher {
        command: format!("node --experimental-websocket {}", script.display()),
        timeout: Duration::from_secs(10),
    };
    bounded_by(Duration::from_secs(90), async {
        let cases = catalogue().expect("cases");
        let full = select(&cases, Tier::Full, &[]);
        assert_strict_passes(&launcher, &[(31, &full), (32, &full)]).await;
    })
    .await;
}
