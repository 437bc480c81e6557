//! `loadgen soak`: its flags, the plan they make for `crate::soak`, the report, the exit status.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::emit_json;
use crate::Common;
use crate::proc::Binaries;
use crate::progress::Progress;

#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Seconds to run.
    #[arg(long, default_value_t = 600.0)]
    duration: f64,
    /// Clients churning sessions at once.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Record sessions here (the mock's `--record`) and check every received frame; each
    /// recording is removed once checked.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Seconds between RSS readings.
    #[arg(long, default_value_t = 5.0)]
    interval: f64,
    /// The mock's session retention and idle timeout, in seconds: ended and abandoned
    /// sessions leave within the run, so memory can settle.
    /// (Sessions held = churn rate × this; it must stay under the mock's `max_sessions`,
    /// or creation is refused with 429 once idle sessions fill it.)
    #[arg(long, default_value_t = 10.0)]
    retention: f64,
}

pub async fn run(
    args: &SoakArgs,
    bins: &Binaries,
    progress: &Progress,
    common: &Common,
) -> anyhow::Result<ExitCode> {
    let SoakArgs {
        duration,
        concurrency,
        record,
        interval,
        retention,
    } = args;
    let plan = crate::soak::SoakPlan {
        duration: Duration::from_secs_f64(duration.max(1.0)),
        concurrency: (*concurrency).max(1),
        record: record.clone(),
        interval: Duration::from_secs_f64(interval.max(0.1)),
        retention_seconds: retention.max(0.1),
    };
    let report = crate::soak::run(bins, &plan, progress).await?;
    if !emit_json(&report, common)? {
        println!("{}", report.render());
    }
    Ok(if common.check && !report.met() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
