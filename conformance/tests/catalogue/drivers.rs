//! The example drivers (independent clients written from the spec, not from the reference)
//! pass the catalogue strictly, and generated sessions; `CONFORMANCE_DRIVER` grades any other.

use std::time::Duration;

use conformance::cases::{Case, Tier, catalogue};
use conformance::driver::ProcessLauncher;
use conformance::runner::{default_jobs, select};
use libtest_mimic::{Completion, Trial};

use crate::generated::sessions;
use crate::support::{
    UNBOUNDED_WAIT, java, needing, node, params, python, repo, run, strict_pass, with_permit,
};

/// What a driver runs: the full profile, the thorough cases, or a run seed's generated
/// sessions.
#[derive(Debug, Clone, Copy)]
enum Part {
    Quick,
    Full,
    Thorough,
    Generated,
}

fn launcher(command: String) -> ProcessLauncher {
    ProcessLauncher {
        command,
        timeout: Duration::from_secs(10),
    }
}

async fn passes(command: String, part: Part, seed: u64, tls: bool) -> Result<(), String> {
    let all = catalogue().map_err(|e| e.to_string())?;
    let generated;
    let cases: Vec<&Case> = match part {
        Part::Quick => select(&all, Tier::Quick, &[]),
        Part::Full => select(&all, Tier::Full, &[]),
        Part::Thorough => all.iter().filter(|c| c.tier == Tier::Thorough).collect(),
        Part::Generated => {
            generated = sessions(seed)?;
            generated.iter().collect()
        }
    };
    // As many at once as a user's run would play (the kit's default `--jobs`): a driver is a
    // process per case, and a JVM each is more than two cores run at once in real time.
    let params = params(seed, tls)?;
    strict_pass(&cases, &params, &launcher(command), default_jobs())
        .await
        .map(|_| ())
}

/// A trial of `script` run by the program `check` finds; `tls`: every mock serves TLS and the
/// driver trusts it through `MESSAGING_CA_FILE` (Node: `NODE_EXTRA_CA_CERTS`) alone.
fn trial(
    name: &str,
    check: fn() -> Result<String, String>,
    script: &'static str,
    (part, seed, tls): (Part, u64, bool),
) -> Trial {
    needing(name.to_owned(), check, move |program| {
        let command = format!("{program} {}", repo().join(script).display());
        run(
            UNBOUNDED_WAIT,
            with_permit(Duration::from_secs(400), passes(command, part, seed, tls)),
        )
    })
}

pub fn trials() -> Vec<Trial> {
    const NODE: &str = "examples/drivers/node/driver.mjs";
    const PYTHON: &str = "examples/drivers/python/driver.py";
    let mut out = vec![
        trial("drivers::node::full", node, NODE, (Part::Full, 31, false)),
        // Over TLS the quick cases: the full profile's load on top of the others' made the
        // Java trials miss a reconnect in CI (RC-1 in reconnect-mid-stream, twice).
        trial(
            "drivers::node::quick::tls",
            node,
            NODE,
            (Part::Quick, 33, true),
        ),
        trial(
            "drivers::node::generative",
            node,
            NODE,
            (Part::Generated, 32, false),
        ),
        trial(
            "drivers::python::full",
            python,
            PYTHON,
            (Part::Full, 51, false),
        ),
        trial(
            "drivers::python::quick::tls",
            python,
            PYTHON,
            (Part::Quick, 55, true),
        ),
        trial(
            "drivers::python::thorough",
            python,
            PYTHON,
            (Part::Thorough, 53, false),
        ),
        trial(
            "drivers::python::generative",
            python,
            PYTHON,
            (Part::Generated, 52, false),
        ),
    ];
    // The Java command is the whole command (its classes are compiled first). The full
    // profile under three run seeds: different draws of every timing and text; the third
    // over TLS.
    for (name, part, seed, tls) in [
        ("drivers::java::full::seed-61", Part::Full, 61, false),
        ("drivers::java::full::seed-63", Part::Full, 63, false),
        ("drivers::java::full::tls::seed-65", Part::Full, 65, true),
        ("drivers::java::generative", Part::Generated, 62, false),
    ] {
        out.push(needing(name.to_owned(), java, move |command| {
            run(
                UNBOUNDED_WAIT,
                with_permit(Duration::from_secs(400), passes(command, part, seed, tls)),
            )
        }));
    }
    // `CONFORMANCE_DRIVER="<command>" cargo test -p conformance --test catalogue` grades any
    // driver; without it the trial says so (not a prerequisite CI lacks: CI sets none).
    out.push(Trial::ignorable_test(
        "drivers::conformance_driver::full",
        || {
            let Ok(command) = std::env::var("CONFORMANCE_DRIVER") else {
                return Ok(Completion::ignored_with("CONFORMANCE_DRIVER is not set"));
            };
            run(
                UNBOUNDED_WAIT,
                with_permit(
                    Duration::from_secs(400),
                    passes(command, Part::Full, 1, false),
                ),
            )
            .map(|()| Completion::Completed)
        },
    ));
    out
}
