//! Playing a case's steps against the client: the recorder of view samples, steps and
//! expectations, and the sampling while the runner waits.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use mock_server::MockServer;
use mock_server::scenario::raw::RawStep;

use crate::cases::{CaseRun, Expectation, Step};
use crate::checks::{ExpectationRecord, Met, Sample, StepRecord, StepReply};
use crate::contract::{Command, Reply};
use crate::driver::{ClientUnderTest, DriverError};

/// How often the view is sampled while the runner waits.
const SAMPLE_EVERY: Duration = Duration::from_millis(40);

/// The mock clock, in ms since its server started.
pub(super) fn clock_ms(server: &MockServer) -> u64 {
    server.state().clock().now().elapsed.as_millis() as u64
}

/// The runner's record of a case in progress.
pub(super) struct Recorder<'s> {
    pub(super) server: &'s MockServer,
    pub(super) samples: Vec<Sample>,
    pub(super) steps: Vec<StepRecord>,
    pub(super) expectations: Vec<ExpectationRecord>,
    pub(super) notes: Vec<String>,
}

/// How playing the steps ended.
pub(super) enum Played {
    Done,
    /// The case could not go on (and why); later expectations were not reached.
    Stopped(String),
    Broke(DriverError),
}

impl Recorder<'_> {
    pub(super) fn now(&self) -> u64 {
        clock_ms(self.server)
    }

    async fn sample<C: ClientUnderTest>(&mut self, client: &mut C) -> Result<(), DriverError> {
        let sent_ms = self.now();
        let reply = client.call(Command::View).await?;
        let replied_ms = self.now();
        let Reply::Ok(Some(view)) = reply else {
            return Ok(());
        };
        let view = match self.samples.last() {
            Some(last) if *last.view == *view => Arc::clone(&last.view),
            _ => Arc::new(*view),
        };
        self.samples.push(Sample {
            sent_ms,
            replied_ms,
            view,
        });
        Ok(())
    }

    /// Samples until `until` (mock ms).
    pub(super) async fn hold<C: ClientUnderTest>(
        &mut self,
        client: &mut C,
        until: u64,
    ) -> Result<(), DriverError> {
        while self.now() < until {
            self.sample(client).await?;
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
        Ok(())
    }
}

/// Where a step stands: its place in the case, when it began, and the samples taken before.
struct StepAt<'s> {
    index: usize,
    step: &'s Step,
    at_ms: u64,
    samples_before: usize,
}

impl StepAt<'_> {
    /// Records the step with `reply`.
    fn record(&self, rec: &mut Recorder<'_>, reply: StepReply) {
        rec.steps.push(StepRecord {
            index: self.index,
            step: self.step.clone(),
            at_ms: self.at_ms,
            samples_before: self.samples_before,
            reply,
        });
    }
}

/// Plays the case's steps in order, sampling the view after each and while it waits.
pub(super) async fn play<C: ClientUnderTest>(
    run: &CaseRun,
    client: &mut C,
    rec: &mut Recorder<'_>,
    started_ms: u64,
) -> Played {
    for (index, step) in run.steps.iter().enumerate() {
        let at = StepAt {
            index,
            step,
            at_ms: rec.now(),
            samples_before: rec.samples.len(),
        };
        let command = match step {
            Step::Start => Command::Start {
                streaming: run.streaming,
            },
            Step::Send(text) => Command::Send { text: text.clone() },
            Step::Typing(change) => Command::Typing { state: *change },
            Step::End => Command::End,
            Step::Restart => Command::Restart,
            Step::TapSuggestion(text) => match tap_command(client, rec, &at, text).await {
                Ok(Some(command)) => command,
                Ok(None) => continue,
                Err(error) => return Played::Broke(error),
            },
            Step::HoldMs(ms) => {
                if let Err(error) = rec.hold(client, at.at_ms + ms).await {
                    return Played::Broke(error);
                }
                continue;
            }
            Step::HoldUntilMs(ms) => {
                if let Err(error) = rec.hold(client, started_ms + ms).await {
                    return Played::Broke(error);
                }
                continue;
            }
            Step::Mock(steps) => {
                let reply = push_mock_steps(rec, steps);
                at.record(rec, reply);
                continue;
            }
            Step::Expect(expectation) => match expect(client, rec, &at, expectation).await {
                ControlFlow::Continue(()) => continue,
                ControlFlow::Break(played) => return played,
            },
        };
        if let ControlFlow::Break(played) = call(client, rec, &at, command).await {
            return played;
        }
    }
    Played::Done
}

