//! `messaging-conformance coverage`: the spec-coverage matrix of a reference-client run.

use std::process::ExitCode;

use conformance::cases::Tier;
use conformance::driver::ReferenceLauncher;
use conformance::params::Params;
use conformance::runner::{run_cases, select};
use mock_server::{out, outln};

use super::progress_line;

#[derive(Debug, clap::Args)]
pub struct CoverageArgs {
    /// Which cases.
    #[arg(long, value_enum, default_value = "full")]
    profile: Tier,
    /// Seed of the drawn parameters.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Generated sessions only: this many drawn from the seed (as `run --generative N`), in
    /// place of the profile's cases, to see what the generator reaches with no case author.
    #[arg(long, value_name = "N")]
    generative: Option<u64>,
    /// Exit 1 when a cell an obligation touches is not exercised and the matrix gives no
    /// reason why only the thorough profile can exercise it.
    #[arg(long)]
    check: bool,
}

pub fn run(args: CoverageArgs) -> anyhow::Result<ExitCode> {
    let matrix = conformance::coverage::Matrix::embedded().map_err(anyhow::Error::msg)?;
    let catalogue = conformance::cases::catalogue()?;
    let generated: Vec<conformance::cases::Case> = (0..args.generative.unwrap_or(0))
        .map(|i| conformance::generative::Session::generate(args.seed, i).case())
        .collect::<Result<_, _>>()?;
    let (cases, label) = if args.generative.is_some() {
        (generated.iter().collect(), "generative".to_owned())
    } else {
        let label = format!("{} profile", args.profile.as_str());
        (select(&catalogue, args.profile, &[]), label)
    };
    eprintln!(
        "running the {label} ({} cases, seed {}) with the reference client…",
        cases.len(),
        args.seed
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let results = runtime.block_on(run_cases(
        &cases[..],
        &Params::draw(args.seed),
        &ReferenceLauncher::default(),
        cases.len(),
        progress_line,
    ));
    let mut observed = conformance::coverage::Observed::default();
    for result in &results {
        observed.merge(&result.exercised);
    }
    out!("{}", matrix.table(&observed));
    let (touched, exercised, phases, phases_seen) = matrix.counts(&observed);
    outln!(
        "\n✓ exercised  ✗ touched by an obligation, not exercised  t only in the thorough profile  · exercised, no obligation  - neither; (phase) not exercised"
    );
    outln!(
        "{exercised} of {touched} cells an obligation touches exercised by the {label}; {phases_seen} of {phases} row phases"
    );
    let missing = matrix.missing(&observed);
    let mut gaps = 0;
    for (row, way, obligations, why) in &missing {
        let ids: Vec<&str> = obligations.iter().map(|o| o.as_str()).collect();
        match why {
            Some(why) => outln!(
                "  {row} / {way:?} ({}): thorough only: {why}",
                ids.join(", ")
            ),
            None => {
                gaps += 1;
                outln!("  {row} / {way:?} ({}): NOT EXERCISED", ids.join(", "));
            }
        }
    }
    Ok(if args.check && gaps > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
