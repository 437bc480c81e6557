//! `loadgen reference-server` (hidden): runs the reference server for the harness.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct ReferenceServerArgs {
    /// Serve `wss://` with a generated certificate (needs `--tls-ca-out`).
    #[arg(long, requires = "tls_ca_out")]
    tls: bool,
    /// Where the CA of `--tls` is written.
    #[arg(long, value_name = "FILE")]
    tls_ca_out: Option<PathBuf>,
}

pub async fn run(args: ReferenceServerArgs) -> anyhow::Result<ExitCode> {
    let ReferenceServerArgs { tls, tls_ca_out } = args;
    crate::reference::run(tls_ca_out.filter(|_| tls)).await?;
    Ok(ExitCode::SUCCESS)
}
