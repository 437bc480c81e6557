//! `messaging-mock`: the mock server's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// An offline mock of PolyAI's Messaging API.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Regenerate the JSON Schemas in `schemas/` from the protocol types.
    GenerateSchemas {
        /// Directory to write into.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas"))]
        out: PathBuf,
        /// Do not write; exit 1 if any file differs.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::GenerateSchemas { out, check }) => generate_schemas(&out, check),
        None => {
            eprintln!("messaging-mock: the server is not built yet; see `--help`.");
            Ok(ExitCode::FAILURE)
        }
    };
    result.unwrap_or_else(|error| {
        eprintln!("messaging-mock: {error:#}");
        ExitCode::FAILURE
    })
}

fn generate_schemas(out: &std::path::Path, check: bool) -> anyhow::Result<ExitCode> {
    let files = mock_server::schemas::generate();
    let mut stale = Vec::new();
    for file in &files {
        let path = out.join(&file.name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != file.contents {
            stale.push(file.name.clone());
            if !check {
                std::fs::create_dir_all(out)
                    .with_context(|| format!("creating {}", out.display()))?;
                std::fs::write(&path, &file.contents)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    let verb = if check { "stale" } else { "updated" };
    println!("{} schema files, {} {verb}", files.len(), stale.len());
    for name in &stale {
        println!("  {verb}: {name}");
    }
    Ok(if check && !stale.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
