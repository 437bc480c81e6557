//! The kit on its own terms: the catalogue covers what it claims, the reference client passes
//! every case under several seeds, its views stay as they were (regression pins, not an
//! oracle), and an external driver can be graded from `cargo test`.

use std::collections::BTreeSet;
use std::time::Duration;

use conformance::cases::{Tier, catalogue};
use conformance::driver::{ProcessLauncher, ReferenceLauncher};
use conformance::obligations::{OBLIGATIONS, ObligationId};
use conformance::params::Params;
use conformance::runner::{CaseResult, Verdict, run_cases, run_passes, select, ungraded_musts};

use crate::bounded_by;

pub async fn run_reference(profile: Tier, only: &[String], seed: u64) -> Vec<CaseResult> {
    let cases = catalogue().expect("the catalogue loads");
    let selected = select(&cases, profile, only);
    let jobs = selected.len();
    run_cases(
        &selected,
        &Params::draw(seed),
        &ReferenceLauncher::default(),
        jobs,
        |_, _, _| {},
    )
    .await
}

/// Runs each `(seed, cases)` against `launcher`, every case at once, and asserts a strict pass
/// with nothing but reasoned skips (the external drivers' tests).
pub async fn assert_strict_passes<L: conformance::driver::Launcher>(
    launcher: &L,
    runs: &[(u64, &[&conformance::cases::Case])],
) {
    for (seed, cases) in runs {
        let results = run_cases(
            cases,
            &Params::draw(*seed),
            launcher,
            cases.len(),
            |_, _, _| {},
        )
        .await;
        let problems = problems(&results);
        assert!(problems.is_empty(), "seed {seed}:\n{}", problems.join("\n"));
        assert!(
            run_passes(&results, true),
            "seed {seed}: a strict run passes"
        );
    }
}

