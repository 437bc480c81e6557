//! `loadgen idle`: N sessions held open after one exchange each, their RSS, its targets.

use clap::Args;

use super::step::Step;
use crate::client::Warmup;
use crate::report::Goal;

#[derive(Debug, Args)]
pub struct IdleArgs {
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// `heartbeat`: replay and one heartbeat (an idle session); `turn`: join, greeting
    /// and one user turn (a full-protocol session).
    #[arg(long, value_enum, default_value = "heartbeat")]
    exchange: Exchange,
    #[arg(long, default_value_t = 3)]
    pairs: usize,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Exchange {
    Heartbeat,
    Turn,
}

pub fn plan(args: &IdleArgs) -> Vec<Step> {
    let IdleArgs {
        sessions,
        exchange,
        pairs,
    } = args;
    let warmup = match exchange {
        Exchange::Heartbeat => Warmup::Heartbeat,
        Exchange::Turn => Warmup::Turn,
    };
    vec![Step::Idle {
        sessions: *sessions,
        warmup,
        pairs: *pairs,
        goals: idle_goals(*sessions, warmup),
    }]
}

pub fn idle_goals(sessions: usize, warmup: Warmup) -> Vec<Goal> {
    match (sessions, warmup) {
        (10_000, Warmup::Heartbeat) => vec![Goal::MockAtMost {
            metric: "rss_per_session_kib",
            value: 16.0,
        }],
        (10_000, _) => vec![
            Goal::MockAtMost {
                metric: "rss_total_mib",
                value: 200.0,
            },
            Goal::NoErrors,
        ],
        _ => vec![],
    }
}
