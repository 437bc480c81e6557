//! The modes of `loadgen`, a module each; what they share: Timing, measuring, results, verdict.

pub mod all;
pub mod echo;
pub mod forwarder;
pub mod http;
pub mod idle;
pub mod proxy;
pub mod reference_server;
pub mod smoke;
pub mod soak;
pub mod startup;
pub mod step;
pub mod turn;

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::Common;
use crate::proc::Binaries;
use crate::progress::Progress;
use crate::report::Comparison;
use step::Step;

#[derive(Debug, Args, Clone)]
pub struct Timing {
    /// Reference/mock pairs per configuration (samples, for mock-only modes).
    #[arg(long, default_value_t = 3)]
    pub pairs: usize,
    /// Measured seconds per sample.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Unmeasured seconds before the measured window.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
}

#[derive(Debug, Serialize)]
struct Machine {
    cpu: String,
    cores: usize,
    memory_gib: f64,
    kernel: String,
    fd_limit: u64,
}

impl Machine {
    fn read(fd_limit: u64) -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let memory_kib: f64 = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            fd_limit,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Results {
    command: String,
    machine: Machine,
    pub comparisons: Vec<Comparison>,
}

/// Runs every step of the plan, printing each comparison's table as it finishes (unless
/// `--json`), then the machine line or the JSON document.
pub async fn measure(
    plan: Vec<Step>,
    bins: &Binaries,
    progress: &Progress,
    common: &Common,
    fd_limit: u64,
) -> anyhow::Result<Results> {
    let needed = plan.iter().map(Step::sockets).max().unwrap_or(0) as u64 + 64;
    if needed > fd_limit {
        anyhow::bail!("this run needs about {needed} open files but the limit is {fd_limit}");
    }
    let mut comparisons = Vec::new();
    for step in plan {
        let mut comparison = step.run(bins, progress, common.client_threads).await?;
        comparison.finish();
        progress.finish(&format!("{}: done", comparison.name));
        if !common.json {
            println!("{}", comparison.render());
        }
        comparisons.push(comparison);
    }
    let results = Results {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: Machine::read(fd_limit),
        comparisons,
    };
    if !emit_json(&results, common)? {
        let m = &results.machine;
        println!(
            "machine: {} ({} cores, {} GiB, Linux {}, fd limit {})",
            m.cpu, m.cores, m.memory_gib, m.kernel, m.fd_limit
        );
    }
    Ok(results)
}

/// The exit status: 1 with `--check` when a target was missed.
pub fn verdict(results: &Results, check: bool) -> ExitCode {
    let missed = results
        .comparisons
        .iter()
        .flat_map(|c| &c.verdicts)
        .filter(|v| !v.met)
        .count();
    if check && missed > 0 {
        eprintln!("loadgen: {missed} target(s) missed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Writes the results to `--json-out` when given and prints them with `--json`; `true` when
/// they were printed (the tables are then left out).
pub fn emit_json(results: &impl Serialize, common: &Common) -> anyhow::Result<bool> {
    let document = serde_json::to_string_pretty(results).context("encoding the results")?;
    if let Some(path) = &common.json_out {
        std::fs::write(path, format!("{document}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if common.json {
        println!("{document}");
    }
    Ok(common.json)
}
