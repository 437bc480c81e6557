//! The kit judged on its own catalogue, one named trial each, so `--skip`, name filters and
//! `--list` work as with any test (libtest-mimic):
//!
//! - `reference::<case>`: the reference client passes the case strictly under two seeds, and
//!   its final view matches its regression pin;
//! - `coverage::full`: the full profile exercises every cell of the coverage matrix an
//!   obligation touches, and a profile without one case does not (the control);
//!   `coverage::generative`: so do the generated sessions of run seeds 1-3 on their own;
//! - `mutants::<name>`: each built-in mutant fails its own obligations and nothing else;
//! - `generative::reference::<seed>`, `generative::mutants::<name>`: generated sessions pass
//!   the reference client, and find each mutant on its own obligation;
//! - `drivers::<language>::<profile>`: the example drivers (Node, Python, Java) pass;
//! - `foreign::<language>::<variant>`: each committed single-bug variant of an example client
//!   is flagged on the obligation it breaks;
//! - `helpers::<language>`: the driver helpers' own test suites; `report::in_a_browser`: the
//!   report read in headless Chromium.
//!
//! A trial that needs what the machine lacks (Node, Python with `websockets`, a JDK,
//! Chromium) is ignored with the reason, or fails under `CI=true` (`tools/trials.rs`).
//!
//! Trials mostly wait (backoff, heartbeats, resends), so many run at once (16 unless
//! `--test-threads` says otherwise); trials that drive external processes also take one of
//! as many permits as the machine has cores, so real-time checks never run with more
//! processes than cores to run them.

#[path = "../../../tools/browser_test.rs"]
#[allow(
    dead_code,
    reason = "shared with the other test binaries; this one uses part of it"
)]
mod browser;
mod drivers;
mod foreign;
mod generated;
mod helpers;
mod mutants;
mod reference;
mod support;
#[path = "../../../tools/trials.rs"]
mod trials;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = libtest_mimic::Arguments::from_args();
    args.test_threads.get_or_insert(16);
    let mut trials = Vec::new();
    trials.extend(reference::trials());
    trials.extend(mutants::trials());
    trials.extend(generated::trials());
    trials.extend(drivers::trials());
    trials.extend(foreign::trials());
    trials.extend(helpers::trials());
    libtest_mimic::run(&args, trials).exit_code()
}
