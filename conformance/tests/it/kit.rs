//! The kit on its own terms: the catalogue covers what it claims, its files and schemas stay
//! fresh, and the doc-revision profile grades what it says. (The catalogue run against the
//! reference, the mutants and the drivers is `tests/catalogue`, a trial per case.)

use std::collections::BTreeSet;
use std::time::Duration;

use conformance::cases::{Tier, catalogue};
use conformance::driver::ReferenceLauncher;
use conformance::obligations::{OBLIGATIONS, ObligationId};
use conformance::params::Params;
use conformance::runner::{CaseResult, Verdict, run_cases, select, unexpected_findings};

use crate::bounded_by;

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
    // The helper packages carry a copy of the view schema (they validate views without the
    // repository around them); `generate-schemas` writes those too.
    let view = conformance::schemas::generate()
        .into_iter()
        .find(|f| f.name == "driver-view.schema.json")
        .expect("the view schema");
    for copy in conformance::schemas::HELPER_VIEW_SCHEMA_COPIES {
        let path = dir.join("../..").join(copy);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == view.contents,
            "{copy} is stale: run `cargo run -p conformance -- generate-schemas`"
        );
    }
    let schema: serde_json::Value =
        serde_json::from_str(&conformance::schemas::generate()[0].contents).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let cases = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/conformance");
    let mut checked = 0;
    for entry in std::fs::read_dir(cases).expect("fixtures/conformance") {
        let path = entry.expect("entry").path();
        if !path.is_file() {
            continue; // coverage/: the matrix, not a case
        }
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
        let found = unexpected_findings(&old);
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
        assert!(unexpected_findings(&current).is_empty());
    })
    .await;
}
