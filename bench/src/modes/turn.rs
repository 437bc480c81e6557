//! `loadgen turn`: user message → echo, thinking, agent reply, against the mock only.

use clap::Args;

use super::Timing;
use super::step::{Step, loops};
use crate::load::Loop;
use crate::report::Goal;

#[derive(Debug, Args)]
pub struct TurnArgs {
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    concurrency: Vec<usize>,
    #[command(flatten)]
    timing: Timing,
}

pub fn plan(args: &TurnArgs) -> Vec<Step> {
    let TurnArgs {
        concurrency,
        timing,
    } = args;
    loops(Loop::Turn, concurrency, timing, &|_| vec![Goal::NoErrors])
}
