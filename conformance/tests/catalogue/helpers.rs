//! The driver helpers' own test suites (`drivers/js`: node's test runner; `drivers/python`:
//! `python -m unittest`; `drivers/jvm`: plain `main`s, no JUnit offline), and the report read
//! in a browser: trials that need Node, Python, a JDK or Chromium, ignored with the reason
//! when the machine lacks one (failed under `CI=true`).

use std::process::Command;
use std::time::Duration;

use libtest_mimic::{Failed, Trial};

use crate::browser;
use crate::support::{needing, node, repo};

/// Runs `program args` in the repository, killed after `bound`; its combined output when it
/// succeeds.
fn suite(program: &str, args: &[&str], bound: Duration) -> Result<String, Failed> {
    let mut command = Command::new(program);
    command.args(args).current_dir(repo());
    let run = browser::run_bounded(&mut command, bound)
        .map_err(|e| format!("`{program}` cannot run: {e}"))?;
    let text = format!("{}{}", run.stdout, run.stderr);
    match run.status {
        None => return Err(format!("{program} {args:?} exceeded {bound:?}:\n{text}").into()),
        Some(status) if !status.success() => {
            return Err(format!("{program} {args:?} failed:\n{text}").into());
        }
        Some(_) => {}
    }
    Ok(text)
}

/// Fails with `output` unless `holds`.
fn expect(holds: bool, what: &str, output: &str) -> Result<(), Failed> {
    if holds {
        Ok(())
    } else {
        Err(format!("{what}:\n{output}").into())
    }
}

fn runs(program: &str, arg: &str) -> Result<(), String> {
    Command::new(program)
        .arg(arg)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| ())
        .ok_or_else(|| format!("`{program}` is not on PATH"))
}

fn python3() -> Result<(), String> {
    runs("python3", "--version")
}

fn javac() -> Result<(), String> {
    runs("javac", "-version").and_then(|()| runs("java", "-version"))
}

pub fn trials() -> Vec<Trial> {
    vec![
        needing("helpers::javascript".into(), node, |_| {
            let output = suite(
                "node",
                &["--test", "drivers/js/test/"],
                Duration::from_secs(120),
            )?;
            // node's TAP summary: some tests ran and none failed.
            expect(output.contains("# fail 0"), "a test failed", &output)?;
            expect(!output.contains("# pass 0\n"), "no test ran", &output)
        }),
        needing("helpers::python".into(), python3, |()| {
            let output = suite(
                "python3",
                &["-m", "unittest", "discover", "-s", "drivers/python/tests"],
                Duration::from_secs(120),
            )?;
            expect(output.contains("\nOK"), "no OK", &output)?;
            expect(!output.contains("Ran 0 tests"), "no test ran", &output)
        }),
        needing("helpers::jvm".into(), javac, |()| jvm_suites()),
        needing("report::in_a_browser".into(), browser::browser, |()| {
            report_in_a_browser()
        }),
    ]
}

/// The JVM helper's suites, compiled with `javac` into a scratch directory and run against the
/// real mock binary.
fn jvm_suites() -> Result<(), Failed> {
    let out = repo().join(format!("target/jvm-helper-test-{}", std::process::id()));
    let mut sources: Vec<String> = Vec::new();
    for dir in ["drivers/jvm", "drivers/jvm/test"] {
        for entry in std::fs::read_dir(repo().join(dir)).map_err(|e| e.to_string())? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.extension().is_some_and(|e| e == "java") {
                sources.push(path.display().to_string());
            }
        }
    }
    let mut args = vec!["-d".to_owned(), out.display().to_string()];
    args.extend(sources);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    suite("javac", &args, Duration::from_secs(120))?;
    let classes = out.display().to_string();
    for main in ["MessagingDriverTest", "MockServerTest"] {
        let output = suite("java", &["-cp", &classes, main], Duration::from_secs(120))?;
        expect(
            !output.contains("SKIPPED") || !browser::required(),
            &format!("{main} skipped under CI"),
            &output,
        )?;
        expect(output.contains(" passed"), main, &output)?;
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

/// report.html in a real browser: a run with a failing case (the `no-dedup` mutant on the
/// `delivery` case, which shows a duplicated reply) is opened in headless Chromium by
/// `tests/browser/report.mjs` and read like a user would.
fn report_in_a_browser() -> Result<(), Failed> {
    let dir = repo().join(format!("target/report-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let status = Command::new(env!("CARGO_BIN_EXE_messaging-conformance"))
        .args(["run", "--reference", "--mutant", "no-dedup", "--seed", "5"])
        .args(["--only", "delivery", "--only", "streaming", "--report"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("the kit runs: {e}"))?;
    if status.code() != Some(1) {
        return Err(format!("the mutant must fail the run: {status}").into());
    }
    let script = repo().join("conformance/tests/browser/report.mjs");
    let env = [
        ("REPORT", dir.join("report.html").display().to_string()),
        ("FAILING_CASE", "delivery".to_owned()),
        ("SCREENSHOTS", browser::screenshots().display().to_string()),
    ];
    let output = browser::run_browser_test(&script, &env, Duration::from_secs(60));
    expect(
        output.contains("ok - the failing case delivery comes first, expanded"),
        "the failing case is not first",
        &output,
    )?;
    expect(
        output.contains("ok - the diff marks what the app showed"),
        "no diff",
        &output,
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
