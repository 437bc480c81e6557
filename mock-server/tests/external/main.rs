//! The mock's tests that need more than the Rust toolchain: Node (the docs' minimal flow),
//! Chromium and playwright-core (the console in a browser), the npm validators (the API
//! documents), buildah and the static binaries (the container image). One libtest-mimic trial
//! each, so a machine without a prerequisite reports the trial as ignored with the reason
//! instead of passing it; under `CI=true` a missing prerequisite fails it (`.ci/run` installs
//! them all).

use std::time::Duration;

use libtest_mimic::Arguments;

#[allow(dead_code)] // the `it` binary's helpers, of which these trials use a few
#[path = "../it/support.rs"]
mod support;

#[path = "../../../tools/browser_test.rs"]
mod browser;
#[path = "../../../tools/trials.rs"]
mod trials;

mod apidocs;
mod console;
#[cfg(target_os = "linux")]
mod container;
mod node_example;

use trials::{needing, run};

/// A trial around an async test body that asserts (a panic fails it).
fn asserting<F: std::future::Future<Output = ()>>(
    bound: Duration,
    test: F,
) -> Result<(), libtest_mimic::Failed> {
    run(bound, async {
        test.await;
        Ok(())
    })
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = vec![
        needing("console::in_a_browser".into(), browser::browser, |()| {
            asserting(
                Duration::from_secs(180),
                console::the_console_lets_a_user_play_the_live_agent_and_inject_a_drop(),
            )
        }),
        needing(
            "console::proxy_in_a_browser".into(),
            browser::browser,
            |()| {
                asserting(
                    Duration::from_secs(180),
                    console::the_proxy_console_shows_a_session_and_injects_a_drop(),
                )
            },
        ),
        needing(
            "apidocs::ecosystem_validators".into(),
            apidocs::prerequisites,
            |()| {
                apidocs::the_ecosystem_validators_accept_the_committed_documents_and_reject_broken_ones();
                Ok(())
            },
        ),
        needing("node_example::minimal_flow".into(), trials::node, |_| {
            asserting(
                Duration::from_secs(60),
                node_example::the_minimal_javascript_flow_gets_the_greeting(),
            )
        }),
    ];
    #[cfg(target_os = "linux")]
    trials.push(needing(
        "container::image".into(),
        container::prerequisites,
        |()| {
            container::the_image_serves_a_whole_conversation_and_runs_the_kit();
            Ok(())
        },
    ));
    libtest_mimic::run(&args, trials).exit();
}
