//! `loadgen proxy`: echo through `messaging-mock proxy` vs the mock direct, and its targets;
//! then through `loadgen forwarder`, the floor any proxy pays on this machine.

use clap::Args;

use super::Timing;
use super::step::{Step, loops, proxied};
use crate::load::Loop;
use crate::proc::Server;
use crate::report::Goal;

#[derive(Debug, Args)]
pub struct ProxyArgs {
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    concurrency: Vec<usize>,
    #[command(flatten)]
    timing: Timing,
}

pub fn plan(args: &ProxyArgs) -> Vec<Step> {
    let ProxyArgs {
        concurrency,
        timing,
    } = args;
    let mut steps = proxied(
        loops(Loop::Echo, concurrency, timing, &proxy_goals),
        Server::Proxied,
    );
    steps.extend(forwarded(concurrency, timing));
    steps
}

/// The floor under the proxy's figures: the same loops through `loadgen forwarder`, which
/// only copies bytes (no target: it is the yardstick).
pub fn forwarded(concurrency: &[usize], timing: &Timing) -> Vec<Step> {
    proxied(
        loops(Loop::Echo, concurrency, timing, &|_| vec![Goal::NoErrors]),
        Server::Forwarded,
    )
}

/// The proxy's targets (issue: at most 1 ms added p99 at C=1, at least 0.5× the direct msg/s
/// at C=100).
pub fn proxy_goals(concurrency: usize) -> Vec<Goal> {
    match concurrency {
        1 => vec![Goal::AddedAtMost {
            metric: "p99_us",
            value: 1000.0,
        }],
        100 => vec![Goal::RatioAtLeast {
            metric: "msgs_per_s",
            value: 0.5,
        }],
        _ => vec![Goal::NoErrors],
    }
}
