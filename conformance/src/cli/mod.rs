//! The binary's subcommands, a module each (not in the library); the shared progress line.

pub mod coverage;
pub mod driver;
pub mod list;
pub mod run;
pub mod schemas;

use conformance::runner::{CaseResult, Verdict};

fn mark(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass(_) => "pass".to_owned(),
        Verdict::Fail(why) => format!("FAIL ({why})"),
        Verdict::Warn(why) => format!("warn ({why})"),
        Verdict::Skipped(why) => format!("skipped ({why})"),
    }
}

pub fn progress_line(result: &CaseResult, done: usize, total: usize) {
    let summary = match &result.driver_error {
        Some(error) => format!("DRIVER ERROR: {error}"),
        None => result
            .findings
            .iter()
            .map(|f| format!("{} {}", f.obligation, mark(&f.verdict)))
            .collect::<Vec<_>>()
            .join("; "),
    };
    eprintln!(
        "[{done}/{total}] {:22} {:>6} ms  {summary}",
        result.case, result.duration_ms
    );
}
