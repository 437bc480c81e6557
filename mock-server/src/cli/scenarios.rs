//! `messaging-mock scenarios` and `check-scenario`: the built-in list, scenario files validated.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mock_server::outln;

#[derive(Debug, Args)]
pub struct CheckScenarioArgs {
    /// Scenario files to check.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn check(args: CheckScenarioArgs) -> anyhow::Result<ExitCode> {
    check_scenarios(&args.files)
}

pub fn list_scenarios() -> anyhow::Result<ExitCode> {
    let catalogue = mock_server::scenario::Catalogue::embedded()?;
    for (name, text) in mock_server::scenario::embedded() {
        let description = catalogue
            .get(name)
            .map(|s| s.description.clone())
            .unwrap_or_default();
        let _ = text;
        outln!("{name:40} {description}");
    }
    Ok(ExitCode::SUCCESS)
}

fn check_scenarios(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for file in files {
        match mock_server::scenario::load_file(file) {
            Ok(script) => outln!("ok: {} ({} rules)", file.display(), script.rules.len()),
            Err(error) => {
                failed = true;
                outln!("error: {error}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
