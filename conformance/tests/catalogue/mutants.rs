//! The mutant table: every built-in mutant fails (or warns on) the obligations it names and no
//! other obligation anywhere in the catalogue. Sensitivity and specificity, one trial each.

use std::collections::BTreeSet;
use std::time::Duration;

use conformance::cases::{Tier, catalogue};
use conformance::driver::ReferenceLauncher;
use conformance::obligations::ObligationId;
use conformance::reference::{Mutant, mutants};
use conformance::runner::{CaseResult, run_cases, select};
use libtest_mimic::Trial;

use crate::support::run;

pub fn trials() -> Vec<Trial> {
    mutants()
        .into_iter()
        .map(|mutant| {
            Trial::test(format!("mutants::{}", mutant.name), move || {
                run(Duration::from_secs(300), fails_only_its_own(mutant))
            })
        })
        .collect()
}

fn broken(results: &[CaseResult]) -> BTreeSet<ObligationId> {
    results
        .iter()
        .flat_map(|r| &r.findings)
        .filter(|f| f.verdict.is_broken())
        .map(|f| f.obligation)
        .collect()
}

async fn fails_only_its_own(mutant: Mutant) -> Result<(), String> {
    let cases = catalogue().map_err(|e| e.to_string())?;
    let launcher = ReferenceLauncher {
        defects: mutant.defects,
        ..ReferenceLauncher::default()
    };
    // A mutant only TLS shows runs with every mock serving it (`run --tls`).
    let params = crate::support::params(21, mutant.tls)?;
    let full = select(&cases, Tier::Full, &[]);
    let mut results = run_cases(&full, &params, &launcher, full.len(), |_, _, _| {}).await;
    // A mutant whose obligations only the thorough cases can judge runs those too.
    if !mutant.breaks.iter().all(|id| broken(&results).contains(id)) {
        let thorough: Vec<_> = cases.iter().filter(|c| c.tier == Tier::Thorough).collect();
        results
            .extend(run_cases(&thorough, &params, &launcher, thorough.len(), |_, _, _| {}).await);
    }
    let caught = broken(&results);
    let mut problems = Vec::new();
    for id in mutant.breaks {
        if !caught.contains(id) {
            problems.push(format!("escaped {id} ({})", mutant.description));
        }
    }
    for result in &results {
        if let Some(error) = &result.driver_error {
            problems.push(format!("{}: driver error {error}", result.case));
        }
        for finding in result.findings.iter().filter(|f| f.verdict.is_broken()) {
            if !mutant.breaks.contains(&finding.obligation)
                && !mutant.consequences.contains(&finding.obligation)
            {
                problems.push(format!(
                    "also broke {} in {}: {}",
                    finding.obligation,
                    result.case,
                    finding.verdict.reason()
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
