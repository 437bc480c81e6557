//! The example adapters stay small, and the READMEs quote their real sizes. (The helpers' own
//! suites run in the `catalogue` binary as `helpers::*` trials, which need Node, Python or a
//! JDK.)

use crate::browser::repo;

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