/// Every finding that is not a pass, with its case (AUTH-4 and SEC-1 are skipped for all).
pub fn problems(results: &[CaseResult]) -> Vec<String> {
    let mut out = Vec::new();
    for result in results {
        if let Some(error) = &result.driver_error {
            out.push(format!("{}: driver error {error}", result.case));
        }
        for finding in &result.findings {
            let expected_skip = !finding.obligation.observable();
            let fine = match &finding.verdict {
                Verdict::Pass(_) => !expected_skip,
                // A reason-giving skip is fine where the case gave nothing to judge.
                Verdict::Skipped(_) => true,
                Verdict::Fail(_) | Verdict::Warn(_) => false,
            };
            if !fine {
                out.push(format!(
                    "{}: {} {:?} (notes {:?})",
                    result.case, finding.obligation, finding.verdict, result.notes
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_client_passes_the_full_profile_under_two_seeds() {
    bounded_by(Duration::from_secs(60), async {
        for seed in [1, 2] {
            let results = run_reference(Tier::Full, &[], seed).await;
            assert_eq!(
                results.len(),
                select(&catalogue().expect("cases"), Tier::Full, &[]).len()
            );
            let problems = problems(&results);
            assert!(problems.is_empty(), "seed {seed}:\n{}", problems.join("\n"));
            assert!(
                ungraded_musts(&results).is_empty(),
                "seed {seed}: {:?}",
                ungraded_musts(&results)
            );
            assert!(
                run_passes(&results, true),
                "seed {seed}: a strict run passes"
            );
        }
    })
    .await;
}

/// The whole catalogue, the long thorough cases included: also what `cargo mutants` runs
/// against each mutant of the reference client (`.cargo/mutants.toml`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_client_passes_the_thorough_profile() {
    bounded_by(Duration::from_secs(150), async {
        let results = run_reference(Tier::Thorough, &[], 3).await;
        assert_eq!(results.len(), catalogue().expect("cases").len());
        let problems = problems(&results);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert!(run_passes(&results, true), "a strict run passes");
        let graded = |id| {
            results
                .iter()
                .flat_map(|r| r.verdicts_of(id))
                .any(|v| matches!(v, Verdict::Pass(_)))
        };
        for id in [
            ObligationId::Msg5,
            ObligationId::Rc3,
            ObligationId::Hb1,
            ObligationId::Hb2,
        ] {
            assert!(graded(id), "{id} is graded");
        }
    })
    .await;
}

#[test]
fn the_full_profile_grades_every_observable_obligation_and_timing_ones_under_two_draws() {
    let cases = catalogue().expect("cases");
    let full = select(&cases, Tier::Full, &[]);
    for obligation in OBLIGATIONS {
        let covering: Vec<_> = full
            .iter()
            .filter(|c| c.checks().contains(&obligation.id))
            .collect();
        assert!(
            !covering.is_empty(),
            "{} is not checked by the full profile",
            obligation.id
        );
    }
    // The parameters of each timing obligation: both draws are used by the cases checking it.
    let params = Params::draw(5);
    for (id, names) in [
        (ObligationId::Hb2, ["heartbeat_a", "heartbeat_b"]),
        (ObligationId::Rc4, ["max_attempts_a", "max_attempts_b"]),
        (ObligationId::Ws2, ["hold_back_a", "hold_back_b"]),
        (ObligationId::Auth5, ["retry_after_a", "retry_after_b"]),
    ] {
        let used: BTreeSet<String> = full
            .iter()
            .filter(|c| c.checks().contains(&id))
            .flat_map(|c| {
                c.instantiate(&params)
                    .expect("instantiates")
                    .params
                    .into_keys()
            })
            .collect();
        for name in names {
            assert!(
                used.contains(name),
                "{id} is never judged with `{name}`: {used:?}"
            );
        }
    }
}

#[test]
fn the_same_seed_draws_the_same_case_and_another_seed_another() {
    let cases = catalogue().expect("cases");
    let case = cases.iter().find(|c| c.id == "handoff").expect("handoff");
    let a = case.instantiate(&Params::draw(11)).expect("instantiates");
    let b = case.instantiate(&Params::draw(11)).expect("instantiates");
    let c = case.instantiate(&Params::draw(12)).expect("instantiates");
    assert_eq!(a.params, b.params);
    assert_ne!(a.params, c.params);
    assert_eq!(
        serde_json::to_string(&a.steps).expect("steps"),
        serde_json::to_string(&b.steps).expect("steps")
    );
}

/// The reference client's final view of every case, normalised, is a committed snapshot:
/// a regression pin for the reference (the oracle for other clients is each case's expected
/// conversation, written next to its scenario).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_views_match_their_regression_pins() {
    bounded_by(Duration::from_secs(60), async {
        let results = run_reference(Tier::Full, &[], 0).await;
        for result in results {
            let view = &result
                .views
                .last()
                .unwrap_or_else(|| panic!("{}: no view", result.case))
                .view;
            insta::assert_json_snapshot!(
                format!("view-{}", result.case),
                conformance::runner::normalised_view(view)
            );
        }
    })
    .await;
}

/// `CONFORMANCE_DRIVER="<command>" cargo test -p conformance` grades an external driver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_driver_given_in_conformance_driver_passes_the_full_profile() {
    let Ok(command) = std::env::var("CONFORMANCE_DRIVER") else {
        eprintln!(
            "SKIPPED an_external_driver_given_in_conformance_driver_passes_the_full_profile: CONFORMANCE_DRIVER is not set"
        );
        return;
    };
    bounded_by(Duration::from_secs(120), async {
        let cases = catalogue().expect("cases");
        let selected = select(&cases, Tier::Full, &[]);
        let launcher = ProcessLauncher {
            command,
            timeout: Duration::from_secs(10),
        };
        let results = run_cases(
            &selected,
            &Params::draw(1),
            &launcher,
            selected.len(),
            |_, _, _| {},
        )
        .await;
        let problems = problems(&results);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert!(run_passes(&results, false));
    })
    .await;
}

/// `conformance/README.md` says what each check looks for and cannot see: the table is the one
/// the code holds (`conformance::obligations`), kept fresh here.
#[test]
fn the_readme_table_of_obligations_is_the_one_the_checks_hold() {
    let readme_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("README.md");
    let (start, end) = ("<!-- obligations:start -->\n", "<!-- obligations:end -->");
    let from = readme.find(start).expect("the start marker") + start.len();
    let to = readme.find(end).expect("the end marker");
    let generated = conformance::obligations::markdown_table(&catalogue().expect("cases"));
    assert!(
        readme[from..to] == generated,
        "conformance/README.md's obligation table is stale: replace it with the output of\n  cargo run -q -p conformance -- list --markdown"
    );
}

/// `schemas/conformance/` is generated from the kit's types; stale files fail here.
#[test]
fn the_committed_conformance_schemas_are_fresh_and_every_case_file_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/conformance");
    for file in conformance::schemas::generate() {
        let committed = std::fs::read_to_string(dir.join(file.name)).unwrap_or_default();
        assert!(
            committed == file.contents,
            "schemas/conformance/{} is stale: run `cargo run -p conformance -- generate-schemas`",
            file.name
        );
    }
    let schema: serde_json::Value =
        serde_json::from_str(&conformance::schemas::generate()[0].contents).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let cases = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/conformance");
    let mut checked = 0;
    for entry in std::fs::read_dir(cases).expect("fixtures/conformance") {
        let path = entry.expect("entry").path();
        let case: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("JSON");
        let errors: Vec<String> = validator
            .iter_errors(&case)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        checked += 1;
    }
    assert!(checked >= 10);
    // A negative control: a case with an unknown obligation does not validate.
    let bad = serde_json::json!({"id": "x", "description": "d", "tier": "quick", "scenario": {}, "steps": ["start"], "checks": ["WS-9"]});
    assert!(!validator.is_valid(&bad));
}

/// The doc-revision profile (spec §0): against a 2026-05 mock, a reference client written to
/// that revision (`seq:<n>` cursors) passes the cases that reconnect and change language, with
/// UX-6 skipped for a reason that names the revision; a client written to the current docs
/// (plain cursors) is warned on RC-2 there, and passes against the current mock (the control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2026_05_profile_grades_cursor_forms_and_skips_language() {
    use mock_server::config::Profile;
    bounded_by(Duration::from_secs(60), async {
        let cases = catalogue().expect("the catalogue loads");
        let only = ["conversation", "reconnect-mid-stream", "errors-and-limits"].map(String::from);
        let selected = select(&cases, Tier::Full, &only);
        assert_eq!(selected.len(), 3);
        let run = |server: Profile, client: Profile| {
            let selected = &selected;
            async move {
                let launcher = ReferenceLauncher {
                    protocol: client,
                    ..ReferenceLauncher::default()
                };
                let params = Params::draw(41).with_protocol(server);
                run_cases(selected, &params, &launcher, 3, |_, _, _| {}).await
            }
        };
        let verdicts = |results: &[CaseResult], id: ObligationId| -> Vec<Verdict> {
            results
                .iter()
                .flat_map(|r| &r.findings)
                .filter(|f| f.obligation == id)
                .map(|f| f.verdict.clone())
                .collect()
        };

        let old = run(Profile::May2026, Profile::May2026).await;
        let found = problems(&old);
        assert!(found.is_empty(), "{}", found.join("\n"));
        let rc2 = verdicts(&old, ObligationId::Rc2);
        assert!(rc2.iter().all(|v| matches!(v, Verdict::Pass(_))) && rc2.len() == 2, "{rc2:?}");
        let ux6 = verdicts(&old, ObligationId::Ux6);
        assert!(
            matches!(&ux6[..], [Verdict::Skipped(why)] if why.contains("2026-05 protocol has no LANGUAGE_CHANGED")),
            "{ux6:?}"
        );

        let mismatched = run(Profile::May2026, Profile::Current).await;
        let rc2 = verdicts(&mismatched, ObligationId::Rc2);
        assert!(
            rc2.iter().all(|v| matches!(v, Verdict::Warn(why) if why.contains("`seq:<n>`"))) && rc2.len() == 2,
            "a plain cursor against a 2026-05 mock: {rc2:?}"
        );

        let current = run(Profile::Current, Profile::Current).await;
        let ux6 = verdicts(&current, ObligationId::Ux6);
        assert!(matches!(&ux6[..], [Verdict::Pass(_)]), "{ux6:?}");
        assert!(problems(&current).is_empty());
    })
    .await;
}
