//! `loadgen smoke`: every mode at tiny sizes, and its checks (no errors, something measured).

use std::process::ExitCode;

use super::Timing;
use super::step::{Step, loops, over_tls, proxied, window};
use crate::client::Warmup;
use crate::load::Loop;
use crate::proc::Server;
use crate::report::Comparison;

pub fn plan() -> Vec<Step> {
    let t = Timing {
        pairs: 1,
        duration: 0.5,
        warmup: 0.2,
    };
    let mut steps = loops(Loop::Echo, &[2], &t, &|_| vec![]);
    steps.extend(over_tls(loops(Loop::Echo, &[2], &t, &|_| vec![])));
    steps.extend(proxied(
        loops(Loop::Echo, &[2], &t, &|_| vec![]),
        Server::Proxied,
    ));
    steps.extend(proxied(
        loops(Loop::Echo, &[2], &t, &|_| vec![]),
        Server::Forwarded,
    ));
    steps.extend(loops(Loop::Turn, &[2], &t, &|_| vec![]));
    steps.push(Step::Loop {
        kind: Loop::Http,
        concurrency: 2,
        tls: false,
        servers: (Server::Reference, Server::Mock),
        pairs: 1,
        window: window(0.5, 0.2),
        goals: vec![],
    });
    steps.push(Step::Startup {
        pairs: 1,
        goals: vec![],
    });
    for warmup in [Warmup::Heartbeat, Warmup::Turn] {
        steps.push(Step::Idle {
            sessions: 20,
            warmup,
            pairs: 1,
            goals: vec![],
        });
    }
    steps
}

/// The exit status of a smoke run: 1 when a check failed (each printed on stderr).
pub fn verdict(comparisons: &[Comparison]) -> ExitCode {
    let broken = smoke_failures(comparisons);
    for problem in &broken {
        eprintln!("loadgen smoke: {problem}");
    }
    if broken.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The smoke run's checks: every sample ran without error and measured something.
fn smoke_failures(comparisons: &[Comparison]) -> Vec<String> {
    let mut problems = Vec::new();
    for comparison in comparisons {
        if comparison.samples.is_empty() {
            problems.push(format!("{}: no samples", comparison.name));
        }
        for sample in &comparison.samples {
            let who = format!("{} ({})", comparison.name, sample.server.label());
            if sample.errors > 0 {
                problems.push(format!(
                    "{who}: {} errors, first: {}",
                    sample.errors,
                    sample.first_error.as_deref().unwrap_or("?")
                ));
            }
            let measured = sample
                .metrics
                .iter()
                .any(|(name, v)| name.ends_with("_per_s") && *v > 0.0)
                || sample
                    .metrics
                    .get("first_echo_ms")
                    .is_some_and(|v| *v > 0.0);
            if !measured {
                problems.push(format!("{who}: measured nothing ({:?})", sample.metrics));
            }
        }
    }
    problems
}