/// The command tapping suggestion `text` in the view as it is now; `None` (the step recorded
/// as not run) when the view shows no such suggestion.
async fn tap_command<C: ClientUnderTest>(
    client: &mut C,
    rec: &mut Recorder<'_>,
    at: &StepAt<'_>,
    text: &str,
) -> Result<Option<Command>, DriverError> {
    rec.sample(client).await?;
    let target = rec.samples.last().and_then(|s| {
        s.view.messages()?.iter().find_map(|m| {
            let index = m.suggestions.iter().position(|x| x == text)?;
            Some((m.message_id.clone()?, index))
        })
    });
    match target {
        Some((message_id, index)) => Ok(Some(Command::TapSuggestion { message_id, index })),
        None => {
            at.record(
                rec,
                StepReply::NotRun(format!("the view shows no suggestion `{text}` to tap")),
            );
            Ok(None)
        }
    }
}

/// Hands `steps` to the mock's newest session.
fn push_mock_steps(rec: &Recorder<'_>, steps: &[RawStep]) -> StepReply {
    let newest = rec.server.sessions().last().map(|s| s.session_id.clone());
    match newest {
        None => StepReply::NotRun("no session to play mock steps in".into()),
        Some(id) => match rec.server.push_steps(&id, steps.to_vec()) {
            Ok(()) => StepReply::Ok,
            Err(error) => StepReply::NotRun(error.to_string()),
        },
    }
}

/// Samples until `expectation` holds, cannot be observed, or times out, and records which;
/// a timeout stops the case.
async fn expect<C: ClientUnderTest>(
    client: &mut C,
    rec: &mut Recorder<'_>,
    at: &StepAt<'_>,
    expectation: &Expectation,
) -> ControlFlow<Played> {
    let met = match await_expectation(client, rec, at.at_ms, expectation).await {
        Ok(met) => met,
        Err(error) => return ControlFlow::Break(Played::Broke(error)),
    };
    let timed_out = matches!(met, Met::TimedOut(_));
    rec.expectations.push(ExpectationRecord {
        index: at.index,
        what: expectation.shows.describe(),
        serves: expectation.serves,
        started_ms: at.at_ms,
        met,
    });
    if timed_out {
        return ControlFlow::Break(Played::Stopped(format!(
            "stopped after step {}: {} never showed within {} ms",
            at.index + 1,
            expectation.shows.describe(),
            expectation.within_ms
        )));
    }
    ControlFlow::Continue(())
}

/// The sampling loop of an expectation begun at `at_ms`: how it was met, or not.
async fn await_expectation<C: ClientUnderTest>(
    client: &mut C,
    rec: &mut Recorder<'_>,
    at_ms: u64,
    expectation: &Expectation,
) -> Result<Met, DriverError> {
    let before = rec
        .samples
        .last()
        .and_then(|s| s.view.session_id.clone().flatten());
    let deadline = at_ms + expectation.within_ms;
    let mut observable = false;
    // A field a driver cannot observe stays omitted (contract §4): a few views
    // without it settle the question.
    let mut without = 0;
    loop {
        rec.sample(client).await?;
        let holds = rec
            .samples
            .last()
            .and_then(|s| expectation.shows.holds(&s.view, before.as_deref()));
        observable |= holds.is_some();
        without = if holds.is_none() { without + 1 } else { 0 };
        if holds == Some(true) {
            return Ok(Met::At(rec.now()));
        }
        if !observable && without >= 5 {
            return Ok(Met::NotObservable(format!(
                "the view has nothing `{}` could be read from",
                expectation.shows.describe()
            )));
        }
        if rec.now() >= deadline {
            return Ok(if observable {
                Met::TimedOut(rec.now())
            } else {
                Met::NotObservable(format!(
                    "the view never had what `{}` needs",
                    expectation.shows.describe()
                ))
            });
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// Sends a user step's command and records its reply, then samples the view; an unsupported
/// `start` or `send` stops the case.
async fn call<C: ClientUnderTest>(
    client: &mut C,
    rec: &mut Recorder<'_>,
    at: &StepAt<'_>,
    command: Command,
) -> ControlFlow<Played> {
    let reply = match client.call(command).await {
        Ok(Reply::Ok(_)) => StepReply::Ok,
        Ok(Reply::Failed(error)) => StepReply::Failed(error),
        Ok(Reply::Unsupported) => StepReply::Unsupported,
        Err(error) => return ControlFlow::Break(Played::Broke(error)),
    };
    let unsupported = reply == StepReply::Unsupported;
    at.record(rec, reply);
    if unsupported && matches!(at.step, Step::Start | Step::Send(_)) {
        return ControlFlow::Break(Played::Stopped(format!(
            "the driver does not support `{}`",
            command_name(at.step)
        )));
    }
    if let Err(error) = rec.sample(client).await {
        return ControlFlow::Break(Played::Broke(error));
    }
    ControlFlow::Continue(())
}

fn command_name(step: &Step) -> &'static str {
    match step {
        Step::Start => "start",
        Step::Send(_) => "send",
        Step::TapSuggestion(_) => "tap_suggestion",
        Step::Typing(_) => "typing",
        Step::End => "end",
        Step::Restart => "restart",
        _ => "a runner step",
    }
}
