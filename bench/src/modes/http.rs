//! `loadgen http`: access-token requests/s against a static-JSON route, and its targets.

use clap::Args;

use super::Timing;
use super::step::{Step, window};
use crate::load::Loop;
use crate::proc::Server;
use crate::report::Goal;

#[derive(Debug, Args)]
pub struct HttpArgs {
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    #[command(flatten)]
    timing: Timing,
}

pub fn plan(args: &HttpArgs) -> Vec<Step> {
    let HttpArgs {
        concurrency,
        timing,
    } = args;
    vec![Step::Loop {
        kind: Loop::Http,
        concurrency: *concurrency,
        tls: false,
        servers: (Server::Reference, Server::Mock),
        pairs: timing.pairs,
        window: window(timing.duration, timing.warmup),
        goals: http_goals(),
    }]
}

pub fn http_goals() -> Vec<Goal> {
    vec![
        Goal::RatioAtLeast {
            metric: "reqs_per_s",
            value: 0.4,
        },
        Goal::NoErrors,
    ]
}
