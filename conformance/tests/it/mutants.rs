//! The mutant table: every built-in mutant fails (or warns on) the obligations it names and no
//! other obligation anywhere in the catalogue. Sensitivity and specificity, for each.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use conformance::cases::{Case, Tier, catalogue};
use conformance::driver::ReferenceLauncher;
use conformance::obligations::ObligationId;
use conformance::params::Params;
use conformance::reference::{Mutant, mutants};
use conformance::runner::{CaseResult, run_case, select};
use tokio::sync::Semaphore;

use crate::bounded_by;

/// Cases in flight at once: each mostly waits (backoff, heartbeats, a 5 s resend).
const AT_ONCE: usize = 24;

async fn run_all(pairs: Vec<(Mutant, Case)>, params: Arc<Params>) -> Vec<(Mutant, CaseResult)> {
    let permits = Arc::new(Semaphore::new(AT_ONCE));
    let mut tasks = tokio::task::JoinSet::new();
    for (mutant, case) in pairs {
        let permits = Arc::clone(&permits);
        let params = Arc::clone(&params);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore open");
            let launcher = ReferenceLauncher {
                defects: mutant.defects,
                ..ReferenceLauncher::default()
            };
            let result = run_case(&case, &params, &launcher).await;
            (mutant, result)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        out.push(joined.expect("a case task"));
    }
    out
}

fn broken(results: &[&CaseResult]) -> BTreeSet<ObligationId> {
    results
        .iter()
        .flat_map(|r| &r.findings)
        .filter(|f| f.verdict.is_broken())
        .map(|f| f.obligation)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutant_fails_its_own_obligations_and_nothing_else() {
    bounded_by(Duration::from_secs(420), async {
        let cases = catalogue().expect("cases");
        let full: Vec<Case> = select(&cases, Tier::Full, &[])
            .into_iter()
            .cloned()
            .collect();
        let thorough: Vec<Case> = cases
            .iter()
            .filter(|c| c.tier == Tier::Thorough)
            .cloned()
            .collect();
        let params = Arc::new(Params::draw(21));
        let all = mutants();
        let pairs = all
            .iter()
            .flat_map(|m| full.iter().map(move |c| (m.clone(), c.clone())))
            .collect();
        let mut results = run_all(pairs, Arc::clone(&params)).await;
        // A mutant whose obligations only the thorough cases can judge (a resend cap, the
        // 30 s heartbeat default) runs those too.
        let needs_thorough: Vec<Mutant> = all
            .iter()
            .filter(|m| {
                let own: Vec<&CaseResult> = results
                    .iter()
                    .filter(|(x, _)| x.name == m.name)
                    .map(|(_, r)| r)
                    .collect();
                let caught = broken(&own);
                !m.breaks.iter().all(|id| caught.contains(id))
            })
            .cloned()
            .collect();
        let pairs = needs_thorough
            .iter()
            .flat_map(|m| thorough.iter().map(move |c| (m.clone(), c.clone())))
            .collect();
        results.extend(run_all(pairs, params).await);

        let mut problems = Vec::new();
        for mutant in &all {
            let own: Vec<&CaseResult> = results
                .iter()
                .filter(|(m, _)| m.name == mutant.name)
                .map(|(_, r)| r)
                .collect();
            let caught = broken(&own);
            for id in mutant.breaks {
                if !caught.contains(id) {
                    problems.push(format!(
                        "{} ({}) escaped {id}",
                        mutant.name, mutant.description
                    ));
                }
            }
            for result in &own {
                if let Some(error) = &result.driver_error {
                    problems.push(format!(
                        "{}: {}: driver error {error}",
                        mutant.name, result.case
                    ));
                }
                for finding in result.findings.iter().filter(|f| f.verdict.is_broken()) {
                    if !mutant.breaks.contains(&finding.obligation) {
                        problems.push(format!(
                            "{} also broke {} in {}: {}",
                            mutant.name,
                            finding.obligation,
                            result.case,
                            finding.verdict.reason()
                        ));
                    }
                }
            }
        }
        assert!(
            problems.is_empty(),
            "{} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    })
    .await;
}
