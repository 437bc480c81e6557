//! The driver helpers' own test suites (`drivers/js`: node's test runner; `drivers/python`:
//! `python -m unittest`), run from `cargo test` so CI runs them with everything else.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::browser::repo;

/// Runs `program args` in the repository, killed after `bound`; `None` when the program is
/// missing outside CI. Returns its combined output on success, panics with it on failure.
fn suite(program: &str, args: &[&str], bound: Duration) -> Option<String> {
    let mut child = match Command::new(program)
        .args(args)
        .current_dir(repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            assert!(
                !crate::required(),
                "CI=true but `{program}` cannot run: {error}"
            );
            eprintln!("SKIPPED: `{program}` is not available ({error})");
            return None;
        }
    };
    let started = Instant::now();
    while child.try_wait().expect("waiting").is_none() {
        if started.elapsed() > bound {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{text}"
    );
    Some(text)
}

#[test]
fn the_javascript_helper_passes_its_own_tests() {
    let Some(output) = suite(
        "node",
        &["--test", "drivers/js/test/"],
        Duration::from_secs(120),
    ) else {
        return;
    };
    // node's TAP summary: some tests ran and none failed.
    assert!(output.contains("# fail 0"), "{output}");
    assert!(!output.contains("# pass 0\n"), "{output}");
}

#[test]
fn the_python_helper_passes_its_own_tests() {
    let Some(output) = suite(
        "python3",
        &["-m", "unittest", "discover", "-s", "drivers/python/tests"],
        Duration::from_secs(120),
    ) else {
        return;
    };
    assert!(output.contains("\nOK"), "{output}");
    assert!(!output.contains("Ran 0 tests"), "{output}");
}

/// The JVM helper's suites (`drivers/jvm/test/`: plain `main`s, no JUnit offline), compiled
/// with `javac` into a scratch directory and run against the real mock binary.
#[test]
fn the_jvm_helper_passes_its_own_tests() {
    let out = repo().join(format!("target/jvm-helper-test-{}", std::process::id()));
    let mut sources: Vec<String> = Vec::new();
    for dir in ["drivers/jvm", "drivers/jvm/test"] {
        for entry in std::fs::read_dir(repo().join(dir)).expect("drivers/jvm") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "java") {
                sources.push(path.display().to_string());
            }
        }
    }
    let mut args = vec!["-d".to_owned(), out.display().to_string()];
    args.extend(sources);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if suite("javac", &args, Duration::from_secs(120)).is_none() {
        return;
    }
    let classes = out.display().to_string();
    for main in ["MessagingDriverTest", "MockServerTest"] {
        let Some(output) = suite("java", &["-cp", &classes, main], Duration::from_secs(120)) else {
            return;
        };
        assert!(
            !output.contains("SKIPPED") || !crate::required(),
            "{main} skipped under CI: {output}"
        );
        assert!(output.contains(" passed"), "{main}: {output}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// Non-blank lines that are not comments (`//` or `#` first).
fn adapter_lines(path: &str) -> usize {
    std::fs::read_to_string(repo().join(path))
        .expect("adapter")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('#'))
        .count()
}

/// The adapters stay under 80 lines, and the counts the READMEs quote are the real ones.
#[test]
fn the_example_adapters_are_small_and_their_readmes_say_how_small() {
    for (adapter, readmes) in [
        (
            "examples/drivers/node/driver.mjs",
            ["drivers/js/README.md", "README.md"],
        ),
        (
            "examples/drivers/python/driver.py",
            ["drivers/python/README.md", "README.md"],
        ),
        (
            "examples/drivers/java/Driver.java",
            ["examples/drivers/java/README.md", "README.md"],
        ),
    ] {
        let count = adapter_lines(adapter);
        assert!(count < 80, "{adapter}: {count} lines");
        for readme in readmes {
            let text = std::fs::read_to_string(repo().join(readme)).expect("readme");
            let quoted = [format!("**{count}**"), format!("| {count} |")];
            assert!(
                quoted.iter().any(|q| text.contains(q.as_str())),
                "{readme} does not quote {adapter}'s {count} lines"
            );
        }
    }
}
