//! `loadgen`: measures the mock server against a minimal reference server on the same stack,
//! each sample in a fresh process, reference and mock interleaved. See BENCHMARKS.md.

mod client;
mod load;
mod proc;
mod progress;
mod reference;
mod report;
mod soak;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::client::Warmup;
use crate::load::{Loop, Window};
use crate::proc::{Binaries, Server};
use crate::progress::Progress;
use crate::report::{Comparison, Goal};

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

#[derive(Debug, Args, Clone)]
struct Timing {
    /// Reference/mock pairs per configuration (samples, for mock-only modes).
    #[arg(long, default_value_t = 3)]
    pairs: usize,
    /// Measured seconds per sample.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unmeasured seconds before the measured window.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Heartbeat → echo, closed loop, at each concurrency.
    Echo {
        #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
        concurrency: Vec<usize>,
        /// Over TLS: the mock with `--tls` against the reference serving `wss://` too.
        #[arg(long)]
        tls: bool,
        #[command(flatten)]
        timing: Timing,
    },
    /// User message → echo, thinking, agent reply (mock only: the reference has no agent).
    Turn {
        #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
        concurrency: Vec<usize>,
        #[command(flatten)]
        timing: Timing,
    },
    /// Opens N sessions, one exchange each, holds them and reads the server's RSS.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        sessions: usize,
        /// `heartbeat`: replay and one heartbeat (an idle session); `turn`: join, greeting
        /// and one user turn (a full-protocol session).
        #[arg(long, value_enum, default_value = "heartbeat")]
        exchange: Exchange,
        #[arg(long, default_value_t = 3)]
        pairs: usize,
    },
    /// Spawn → first 200 on the token endpoint → first WebSocket echo.
    Startup {
        #[arg(long, default_value_t = 5)]
        pairs: usize,
    },
    /// Access-token requests/s (real JWT signing) against a static-JSON axum route.
    Http {
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[command(flatten)]
        timing: Timing,
    },
    /// Every mode with the parameters and targets (the BENCHMARKS.md run).
    All {
        #[arg(long, default_value_t = 3)]
        pairs: usize,
        /// Measured seconds per closed-loop sample.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
    },
    /// A few seconds of every mode at tiny sizes: checks the harness works, judges no speed.
    /// Exits 1 when a sample had an error or measured nothing.
    Smoke,
    /// Churns whole sessions against one mock for a while (open, join, echo, a turn, then end,
    /// drop and reconnect, or walk away) and reports the server's RSS over time and errors;
    /// with `--record DIR`, also that every frame the clients received is in the recording.
    /// Targets: second-half RSS growth under 5 %, 0 errors, 0 frames missing.
    Soak {
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
    },
    /// Heartbeat → echo through `messaging-mock proxy` against the mock direct, closed loop, at
    /// each concurrency: the proxy's overhead (targets: at most 1 ms added p99 at C=1, at
    /// least 0.5× the direct msg/s at C=100).
    Proxy {
        #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
        concurrency: Vec<usize>,
        #[command(flatten)]
        timing: Timing,
    },
    /// Runs the reference server (used by the harness; prints a readiness line).
    #[command(hide = true)]
    ReferenceServer {
        /// Serve `wss://` with a generated certificate (needs `--tls-ca-out`).
        #[arg(long, requires = "tls_ca_out")]
        tls: bool,
        /// Where the CA of `--tls` is written.
        #[arg(long, value_name = "FILE")]
        tls_ca_out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Exchange {
    Heartbeat,
    Turn,
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
struct Results {
    command: String,
    machine: Machine,
    comparisons: Vec<Comparison>,
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
    if let Mode::ReferenceServer { tls, tls_ca_out } = cli.mode {
        reference::run(tls_ca_out.filter(|_| tls)).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let fd_limit = proc::raise_fd_limit()?;
    let bins = Binaries::locate(cli.common.mock_bin.clone())?;
    let progress = Progress::new(!cli.common.quiet);
    if let Mode::Soak {
        duration,
        concurrency,
        record,
        interval,
        retention,
    } = &cli.mode
    {
        let plan = soak::SoakPlan {
            duration: Duration::from_secs_f64(duration.max(1.0)),
            concurrency: (*concurrency).max(1),
            record: record.clone(),
            interval: Duration::from_secs_f64(interval.max(0.1)),
            retention_seconds: retention.max(0.1),
        };
        let report = soak::run(&bins, &plan, &progress).await?;
        if !emit_json(&report, &cli.common)? {
            println!("{}", report.render());
        }
        return Ok(if cli.common.check && !report.met() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    let plan = plan(&cli.mode);
    let needed = plan.iter().map(Step::sockets).max().unwrap_or(0) as u64 + 64;
    if needed > fd_limit {
        anyhow::bail!("this run needs about {needed} open files but the limit is {fd_limit}");
    }
    let mut comparisons = Vec::new();
    for step in plan {
        let mut comparison = step
            .run(&bins, &progress, cli.common.client_threads)
            .await?;
        comparison.finish();
        progress.finish(&format!("{}: done", comparison.name));
        if !cli.common.json {
            println!("{}", comparison.render());
        }
        comparisons.push(comparison);
    }
    let results = Results {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: Machine::read(fd_limit),
        comparisons,
    };
    if !emit_json(&results, &cli.common)? {
        let m = &results.machine;
        println!(
            "machine: {} ({} cores, {} GiB, Linux {}, fd limit {})",
            m.cpu, m.cores, m.memory_gib, m.kernel, m.fd_limit
        );
    }
    let smoke = matches!(cli.mode, Mode::Smoke);
    if smoke {
        let broken = smoke_failures(&results.comparisons);
        for problem in &broken {
            eprintln!("loadgen smoke: {problem}");
        }
        return Ok(if broken.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let missed = results
        .comparisons
        .iter()
        .flat_map(|c| &c.verdicts)
        .filter(|v| !v.met)
        .count();
    if cli.common.check && missed > 0 {
        eprintln!("loadgen: {missed} target(s) missed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the results to `--json-out` when given and prints them with `--json`; `true` when
/// they were printed (the tables are then left out).
fn emit_json(results: &impl Serialize, common: &Common) -> anyhow::Result<bool> {
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

/// The smoke run's checks: every sample ran without error and measured something.
fn smoke_failures(comparisons: &[Comparison]) -> Vec<String> {
    let mut problems = Vec::new();
    for comparison in comparisons {
        if comparison.samples.is_empty() {
            problems.push(format!("{}: no samples", comparison.name));
        }
        for sample in &comparison.samples {
            let who = format!("{} ({})", comparison.name, sample.server.label());
            if sample.errors > 0 {
                problems.push(format!(
                    "{who}: {} errors, first: {}",
                    sample.errors,
                    sample.first_error.as_deref().unwrap_or("?")
                ));
            }
            let measured = sample
                .metrics
                .iter()
                .any(|(name, v)| name.ends_with("_per_s") && *v > 0.0)
                || sample
                    .metrics
                    .get("first_echo_ms")
                    .is_some_and(|v| *v > 0.0);
            if !measured {
                problems.push(format!("{who}: measured nothing ({:?})", sample.metrics));
            }
        }
    }
    problems
}

/// One configuration to measure.
#[derive(Debug, Clone)]
enum Step {
    Loop {
        kind: Loop,
        concurrency: usize,
        /// Both servers serve TLS (`wss://`, `https://`).
        tls: bool,
        /// The servers compared (baseline, subject).
        servers: (Server, Server),
        pairs: usize,
        window: Window,
        goals: Vec<Goal>,
    },
    Idle {
        sessions: usize,
        warmup: Warmup,
        pairs: usize,
        goals: Vec<Goal>,
    },
    Startup {
        pairs: usize,
        goals: Vec<Goal>,
    },
}

fn window(duration: f64, warmup: f64) -> Window {
    Window {
        warmup: Duration::from_secs_f64(warmup.max(0.0)),
        duration: Duration::from_secs_f64(duration.max(0.1)),
    }
}

/// The targets for an echo run at `concurrency` (none for other sizes).
fn echo_goals(concurrency: usize) -> Vec<Goal> {
    let rate = |value| Goal::RatioAtLeast {
        metric: "msgs_per_s",
        value,
    };
    match concurrency {
        1 | 10 => vec![
            rate(0.75),
            Goal::RatioAtMost {
                metric: "p99_us",
                value: 1.5,
            },
        ],
        100 => vec![
            rate(0.75),
            Goal::RatioAtMost {
                metric: "cpu_us_per_msg",
                value: 1.5,
            },
        ],
        1000 => vec![
            rate(0.6),
            Goal::NoErrors,
            // With the journal on at its default budget.
            Goal::RatioAtMost {
                metric: "rss_mib",
                value: 4.0,
            },
        ],
        _ => vec![],
    }
}

/// The targets of an echo run over TLS (issue: at least 0.75× the TLS reference at C=1 and
/// C=100).
fn tls_echo_goals(concurrency: usize) -> Vec<Goal> {
    match concurrency {
        1 | 100 => vec![Goal::RatioAtLeast {
            metric: "msgs_per_s",
            value: 0.75,
        }],
        _ => vec![],
    }
}

fn idle_goals(sessions: usize, warmup: Warmup) -> Vec<Goal> {
    match (sessions, warmup) {
        (10_000, Warmup::Heartbeat) => vec![Goal::MockAtMost {
            metric: "rss_per_session_kib",
            value: 16.0,
        }],
        (10_000, _) => vec![
            Goal::MockAtMost {
                metric: "rss_total_mib",
                value: 200.0,
            },
            Goal::NoErrors,
        ],
        _ => vec![],
    }
}

fn startup_goals() -> Vec<Goal> {
    vec![
        Goal::MockAtMost {
            metric: "first_200_ms",
            value: 50.0,
        },
        Goal::MockAtMost {
            metric: "first_echo_ms",
            value: 50.0,
        },
        Goal::MockAtMost {
            metric: "second_vs_steady",
            value: 2.0,
        },
    ]
}

fn http_goals() -> Vec<Goal> {
    vec![
        Goal::RatioAtLeast {
            metric: "reqs_per_s",
            value: 0.4,
        },
        Goal::NoErrors,
    ]
}

fn plan(mode: &Mode) -> Vec<Step> {
    let loops = |kind,
                 concurrency: &[usize],
                 t: &Timing,
                 goals: &dyn Fn(usize) -> Vec<Goal>|
     -> Vec<Step> {
        concurrency
            .iter()
            .map(|&c| Step::Loop {
                kind,
                concurrency: c,
                tls: false,
                servers: (Server::Reference, Server::Mock),
                pairs: t.pairs,
                window: window(t.duration, t.warmup),
                goals: goals(c),
            })
            .collect()
    };
    match mode {
        Mode::Echo {
            concurrency,
            tls: false,
            timing,
        } => loops(Loop::Echo, concurrency, timing, &echo_goals),
        Mode::Echo {
            concurrency,
            tls: true,
            timing,
        } => over_tls(loops(Loop::Echo, concurrency, timing, &tls_echo_goals)),
        Mode::Proxy {
            concurrency,
            timing,
        } => proxied(loops(Loop::Echo, concurrency, timing, &proxy_goals)),
        Mode::Turn {
            concurrency,
            timing,
        } => loops(Loop::Turn, concurrency, timing, &|_| vec![Goal::NoErrors]),
        Mode::Idle {
            sessions,
            exchange,
            pairs,
        } => {
            let warmup = match exchange {
                Exchange::Heartbeat => Warmup::Heartbeat,
                Exchange::Turn => Warmup::Turn,
            };
            vec![Step::Idle {
                sessions: *sessions,
                warmup,
                pairs: *pairs,
                goals: idle_goals(*sessions, warmup),
            }]
        }
        Mode::Startup { pairs } => vec![Step::Startup {
            pairs: *pairs,
            goals: startup_goals(),
        }],
        Mode::Http {
            concurrency,
            timing,
        } => vec![Step::Loop {
            kind: Loop::Http,
            concurrency: *concurrency,
            tls: false,
            servers: (Server::Reference, Server::Mock),
            pairs: timing.pairs,
            window: window(timing.duration, timing.warmup),
            goals: http_goals(),
        }],
        Mode::All { pairs, duration } => {
            let t = Timing {
                pairs: *pairs,
                duration: *duration,
                warmup: 1.0,
            };
            let mut steps = loops(Loop::Echo, &[1, 10, 100, 1000], &t, &echo_goals);
            steps.extend(over_tls(loops(Loop::Echo, &[1, 100], &t, &tls_echo_goals)));
            steps.extend(proxied(loops(Loop::Echo, &[1, 10, 100], &t, &proxy_goals)));
            steps.extend(loops(Loop::Turn, &[1, 100], &t, &|_| vec![Goal::NoErrors]));
            steps.push(Step::Loop {
                kind: Loop::Http,
                concurrency: 8,
                tls: false,
                servers: (Server::Reference, Server::Mock),
                pairs: *pairs,
                window: window(*duration, 1.0),
                goals: http_goals(),
            });
            steps.push(Step::Startup {
                pairs: (*pairs).max(5),
                goals: startup_goals(),
            });
            for warmup in [Warmup::Heartbeat, Warmup::Turn] {
                steps.push(Step::Idle {
                    sessions: 10_000,
                    warmup,
                    pairs: *pairs,
                    goals: idle_goals(10_000, warmup),
                });
            }
            steps
        }
        Mode::Smoke => {
            let t = Timing {
                pairs: 1,
                duration: 0.5,
                warmup: 0.2,
            };
            let mut steps = loops(Loop::Echo, &[2], &t, &|_| vec![]);
            steps.extend(over_tls(loops(Loop::Echo, &[2], &t, &|_| vec![])));
            steps.extend(proxied(loops(Loop::Echo, &[2], &t, &|_| vec![])));
            steps.extend(loops(Loop::Turn, &[2], &t, &|_| vec![]));
            steps.push(Step::Loop {
                kind: Loop::Http,
                concurrency: 2,
                tls: false,
                servers: (Server::Reference, Server::Mock),
                pairs: 1,
                window: window(0.5, 0.2),
                goals: vec![],
            });
            steps.push(Step::Startup {
                pairs: 1,
                goals: vec![],
            });
            for warmup in [Warmup::Heartbeat, Warmup::Turn] {
                steps.push(Step::Idle {
                    sessions: 20,
                    warmup,
                    pairs: 1,
                    goals: vec![],
                });
            }
            steps
        }
        Mode::ReferenceServer { .. } | Mode::Soak { .. } => vec![],
    }
}

/// The same loops, both servers serving TLS.
fn over_tls(steps: Vec<Step>) -> Vec<Step> {
    steps
        .into_iter()
        .map(|mut step| {
            if let Step::Loop { tls, .. } = &mut step {
                *tls = true;
            }
            step
        })
        .collect()
}

/// The same loops, the mock through `messaging-mock proxy` against the mock direct.
fn proxied(steps: Vec<Step>) -> Vec<Step> {
    steps
        .into_iter()
        .map(|mut step| {
            if let Step::Loop { servers, .. } = &mut step {
                *servers = (Server::Mock, Server::Proxied);
            }
            step
        })
        .collect()
}

/// The proxy's targets (issue: at most 1 ms added p99 at C=1, at least 0.5× the direct msg/s
/// at C=100).
fn proxy_goals(concurrency: usize) -> Vec<Goal> {
    match concurrency {
        1 => vec![Goal::AddedAtMost {
            metric: "p99_us",
            value: 1000.0,
        }],
        100 => vec![Goal::RatioAtLeast {
            metric: "msgs_per_s",
            value: 0.5,
        }],
        _ => vec![Goal::NoErrors],
    }
}

impl Step {
    /// Sockets this step holds open at once in this process.
    fn sockets(&self) -> usize {
        match self {
            Self::Loop { concurrency, .. } => *concurrency,
            Self::Idle { sessions, .. } => *sessions,
            Self::Startup { .. } => 2,
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Loop {
                kind: Loop::Echo,
                concurrency,
                tls: true,
                ..
            } => format!("echo over TLS C={concurrency}"),
            Self::Loop {
                kind: Loop::Echo,
                concurrency,
                servers: (_, Server::Proxied),
                ..
            } => format!("echo through the proxy C={concurrency} (vs the mock direct)"),
            Self::Loop {
                kind: Loop::Echo,
                concurrency,
                ..
            } => format!("echo C={concurrency}"),
            Self::Loop {
                kind: Loop::Turn,
                concurrency,
                ..
            } => format!("turn C={concurrency} (mock only)"),
            Self::Loop {
                kind: Loop::Http,
                concurrency,
                ..
            } => format!("http C={concurrency} (token endpoint vs static route)"),
            Self::Idle {
                sessions,
                warmup: Warmup::Heartbeat,
                ..
            } => format!("idle {sessions} sessions (replay + one heartbeat)"),
            Self::Idle { sessions, .. } => {
                format!("full {sessions} sessions (join + one turn; reference: one echo)")
            }
            Self::Startup { .. } => "startup".to_owned(),
        }
    }

    async fn run(
        self,
        bins: &Binaries,
        progress: &Progress,
        client_threads: Option<usize>,
    ) -> anyhow::Result<Comparison> {
        let name = self.name();
        let (pairs, goals) = match &self {
            Self::Loop { pairs, goals, .. }
            | Self::Idle { pairs, goals, .. }
            | Self::Startup { pairs, goals } => (*pairs, goals.clone()),
        };
        let mut comparison = Comparison::new(name.clone(), goals);
        let pair;
        let servers: &[Server] = match &self {
            Self::Loop {
                kind: Loop::Turn, ..
            } => &[Server::Mock],
            Self::Loop { servers, .. } => {
                (comparison.baseline, comparison.subject) = *servers;
                pair = [servers.0, servers.1];
                &pair
            }
            _ => &[Server::Reference, Server::Mock],
        };
        for pair in 1..=pairs.max(1) {
            for &server in servers {
                let label = format!("{name} [{} {pair}/{pairs}]", server.label());
                progress.line(&format!("{label}: starting"));
                let sample = match &self {
                    Self::Loop {
                        kind,
                        concurrency,
                        tls,
                        window,
                        ..
                    } => {
                        load::closed_loop(
                            server,
                            bins,
                            (*kind, *tls),
                            *concurrency,
                            client_threads.unwrap_or_else(|| load::client_threads(*concurrency)),
                            *window,
                            progress,
                            &label,
                        )
                        .await
                    }
                    Self::Idle {
                        sessions, warmup, ..
                    } => load::idle(server, bins, *sessions, *warmup, progress).await,
                    Self::Startup { .. } => load::startup(server, bins).await,
                }
                .with_context(|| label.clone())?;
                comparison.samples.push(sample);
            }
        }
        Ok(comparison)
    }
}
