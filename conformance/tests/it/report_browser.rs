//! report.html in a real browser: a run with a failing case (the `no-dedup` mutant on the
//! `delivery` case, which shows a duplicated reply) is opened in headless Chromium by
//! `tests/browser/report.mjs` and read like a user would.

use std::process::Command;
use std::time::Duration;

use crate::browser;

#[test]
fn the_report_shows_the_failing_case_first_with_its_diff_in_a_browser() {
    let dir = browser::repo().join(format!("target/report-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let status = Command::new(env!("CARGO_BIN_EXE_messaging-conformance"))
        .args(["run", "--reference", "--mutant", "no-dedup", "--seed", "5"])
        .args(["--only", "delivery", "--only", "streaming", "--report"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("the kit runs");
    assert_eq!(status.code(), Some(1), "the mutant fails the run");
    let script = browser::repo().join("conformance/tests/browser/report.mjs");
    let env = [
        ("REPORT", dir.join("report.html").display().to_string()),
        ("FAILING_CASE", "delivery".to_owned()),
        ("SCREENSHOTS", browser::screenshots().display().to_string()),
    ];
    let output = browser::run_browser_test(&script, &env, Duration::from_secs(60));
    if let Some(output) = output {
        assert!(
            output.contains("ok - the failing case delivery comes first, expanded"),
            "{output}"
        );
        assert!(
            output.contains("ok - the diff marks what the app showed"),
            "{output}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
