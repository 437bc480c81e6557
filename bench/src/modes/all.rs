//! `loadgen all`: every mode with the parameters and targets (the BENCHMARKS.md run).

use clap::Args;

use super::Timing;
use super::echo::{echo_goals, tls_echo_goals};
use super::http::http_goals;
use super::idle::idle_goals;
use super::proxy::proxy_goals;
use super::startup::startup_goals;
use super::step::{Step, loops, over_tls, proxied, window};
use crate::client::Warmup;
use crate::load::Loop;
use crate::proc::Server;
use crate::report::Goal;

#[derive(Debug, Args)]
pub struct AllArgs {
    #[arg(long, default_value_t = 3)]
    pairs: usize,
    /// Measured seconds per closed-loop sample.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
}

pub fn plan(args: &AllArgs) -> Vec<Step> {
    let AllArgs { pairs, duration } = args;
    let t = Timing {
        pairs: *pairs,
        duration: *duration,
        warmup: 1.0,
    };
    let mut steps = loops(Loop::Echo, &[1, 10, 100, 1000], &t, &echo_goals);
    steps.extend(over_tls(loops(Loop::Echo, &[1, 100], &t, &tls_echo_goals)));
    steps.extend(proxied(
        loops(Loop::Echo, &[1, 10, 100], &t, &proxy_goals),
        Server::Proxied,
    ));
    steps.extend(super::proxy::forwarded(&[1, 100], &t));
    steps.extend(loops(Loop::Turn, &[1, 100], &t, &|_| vec![Goal::NoErrors]));
    steps.push(Step::Loop {
        kind: Loop::Http,
        concurrency: 8,
        tls: false,
        servers: (Server::Reference, Server::Mock),
        pairs: *pairs,
        window: window(*duration, 1.0),
        goals: http_goals(),
    });
    steps.push(Step::Startup {
        pairs: (*pairs).max(5),
        goals: startup_goals(),
    });
    for warmup in [Warmup::Heartbeat, Warmup::Turn] {
        steps.push(Step::Idle {
            sessions: 10_000,
            warmup,
            pairs: *pairs,
            goals: idle_goals(10_000, warmup),
        });
    }
    steps
}
