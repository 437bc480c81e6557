//! `loadgen`: measures the mock server against a minimal reference server on the same stack,
//! each sample in a fresh process, reference and mock interleaved. See BENCHMARKS.md.

mod client;
mod load;
mod modes;
mod proc;
mod progress;
mod reference;
mod report;
mod soak;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::modes::all::AllArgs;
use crate::modes::echo::EchoArgs;
use crate::modes::forwarder::ForwarderArgs;
use crate::modes::http::HttpArgs;
use crate::modes::idle::IdleArgs;
use crate::modes::proxy::ProxyArgs;
use crate::modes::reference_server::ReferenceServerArgs;
use crate::modes::soak::SoakArgs;
use crate::modes::startup::StartupArgs;
use crate::modes::turn::TurnArgs;
use crate::proc::Binaries;
use crate::progress::Progress;

/// Load generator for messaging-mock: drives real protocol traffic (access token → session →
/// WebSocket → replay → join → turns) on loopback and compares the mock with a minimal
/// tokio-tungstenite echo server measured in the same run.
///
/// Every sample starts a fresh server process; reference and mock alternate (R, M, R, M, …).
/// Results are per-metric medians and the median of per-pair ratios (mock / reference) with
/// their range. Progress goes to stderr, results to stdout.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct Common {
    /// Print the results as one JSON document instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Also write the JSON document to this file (the tables still go to stdout).
    #[arg(long, global = true, value_name = "FILE")]
    json_out: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// The mock server binary (default: `messaging-mock` next to this executable).
    #[arg(long, global = true, value_name = "PATH")]
    mock_bin: Option<PathBuf>,
    /// Exit with status 1 when a target of the benchmark issue is missed.
    #[arg(long, global = true)]
    check: bool,
    /// Client threads of the closed-loop modes, each with its own single-threaded runtime
    /// (default: one per core, never more than clients).
    #[arg(long, global = true, value_name = "N")]
    client_threads: Option<usize>,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Heartbeat → echo, closed loop, at each concurrency.
    Echo(EchoArgs),
    /// User message → echo, thinking, agent reply (mock only: the reference has no agent).
    Turn(TurnArgs),
    /// Opens N sessions, one exchange each, holds them and reads the server's RSS.
    Idle(IdleArgs),
    /// Spawn → first 200 on the token endpoint → first WebSocket echo.
    Startup(StartupArgs),
    /// Access-token requests/s (real JWT signing) against a static-JSON axum route.
    Http(HttpArgs),
    /// Every mode with the parameters and targets (the BENCHMARKS.md run).
    All(AllArgs),
    /// A few seconds of every mode at tiny sizes: checks the harness works, judges no speed.
    /// Exits 1 when a sample had an error or measured nothing.
    Smoke,
    /// Churns whole sessions against one mock for a while (open, join, echo, a turn, then end,
    /// drop and reconnect, or walk away) and reports the server's RSS over time and errors;
    /// with `--record DIR`, also that every frame the clients received is in the recording.
    /// Targets: second-half RSS growth under 5 %, 0 errors, 0 frames missing.
    Soak(SoakArgs),
    /// Heartbeat → echo through `messaging-mock proxy` against the mock direct, closed loop, at
    /// each concurrency: the proxy's overhead (targets: at most 1 ms added p99 at C=1, at
    /// least 0.5× the direct msg/s at C=100).
    Proxy(ProxyArgs),
    /// Runs the reference server (used by the harness; prints a readiness line).
    #[command(hide = true)]
    ReferenceServer(ReferenceServerArgs),
    /// Runs the byte-forwarding proxy (used by the harness; prints a readiness line).
    #[command(hide = true)]
    Forwarder(ForwarderArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadgen: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.mode {
        Mode::ReferenceServer(args) => return modes::reference_server::run(args).await,
        Mode::Forwarder(args) => return modes::forwarder::run(args).await,
        _ => {}
    }
    let fd_limit = proc::raise_fd_limit()?;
    let bins = Binaries::locate(cli.common.mock_bin.clone())?;
    let progress = Progress::new(!cli.common.quiet);
    let plan = match &cli.mode {
        Mode::Soak(args) => return modes::soak::run(args, &bins, &progress, &cli.common).await,
        Mode::Echo(args) => modes::echo::plan(args),
        Mode::Proxy(args) => modes::proxy::plan(args),
        Mode::Turn(args) => modes::turn::plan(args),
        Mode::Idle(args) => modes::idle::plan(args),
        Mode::Startup(args) => modes::startup::plan(args),
        Mode::Http(args) => modes::http::plan(args),
        Mode::All(args) => modes::all::plan(args),
        Mode::Smoke => modes::smoke::plan(),
        // Run above.
        Mode::ReferenceServer(_) | Mode::Forwarder(_) => vec![],
    };
    let results = modes::measure(plan, &bins, &progress, &cli.common, fd_limit).await?;
    if matches!(cli.mode, Mode::Smoke) {
        return Ok(modes::smoke::verdict(&results.comparisons));
    }
    Ok(modes::verdict(&results, cli.common.check))
}
