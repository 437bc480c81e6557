//! `messaging-mock replay`: its argument, and the scenario a recording describes, printed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use mock_server::outln;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A `<session_id>.jsonl` recording.
    file: PathBuf,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    replay(&args.file)
}

fn replay(file: &Path) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let shown = file.display().to_string();
    let raw = mock_server::scenario::recording_scenario(&shown, &text)?;
    mock_server::scenario::validate::validate("replay", &shown, &raw)?;
    outln!("{}", serde_json::to_string_pretty(&raw)?);
    Ok(ExitCode::SUCCESS)
}
