//! `messaging-mock drift`: its flags, and the report of a recording replayed against a fresh mock.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use mock_server::Config;
use mock_server::outln;

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// A `<session_id>.jsonl` recording.
    recording: PathBuf,
    /// The mock's scenario: a built-in name or a file (default `playground`).
    #[arg(long, default_value = "playground")]
    scenario: String,
    /// A JSON configuration file for the mock.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Divide the scenario's delays by this (the comparison ignores timing).
    #[arg(long, default_value_t = 20.0)]
    time_scale: f64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DriftArgs) -> anyhow::Result<ExitCode> {
    drift(
        &args.recording,
        args.scenario,
        args.config.as_deref(),
        args.time_scale,
        args.json,
    )
}

fn drift(
    recording: &Path,
    scenario: String,
    config: Option<&Path>,
    time_scale: f64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(recording)
        .with_context(|| format!("cannot read {}", recording.display()))?;
    let entries = match mock_server::journal::read_recording(&text) {
        Ok(entries) => entries,
        Err(error) => {
            eprintln!("messaging-mock drift: {}: {error}", recording.display());
            return Ok(ExitCode::from(2));
        }
    };
    let mut config = match config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.scenario = scenario;
    config.time_scale = time_scale;
    config.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = match runtime.block_on(mock_server::drift::drift(&entries, config)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("messaging-mock drift: {error}");
            return Ok(ExitCode::from(2));
        }
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for d in &report.differences {
            let fault = if d.after_fault {
                " [after an injected fault]"
            } else {
                ""
            };
            outln!(
                "connection {}, after {}: {}{fault}",
                d.conn,
                d.after,
                d.what
            );
        }
        if !report.faults.is_empty() {
            outln!(
                "note: {} fault(s) were injected into the recorded session and are not replayed ({}); differences marked after one may be the fault's, not the service's",
                report.faults.len(),
                report.faults.join("; ")
            );
        }
        outln!(
            "{} difference(s) over {} connection(s), {} client frame(s), {} recorded event(s)",
            report.differences.len(),
            report.connections,
            report.client_frames,
            report.recorded_events
        );
    }
    Ok(if report.differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
