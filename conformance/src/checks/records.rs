//! What the runner recorded beside the mock's evidence: the view samples, the steps it played
//! and how each expectation went.

use std::sync::Arc;

use crate::contract::View;
use crate::obligations::ObligationId;

/// One view the runner asked for: when it asked, when the answer came, and the view.
#[derive(Debug, Clone)]
pub struct Sample {
    pub sent_ms: u64,
    pub replied_ms: u64,
    pub view: Arc<View>,
}

/// How a driver answered a step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reply", content = "detail", rename_all = "snake_case")]
pub enum StepReply {
    Ok,
    Failed(String),
    Unsupported,
    /// The runner could not play it (and why).
    NotRun(String),
}

/// A step the runner played.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepRecord {
    pub index: usize,
    pub step: crate::cases::Step,
    pub at_ms: u64,
    /// How many view samples had been taken when the step began: orders it against them
    /// where milliseconds cannot (a view read in the same millisecond came before it only
    /// if its index is below this).
    pub samples_before: usize,
    pub reply: StepReply,
}

/// How an expectation went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", content = "detail", rename_all = "snake_case")]
pub enum Met {
    At(u64),
    TimedOut(u64),
    /// The view lacks what the expectation needs.
    NotObservable(String),
    /// The case stopped before it (an earlier expectation timed out, or the driver broke).
    NotReached,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ExpectationRecord {
    pub index: usize,
    pub what: String,
    pub serves: ObligationId,
    pub started_ms: u64,
    pub met: Met,
}
