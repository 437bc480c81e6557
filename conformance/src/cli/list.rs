//! `messaging-conformance list`: the case catalogue and the obligation table (`--markdown`).

use std::process::ExitCode;

use clap::Args;
use mock_server::{out, outln};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the obligation table as Markdown (what each check looks for and cannot see).
    #[arg(long)]
    markdown: bool,
}

pub fn run(args: ListArgs) -> anyhow::Result<ExitCode> {
    list(args.markdown)
}

fn list(markdown: bool) -> anyhow::Result<ExitCode> {
    let cases = conformance::cases::catalogue()?;
    if markdown {
        out!("{}", conformance::obligations::markdown_table(&cases));
        return Ok(ExitCode::SUCCESS);
    }
    for case in &cases {
        let ids: Vec<&str> = case.checks().iter().map(|id| id.as_str()).collect();
        outln!("{:22} {:9} {}", case.id, case.tier.as_str(), ids.join(" "));
        outln!("{:22} {}", "", case.description);
    }
    outln!();
    for obligation in conformance::obligations::OBLIGATIONS {
        let covering: Vec<&str> = cases
            .iter()
            .filter(|c| c.checks().contains(&obligation.id))
            .map(|c| c.id.as_str())
            .collect();
        let covered = if !obligation.id.observable() {
            "skipped in every case: a mock cannot see it".to_owned()
        } else if covering.is_empty() {
            "not covered".to_owned()
        } else {
            covering.join(", ")
        };
        outln!(
            "{:7} {:8} {:60} {covered}",
            obligation.id.as_str(),
            obligation.level.as_str(),
            obligation.summary
        );
    }
    Ok(ExitCode::SUCCESS)
}
