//! `messaging-mock generate-schemas`: its flags, and schemas/ regenerated or checked.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use mock_server::outln;

#[derive(Debug, Args)]
pub struct GenerateSchemasArgs {
    /// Directory to write into.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas"))]
    out: PathBuf,
    /// Do not write; exit 1 if any file differs.
    #[arg(long)]
    check: bool,
}

pub fn run(args: GenerateSchemasArgs) -> anyhow::Result<ExitCode> {
    generate_schemas(&args.out, args.check)
}

fn generate_schemas(out: &Path, check: bool) -> anyhow::Result<ExitCode> {
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
    outln!("{} schema files, {} {verb}", files.len(), stale.len());
    for name in &stale {
        outln!("  {verb}: {name}");
    }
    Ok(if check && !stale.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
