//! `loadgen startup`: spawn → first 200 → first WebSocket echo, and its targets.

use clap::Args;

use super::step::Step;
use crate::report::Goal;

#[derive(Debug, Args)]
pub struct StartupArgs {
    #[arg(long, default_value_t = 5)]
    pairs: usize,
}

pub fn plan(args: &StartupArgs) -> Vec<Step> {
    vec![Step::Startup {
        pairs: args.pairs,
        goals: startup_goals(),
    }]
}

pub fn startup_goals() -> Vec<Goal> {
    vec![
        Goal::MockAtMost {
            metric: "first_200_ms",
            value: 50.0,
        },
        Goal::MockAtMost {
            metric: "first_echo_ms",
            value: 50.0,
        },
        Goal::MockAtMost {
            metric: "second_vs_steady",
            value: 2.0,
        },
    ]
}
