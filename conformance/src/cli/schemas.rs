//! `messaging-conformance generate-schemas`: schemas/conformance/ written or `--check`ed.

use std::process::ExitCode;

use clap::Args;
use mock_server::outln;

#[derive(Debug, Args)]
pub struct GenerateSchemasArgs {
    /// Directory to write into.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/conformance"))]
    out: std::path::PathBuf,
    /// Do not write; exit 1 if any file differs.
    #[arg(long)]
    check: bool,
}

pub fn run(args: GenerateSchemasArgs) -> anyhow::Result<ExitCode> {
    generate_schemas(&args.out, args.check)
}

fn generate_schemas(out: &std::path::Path, check: bool) -> anyhow::Result<ExitCode> {
    let mut stale = Vec::new();
    let mut targets: Vec<(String, std::path::PathBuf, String)> = Vec::new();
    for file in conformance::schemas::generate() {
        // The helper packages' copies of the view schema, beside the repository's schemas/.
        if file.name == "driver-view.schema.json" {
            for copy in conformance::schemas::HELPER_VIEW_SCHEMA_COPIES {
                targets.push((
                    copy.to_owned(),
                    out.join("../..").join(copy),
                    file.contents.clone(),
                ));
            }
        }
        targets.push((file.name.to_owned(), out.join(file.name), file.contents));
    }
    for (name, path, contents) in targets {
        if std::fs::read_to_string(&path).unwrap_or_default() != contents {
            stale.push(name);
            if !check {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, &contents)?;
            }
        }
    }
    let verb = if check { "stale" } else { "updated" };
    outln!("{} {verb}: {stale:?}", stale.len());
    Ok(if check && !stale.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
