//! The reference client on every case of the catalogue, and the coverage of the full profile.

use std::time::Duration;

use conformance::cases::{Case, Tier, catalogue};
use conformance::coverage::{Matrix, Observed};
use conformance::driver::ReferenceLauncher;
use conformance::params::Params;
use conformance::runner::{run_cases, select};
use libtest_mimic::Trial;

use crate::support::{params, run, strict_pass};

pub fn trials() -> Vec<Trial> {
    let cases = catalogue().expect("the catalogue loads");
    let mut out: Vec<Trial> = cases
        .iter()
        .map(|case| {
            let case = case.clone();
            Trial::test(format!("reference::{}", case.id), move || {
                run(Duration::from_secs(200), passes_with_pinned_view(case))
            })
        })
        .collect();
    out.push(Trial::test("coverage::full", || {
        run(Duration::from_secs(120), full_profile_covers_the_matrix())
    }));
    out
}

/// Under three seeds (one for the long thorough cases) the reference passes strictly, the
/// last over TLS (`run --tls`); under seed 0 its final view is the committed regression pin
/// (not the oracle: what a client must show is the case's expected conversation).
async fn passes_with_pinned_view(case: Case) -> Result<(), String> {
    let launcher = ReferenceLauncher::default();
    let one = [&case];
    let seeds: &[u64] = if case.tier == Tier::Thorough {
        &[3]
    } else {
        &[0, 1, 2]
    };
    let params: Vec<Params> = seeds
        .iter()
        .map(|seed| params(*seed, *seed == 2))
        .collect::<Result<_, _>>()?;
    let runs = futures_util::future::join_all(
        params
            .iter()
            .map(|params| strict_pass(&one, params, &launcher, one.len())),
    )
    .await;
    for (seed, results) in seeds.iter().zip(runs) {
        let results = results?;
        if *seed == 0 {
            let view = &results[0]
                .views
                .last()
                .ok_or_else(|| format!("{}: no view", case.id))?
                .view;
            insta::assert_json_snapshot!(
                format!("view-{}", case.id),
                conformance::runner::normalised_view(view)
            );
        }
    }
    Ok(())
}

/// Every cell of the coverage matrix an obligation touches is exercised by the full profile
/// (or the matrix says why only the thorough one can); the same profile without the
/// stable-reconnect case leaves cells uncovered (the gate can fail).
async fn full_profile_covers_the_matrix() -> Result<(), String> {
    let matrix = Matrix::embedded()?;
    let cases = catalogue().map_err(|e| e.to_string())?;
    let full = select(&cases, Tier::Full, &[]);
    let results = run_cases(
        &full,
        &Params::draw(1),
        &ReferenceLauncher::default(),
        full.len(),
        |_, _, _| {},
    )
    .await;
    let mut all = Observed::default();
    let mut without = Observed::default();
    for result in &results {
        all.merge(&result.exercised);
        if result.case != "stable-reconnect" {
            without.merge(&result.exercised);
        }
    }
    let gaps: Vec<String> = matrix
        .missing(&all)
        .into_iter()
        .filter(|(_, _, _, why)| why.is_none())
        .map(|(row, way, obligations, _)| format!("{row} / {way:?} ({obligations:?})"))
        .collect();
    if !gaps.is_empty() {
        return Err(format!(
            "cells no case of the full profile exercises:\n{}\n(add a case or fault that does, or say in fixtures/conformance/coverage/matrix.json why only the thorough profile can)",
            gaps.join("\n")
        ));
    }
    let control = matrix
        .missing(&without)
        .into_iter()
        .filter(|(_, _, _, why)| why.is_none())
        .count();
    if control == 0 {
        return Err("without stable-reconnect nothing goes uncovered: the gate cannot fail".into());
    }
    Ok(())
}
