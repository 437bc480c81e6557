//! `messaging-conformance`: the conformance kit's command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use conformance::contract::{CommandLine, ReadyLine, ReplyLine};
use conformance::driver::{DriverEnv, run_reference};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Grades a Messaging API client SDK against the protocol's client obligations (spec §11).
///
/// `run --driver "<command>"` starts the mock in-process, runs every case against your
/// driver (see conformance/README.md), and prints a grade per obligation. Exit status 1 when a
/// MUST is broken or the driver broke (and with --strict, when a SHOULD is broken).
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Print the case catalogue and which obligations it covers.
    List,
    /// Run the catalogue against a driver (or the reference client).
    Run(RunArgs),
    /// Act as a driver (contract §1–§6) for the reference client: read commands on stdin,
    /// answer on stdout. An example of a complete driver, and what the runner tests itself with.
    Driver,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The driver command (run with `sh -c`), e.g. "node my-driver.js".
    #[arg(long, required_unless_present = "reference")]
    driver: Option<String>,
    /// Run the built-in reference client instead of a driver.
    #[arg(long, conflicts_with = "driver")]
    reference: bool,
    /// Only cases whose id contains this text (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// `quick` leaves out the cases that wait on purpose (about 5 s instead of 30 s).
    #[arg(long, value_parser = ["quick", "full"], default_value = "full")]
    profile: String,
    /// Seed for the mock's ids and random choices (default: random per case).
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds to wait for each driver reply.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Also fail on broken SHOULDs.
    #[arg(long)]
    strict: bool,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Write results.json, junit.xml and report.html into this directory.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        CliCommand::List => {
            list();
            ExitCode::SUCCESS
        }
        CliCommand::Run(args) => match run(args) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("messaging-conformance: {error:#}");
                ExitCode::FAILURE
            }
        },
        CliCommand::Driver => match driver() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("messaging-conformance driver: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn list() {
    let cases = conformance::catalogue::catalogue();
    for case in &cases {
        let ids: Vec<&str> = case.checks.iter().map(|(id, _)| *id).collect();
        println!("{:22} {:42} {}", case.id, case.scenario, ids.join(" "));
        println!("{:22} {}", "", case.description);
    }
    println!();
    for obligation in conformance::obligations::OBLIGATIONS {
        let covering: Vec<&str> = cases
            .iter()
            .filter(|c| c.checks.iter().any(|(id, _)| *id == obligation.id))
            .map(|c| c.id)
            .collect();
        let covered = if covering.is_empty() {
            "not covered yet".to_owned()
        } else {
            covering.join(", ")
        };
        println!(
            "{:7} {:8} {:60} {covered}",
            obligation.id,
            format!("{:?}", obligation.level).to_uppercase(),
            obligation.summary
        );
    }
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    use conformance::driver::{InProcess, ProcessDriver};
    use conformance::runner::{Verdict, run_case_seeded};
    let cases: Vec<_> = conformance::catalogue::catalogue()
        .into_iter()
        .filter(|c| args.only.is_empty() || args.only.iter().any(|o| c.id.contains(o.as_str())))
        .filter(|c| args.profile == "full" || !c.is_slow())
        .collect();
    anyhow::ensure!(!cases.is_empty(), "no case matches --only {:?}", args.only);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let timeout = std::time::Duration::from_secs(args.timeout);
    let results = runtime.block_on(async {
        let mut results = Vec::new();
        for (i, case) in cases.iter().enumerate() {
            eprint!("[{}/{}] {:22} ", i + 1, cases.len(), case.id);
            let result = match &args.driver {
                Some(command) => {
                    let workdir = std::env::temp_dir().join(format!(
                        "messaging-conformance-{}-{}",
                        std::process::id(),
                        case.id
                    ));
                    let _ = std::fs::create_dir_all(&workdir);
                    let command = command.clone();
                    run_case_seeded(case, args.seed, |env| async move {
                        ProcessDriver::launch(&command, &env, &workdir, timeout).await
                    })
                    .await
                }
                None => {
                    run_case_seeded(
                        case,
                        args.seed,
                        |env| async move { Ok(InProcess::new(env)) },
                    )
                    .await
                }
            };
            let summary = if let Some(error) = &result.driver_error {
                format!("DRIVER ERROR: {error}")
            } else {
                result
                    .findings
                    .iter()
                    .map(|f| {
                        let mark = match &f.verdict {
                            Verdict::Pass => "pass".to_owned(),
                            Verdict::Fail(why) => format!("FAIL ({why})"),
                            Verdict::Warn(why) => format!("warn ({why})"),
                            Verdict::Skipped(why) => format!("skipped ({why})"),
                        };
                        format!("{} {mark}", f.obligation)
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            eprintln!("{:>6} ms  {summary}", result.duration_ms);
            results.push(result);
        }
        results
    });
    // Summary by obligation: how each fared across the cases that check it.
    println!(
        "{:7} {:8} {:>5} {:>5} {:>5} {:>8}",
        "", "level", "pass", "fail", "warn", "skipped"
    );
    for obligation in conformance::obligations::OBLIGATIONS {
        let verdicts: Vec<&Verdict> = results
            .iter()
            .flat_map(|r| r.verdict_of(obligation.id))
            .collect();
        if verdicts.is_empty() {
            continue;
        }
        let count = |f: fn(&Verdict) -> bool| verdicts.iter().filter(|v| f(v)).count();
        println!(
            "{:7} {:8} {:>5} {:>5} {:>5} {:>8}",
            obligation.id,
            format!("{:?}", obligation.level).to_uppercase(),
            count(|v| matches!(v, Verdict::Pass)),
            count(|v| matches!(v, Verdict::Fail(_))),
            count(|v| matches!(v, Verdict::Warn(_))),
            count(|v| matches!(v, Verdict::Skipped(_))),
        );
    }
    let failed = results.iter().filter(|r| r.failed()).count();
    let warned = results.iter().filter(|r| r.warned()).count();
    println!(
        "{} cases: {} failed, {} with warnings",
        results.len(),
        failed,
        warned
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)?;
        println!("results written to {}", path.display());
    }
    if let Some(dir) = &args.report {
        let driver = args
            .driver
            .clone()
            .unwrap_or_else(|| "(reference client)".into());
        conformance::report::write(dir, &results, &driver)?;
        println!("report written to {}", dir.join("report.html").display());
    }
    Ok(if failed > 0 || (args.strict && warned > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .map_err(|_| anyhow::anyhow!("{name} is not set (see the driver contract §1)"))
}

fn driver() -> anyhow::Result<()> {
    let env = DriverEnv {
        base_url: env("MESSAGING_BASE_URL")?,
        connector_token: env("MESSAGING_CONNECTOR_TOKEN")?,
        host: env("MESSAGING_HOST")?,
        case_id: std::env::var("CONFORMANCE_CASE").unwrap_or_default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut stdout = tokio::io::stdout();
        let ready = ReadyLine {
            ready: true,
            name: "messaging-conformance reference client".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        };
        stdout
            .write_all(format!("{}\n", serde_json::to_string(&ready)?).as_bytes())
            .await?;
        stdout.flush().await?;
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        let mut client = None;
        while let Some(line) = lines.next_line().await? {
            if line.trim().is_empty() {
                continue;
            }
            let command: CommandLine = match serde_json::from_str(&line) {
                Ok(command) => command,
                Err(error) => {
                    eprintln!("ignoring a line that is not a command ({error}): {line}");
                    continue;
                }
            };
            let exit = matches!(command.command, conformance::contract::Command::Exit);
            let reply = run_reference(&env, Default::default(), &mut client, command.command).await;
            let out = serde_json::to_string(&ReplyLine::of(command.id, reply))?;
            stdout.write_all(format!("{out}\n").as_bytes()).await?;
            stdout.flush().await?;
            if exit {
                break;
            }
        }
        anyhow::Ok(())
    })
}
