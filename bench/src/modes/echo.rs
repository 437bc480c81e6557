//! `loadgen echo`: heartbeat → echo at each concurrency, plain or over TLS, and its targets.

use clap::Args;

use super::Timing;
use super::step::{Step, loops, over_tls};
use crate::load::Loop;
use crate::report::Goal;

#[derive(Debug, Args)]
pub struct EchoArgs {
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    concurrency: Vec<usize>,
    /// Over TLS: the mock with `--tls` against the reference serving `wss://` too.
    #[arg(long)]
    tls: bool,
    #[command(flatten)]
    timing: Timing,
}

pub fn plan(args: &EchoArgs) -> Vec<Step> {
    let EchoArgs {
        concurrency,
        tls,
        timing,
    } = args;
    if *tls {
        over_tls(loops(Loop::Echo, concurrency, timing, &tls_echo_goals))
    } else {
        loops(Loop::Echo, concurrency, timing, &echo_goals)
    }
}

/// The targets for an echo run at `concurrency` (none for other sizes).
pub fn echo_goals(concurrency: usize) -> Vec<Goal> {
    let rate = |value| Goal::RatioAtLeast {
        metric: "msgs_per_s",
        value,
    };
    match concurrency {
        1 | 10 => vec![
            rate(0.75),
            Goal::RatioAtMost {
                metric: "p99_us",
                value: 1.5,
            },
        ],
        100 => vec![
            rate(0.75),
            Goal::RatioAtMost {
                metric: "cpu_us_per_msg",
                value: 1.5,
            },
        ],
        1000 => vec![
            rate(0.6),
            Goal::NoErrors,
            // With the journal on at its default budget.
            Goal::RatioAtMost {
                metric: "rss_mib",
                value: 4.0,
            },
        ],
        _ => vec![],
    }
}

/// The targets of an echo run over TLS (issue: at least 0.75× the TLS reference at C=1 and
/// C=100).
pub fn tls_echo_goals(concurrency: usize) -> Vec<Goal> {
    match concurrency {
        1 | 100 => vec![Goal::RatioAtLeast {
            metric: "msgs_per_s",
            value: 0.75,
        }],
        _ => vec![],
    }
}
