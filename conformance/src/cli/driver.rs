//! `messaging-conformance driver`: the reference client as a driver (contract §1–§6).

use std::process::ExitCode;

use clap::Args;
use conformance::contract::{CommandLine, ReadyLine, ReplyLine};
use conformance::driver::{DriverEnv, run_reference};
use mock_server::config::Profile;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, Args)]
pub struct DriverArgs {
    /// The documentation revision the reference client follows (`2026-05`: `seq:<n>`
    /// cursors).
    #[arg(long, value_enum, default_value = "current")]
    protocol_profile: Profile,
}

pub fn run(args: DriverArgs) -> anyhow::Result<ExitCode> {
    driver(args.protocol_profile).map(|()| ExitCode::SUCCESS)
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .map_err(|_| anyhow::anyhow!("{name} is not set (see the driver contract §1)"))
}

fn driver(protocol: Profile) -> anyhow::Result<()> {
    let env = DriverEnv {
        base_url: env("MESSAGING_BASE_URL")?,
        connector_token: env("MESSAGING_CONNECTOR_TOKEN")?,
        host: env("MESSAGING_HOST")?,
        case_id: std::env::var("CONFORMANCE_CASE").unwrap_or_default(),
        ca_file: std::env::var_os("MESSAGING_CA_FILE").map(Into::into),
        node_extra_ca_certs: None,
    };
    // The working directory is the driver's to persist in (contract §1).
    let state_file = std::env::current_dir()?.join(conformance::reference::STATE_FILE);
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
            let reply = run_reference(
                &env,
                Default::default(),
                protocol,
                &state_file,
                &mut client,
                command.command,
            )
            .await;
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
