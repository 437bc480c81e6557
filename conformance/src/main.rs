//! `messaging-conformance`: the conformance kit's command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use conformance::contract::{CommandLine, ReadyLine, ReplyLine};
use conformance::driver::{DriverEnv, run_reference};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Grades a Messaging API client SDK against the protocol's client obligations.
///
/// Built so far: the reference client and its driver. The case catalogue and the runner
/// (`run`, `list`) are not built yet.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Act as a driver (contract §1–§6) for the reference client: read commands on stdin,
    /// answer on stdout. An example of a complete driver, and what the runner tests itself with.
    Driver,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        CliCommand::Driver => match driver() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("messaging-conformance driver: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
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
            let reply = run_reference(&env, &mut client, command.command).await;
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
