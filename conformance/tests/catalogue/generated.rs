//! Generated sessions: the reference client passes them under twenty run seeds, and they find
//! each built-in mutant on one of its own obligations with no case written for it.

use std::collections::BTreeSet;
use std::time::Duration;

use conformance::cases::Case;
use conformance::coverage::{Matrix, Observed};
use conformance::driver::ReferenceLauncher;
use conformance::generative::Session;
use conformance::obligations::ObligationId;
use conformance::params::Params;
use conformance::reference::{Mutant, mutants};
use conformance::runner::run_cases;
use libtest_mimic::Trial;

use crate::support::{run, strict_pass};

/// Sessions per run seed (the `generative` profile's default).
pub const SESSIONS: u64 = 12;

/// The sessions of run `seed`, as cases.
pub fn sessions(seed: u64) -> Result<Vec<Case>, String> {
    (0..SESSIONS)
        .map(|i| Session::generate(seed, i).case().map_err(|e| e.to_string()))
        .collect()
}

pub fn trials() -> Vec<Trial> {
    let mut out: Vec<Trial> = (1..=20)
        .map(|seed| {
            Trial::test(
                format!("generative::reference::seed-{seed:02}"),
                move || {
                    run(Duration::from_secs(200), async move {
                        let cases = sessions(seed)?;
                        let refs: Vec<&Case> = cases.iter().collect();
                        let params = Params::draw(seed);
                        strict_pass(&refs, &params, &ReferenceLauncher::default(), refs.len())
                            .await
                            .map(|_| ())
                    })
                },
            )
        })
        .collect();
    out.push(Trial::test("coverage::generative", || {
        run(
            Duration::from_secs(200),
            generated_sessions_cover_the_matrix(),
        )
    }));
    out.extend(mutants().into_iter().map(|mutant| {
        Trial::test(format!("generative::mutants::{}", mutant.name), move || {
            run(Duration::from_secs(400), found_on_its_own(mutant))
        })
    }));
    out
}

/// Run seeds 1, 2, 3 in turn until a generated session breaks one of the mutant's
/// obligations.
async fn found_on_its_own(mutant: Mutant) -> Result<(), String> {
    let launcher = ReferenceLauncher {
        defects: mutant.defects,
        ..ReferenceLauncher::default()
    };
    let mut seen = BTreeSet::new();
    for seed in 1..=3 {
        let cases = sessions(seed)?;
        let refs: Vec<&Case> = cases.iter().collect();
        let results = run_cases(
            &refs,
            &crate::support::params(seed, mutant.tls)?,
            &launcher,
            refs.len(),
            |_, _, _| {},
        )
        .await;
        let broken: BTreeSet<ObligationId> = results
            .iter()
            .flat_map(|r| &r.findings)
            .filter(|f| f.verdict.is_broken())
            .map(|f| f.obligation)
            .collect();
        if mutant.breaks.iter().any(|id| broken.contains(id)) {
            return Ok(());
        }
        seen.extend(broken);
    }
    Err(format!(
        "{} ({}) was not found on {:?} by {} generated sessions; they broke {seen:?}",
        mutant.name,
        mutant.description,
        mutant.breaks,
        3 * SESSIONS
    ))
}

/// The generated sessions of three run seeds, with no case author, exercise every cell of the
/// coverage matrix an obligation touches (but those the matrix says only the thorough
/// profile's long timers reach); without their handoffs they do not (the gate can fail).
async fn generated_sessions_cover_the_matrix() -> Result<(), String> {
    let matrix = Matrix::embedded()?;
    let mut cases = Vec::new();
    for seed in 1..=3 {
        cases.extend(sessions(seed)?);
    }
    let refs: Vec<&Case> = cases.iter().collect();
    let results = run_cases(
        &refs,
        &Params::draw(1),
        &ReferenceLauncher::default(),
        refs.len(),
        |_, _, _| {},
    )
    .await;
    let mut all = Observed::default();
    let mut without = Observed::default();
    for (case, result) in refs.iter().zip(&results) {
        all.merge(&result.exercised);
        if !case.description.contains("Handoff {") {
            without.merge(&result.exercised);
        }
    }
    let gaps = |observed: &Observed| -> Vec<String> {
        matrix
            .missing(observed)
            .into_iter()
            .filter(|(_, _, _, why)| why.is_none())
            .map(|(row, way, obligations, _)| format!("{row} / {way:?} ({obligations:?})"))
            .collect()
    };
    let missed = gaps(&all);
    if !missed.is_empty() {
        return Err(format!(
            "cells no generated session of run seeds 1-3 exercises:\n{}\n(draw what reaches them: src/generative/draw.rs)",
            missed.join("\n")
        ));
    }
    if gaps(&without).is_empty() {
        return Err(
            "without the handoff sessions nothing goes uncovered: the gate cannot fail".into(),
        );
    }
    Ok(())
}
