//! Runs cases against a client under test and grades the evidence.
//!
//! Each case gets its own mock (its scenario handed over in memory), a fresh temporary working
//! directory and a fresh client. The runner plays the steps, sampling the view after every
//! step and while it waits, keeps watching for the case's settle period after the last step,
//! then ends the client; the evidence is everything up to the moment the client is gone. A
//! case runs with `--jobs` others at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mock_server::MockServer;
use serde::Serialize;
use serde_json::Value;

use crate::cases::{Case, CaseRun, ExpectedMessage, Speaker, Step, Tier, shorten};
use crate::checks::{
    self, Evidence, ExpectationRecord, Met, Outcome, Sample, StepRecord, StepReply,
};
use crate::contract::{Command, Reply, View};
use crate::driver::{ClientUnderTest, DriverEnv, DriverError, Launcher};
use crate::obligations::{Level, ObligationId};
use crate::params::Params;

/// How often the view is sampled while the runner waits.
const SAMPLE_EVERY: Duration = Duration::from_millis(40);

/// The grade of one obligation in one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum Verdict {
    /// Kept, with the evidence.
    Pass(String),
    /// A MUST broken.
    Fail(String),
    /// A SHOULD broken.
    Warn(String),
    Skipped(String),
}

impl Verdict {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Pass(_) => "pass",
            Self::Fail(_) => "fail",
            Self::Warn(_) => "warn",
            Self::Skipped(_) => "skipped",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Self::Pass(r) | Self::Fail(r) | Self::Warn(r) | Self::Skipped(r) => r,
        }
    }

    pub fn is_broken(&self) -> bool {
        matches!(self, Self::Fail(_) | Self::Warn(_))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub obligation: ObligationId,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// One entry of a case's frame timeline (both directions, the HTTP calls, closes).
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// Milliseconds since the case started.
    pub at_ms: u64,
    /// `client` (the client sent or asked), `mock` (the mock sent or answered), `note`.
    pub lane: &'static str,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// A view the client showed, from when until when (identical samples merged).
#[derive(Debug, Clone, Serialize)]
pub struct ViewSpan {
    pub from_ms: u64,
    pub to_ms: u64,
    pub view: View,
}

/// Everything a case produced: findings, the evidence in readable form, the driver's output.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub case: String,
    pub description: String,
    pub tier: Tier,
    /// The run's seed: with it, `--only <case>` reproduces the case.
    pub seed: u64,
    pub params: BTreeMap<String, Value>,
    pub findings: Vec<Finding>,
    /// The client broke (crashed, timed out, spoke nonsense).
    pub driver_error: Option<String>,
    pub notes: Vec<String>,
    pub duration_ms: u64,
    pub timeline: Vec<TimelineEntry>,
    pub views: Vec<ViewSpan>,
    /// The conversation the app had to show, and what it showed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Vec<ExpectedMessage>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shown: Option<Vec<ExpectedMessage>>,
    pub driver_logs: Vec<String>,
    pub driver_stderr: String,
    /// The cells of the coverage matrix the case exercised.
    #[serde(skip)]
    pub exercised: crate::coverage::Observed,
}

impl CaseResult {
    /// Broke a MUST, or the driver broke.
    pub fn failed(&self) -> bool {
        self.driver_error.is_some()
            || self
                .findings
                .iter()
                .any(|f| matches!(f.verdict, Verdict::Fail(_)))
    }

    pub fn warned(&self) -> bool {
        self.findings
            .iter()
            .any(|f| matches!(f.verdict, Verdict::Warn(_)))
    }

    pub fn verdicts_of(&self, obligation: ObligationId) -> Vec<&Verdict> {
        self.findings
            .iter()
            .filter(|f| f.obligation == obligation)
            .map(|f| &f.verdict)
            .collect()
    }
}

fn verdict(id: ObligationId, outcome: Outcome) -> Verdict {
    match outcome {
        Outcome::Kept(why) => Verdict::Pass(why),
        Outcome::NotObservable(reason) => Verdict::Skipped(format!("not observable: {reason}")),
        Outcome::Broken(reason) => match id.level() {
            Level::Should => Verdict::Warn(reason),
            Level::Must | Level::MustNot => Verdict::Fail(reason),
        },
    }
}

/// The stage of the protocol a client never got past, if any: the obligation that stage
/// serves and what happened. A timed-out expectation is blamed on it rather than on the
/// obligation it serves (a client without `X-Host` breaks AUTH-1, not fifteen others).
fn stall_point(e: &Evidence) -> Option<(ObligationId, String)> {
    use mock_server::http_log::Endpoint;
    if e.starts().is_empty() {
        return None;
    }
    let armed = |status: u16| status == 429 || status >= 500;
    let stage = |endpoint: Endpoint, obligation: ObligationId, what: &str| {
        let calls = e.http_of(endpoint);
        let ok = if endpoint == Endpoint::WebSocket {
            101
        } else {
            200
        };
        if calls.is_empty() {
            return Some((obligation, format!("the client never {what}")));
        }
        if calls.iter().any(|c| c.status == ok) {
            return None;
        }
        let last = calls.last()?;
        let blamed = if armed(last.status) && endpoint != Endpoint::WebSocket {
            ObligationId::Auth5
        } else {
            obligation
        };
        (last.status != 503).then(|| {
            (
                blamed,
                format!(
                    "every attempt to {what} was refused (last: {} {})",
                    last.status,
                    last.error.as_deref().unwrap_or_default()
                ),
            )
        })
    };
    stage(
        Endpoint::AccessToken,
        ObligationId::Auth1,
        "got an access token",
    )
    .or_else(|| stage(Endpoint::Sessions, ObligationId::Auth2, "created a session"))
    .or_else(|| stage(Endpoint::WebSocket, ObligationId::Ws1, "opened the socket"))
    .or_else(|| {
        let joined = e
            .sessions
            .first()
            .is_some_and(|s| !s.sent_of(checks::JOIN).is_empty());
        (!joined).then(|| (ObligationId::Ws3, "the client never joined".to_owned()))
    })
}

/// Obligations whose failure leaves another without evidence: a client that never resumes its
/// session after a drop (RC-1) cannot run out of attempts (RC-4), back off (RC-3), show what
/// the session said after the drop, or survive an error only the replay carried (ERR-1); one
/// that ignores batches (MSG-1) cannot show what only a batch carried, beside an unknown event
/// (ERR-2) or not, an end included (UX-4); one that assembles streams wrongly (MSG-4) cannot show
/// the conversation (MSG-3).
fn prerequisites(of: ObligationId) -> &'static [ObligationId] {
    use ObligationId::{Err1, Err2, Msg1, Msg3, Msg4, Rc1, Rc3, Rc4, Ux4};
    match of {
        Rc3 | Rc4 | Msg1 | Err1 => &[Rc1],
        Msg4 | Err2 | Ux4 => &[Rc1, Msg1],
        Msg3 => &[Rc1, Msg1, Msg4],
        _ => &[],
    }
}

/// Grades every obligation the case checks, plus the one a missed expectation blames.
pub fn grade(e: &Evidence) -> Vec<Finding> {
    let mut outcomes: BTreeMap<ObligationId, Outcome> = e
        .case
        .checks
        .iter()
        .map(|id| (*id, checks::judge(*id, e)))
        // The kit's own additions speak only where the case left them evidence.
        .filter(|(id, outcome)| {
            !(e.case.added_checks.contains(id) && matches!(outcome, Outcome::NotObservable(_)))
        })
        .collect();
    let stalled = stall_point(e);
    // A client that gave up its socket for good mid-conversation (ERR-1's or ERR-2's to say
    // why) shows nothing after: what it then never showed is theirs.
    let quit = e
        .conversation_session()
        .and_then(|s| e.client_quit_at(s))
        .and_then(|at| {
            [ObligationId::Err1, ObligationId::Err2]
                .into_iter()
                .find(|id| matches!(outcomes.get(id), Some(Outcome::Broken(_))))
                .map(|id| (at, id))
        });
    for missed in e
        .expectations
        .iter()
        .filter(|x| matches!(x.met, Met::TimedOut(_)))
    {
        let gave_up = quit.filter(|(at, _)| matches!(missed.met, Met::TimedOut(t) if *at < t));
        let (blamed, why) = match (&stalled, gave_up) {
            (Some((stage, why)), _) => (*stage, why.clone()),
            (None, Some((_, id))) => (id, format!("the app never showed {}", missed.what)),
            (None, None) => {
                let own_broken = matches!(outcomes.get(&missed.serves), Some(Outcome::Broken(_)));
                let before = prerequisites(missed.serves)
                    .iter()
                    .copied()
                    .find(|p| !own_broken && matches!(outcomes.get(p), Some(Outcome::Broken(_))));
                (
                    before.unwrap_or(missed.serves),
                    format!("the app never showed {}", missed.what),
                )
            }
        };
        let entry = outcomes
            .entry(blamed)
            .or_insert_with(|| checks::judge(blamed, e));
        *entry = match entry.clone() {
            Outcome::Broken(reason) if reason.contains(&why) => Outcome::Broken(reason),
            Outcome::Broken(reason) => Outcome::Broken(format!("{reason}; {why}")),
            _ => Outcome::Broken(why),
        };
    }
    outcomes
        .into_iter()
        .map(|(id, outcome)| Finding {
            obligation: id,
            verdict: verdict(id, outcome),
        })
        .collect()
}

/// The mock clock, in ms since its server started.
fn clock_ms(server: &MockServer) -> u64 {
    server.state().clock().now().elapsed.as_millis() as u64
}

/// The runner's record of a case in progress.
struct Recorder<'s> {
    server: &'s MockServer,
    samples: Vec<Sample>,
    steps: Vec<StepRecord>,
    expectations: Vec<ExpectationRecord>,
    notes: Vec<String>,
}

/// How playing the steps ended.
enum Played {
    Done,
    /// The case could not go on (and why); later expectations were not reached.
    Stopped(String),
    Broke(DriverError),
}

impl Recorder<'_> {
    fn now(&self) -> u64 {
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
    async fn hold<C: ClientUnderTest>(
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

async fn play<C: ClientUnderTest>(
    run: &CaseRun,
    client: &mut C,
    rec: &mut Recorder<'_>,
    started_ms: u64,
) -> Played {
    for (index, step) in run.steps.iter().enumerate() {
        let at_ms = rec.now();
        let samples_before = rec.samples.len();
        let command = match step {
            Step::Start => Command::Start {
                streaming: run.streaming,
            },
            Step::Send(text) => Command::Send { text: text.clone() },
            Step::Typing(change) => Command::Typing { state: *change },
            Step::End => Command::End,
            Step::Restart => Command::Restart,
            Step::TapSuggestion(text) => {
                if let Err(error) = rec.sample(client).await {
                    return Played::Broke(error);
                }
                let target = rec.samples.last().and_then(|s| {
                    s.view.messages()?.iter().find_map(|m| {
                        let index = m.suggestions.iter().position(|x| x == text)?;
                        Some((m.message_id.clone()?, index))
                    })
                });
                match target {
                    Some((message_id, index)) => Command::TapSuggestion { message_id, index },
                    None => {
                        rec.steps.push(StepRecord {
                            index,
                            step: step.clone(),
                            at_ms,
                            samples_before,
                            reply: StepReply::NotRun(format!(
                                "the view shows no suggestion `{text}` to tap"
                            )),
                        });
                        continue;
                    }
                }
            }
            Step::HoldMs(ms) => {
                if let Err(error) = rec.hold(client, at_ms + ms).await {
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
                let newest = rec.server.sessions().last().map(|s| s.session_id.clone());
                let reply = match newest {
                    None => StepReply::NotRun("no session to play mock steps in".into()),
                    Some(id) => match rec.server.push_steps(&id, steps.clone()) {
                        Ok(()) => StepReply::Ok,
                        Err(error) => StepReply::NotRun(error.to_string()),
                    },
                };
                rec.steps.push(StepRecord {
                    index,
                    step: step.clone(),
                    at_ms,
                    samples_before,
                    reply,
                });
                continue;
            }
            Step::Expect(expectation) => {
                let before = rec
                    .samples
                    .last()
                    .and_then(|s| s.view.session_id.clone().flatten());
                let deadline = at_ms + expectation.within_ms;
                let mut observable = false;
                // A field a driver cannot observe stays omitted (contract §4): a few views
                // without it settle the question.
                let mut without = 0;
                let met = loop {
                    if let Err(error) = rec.sample(client).await {
                        return Played::Broke(error);
                    }
                    let holds = rec
                        .samples
                        .last()
                        .and_then(|s| expectation.shows.holds(&s.view, before.as_deref()));
                    observable |= holds.is_some();
                    without = if holds.is_none() { without + 1 } else { 0 };
                    if holds == Some(true) {
                        break Met::At(rec.now());
                    }
                    if !observable && without >= 5 {
                        break Met::NotObservable(format!(
                            "the view has nothing `{}` could be read from",
                            expectation.shows.describe()
                        ));
                    }
                    if rec.now() >= deadline {
                        break if observable {
                            Met::TimedOut(rec.now())
                        } else {
                            Met::NotObservable(format!(
                                "the view never had what `{}` needs",
                                expectation.shows.describe()
                            ))
                        };
                    }
                    tokio::time::sleep(SAMPLE_EVERY).await;
                };
                let timed_out = matches!(met, Met::TimedOut(_));
                rec.expectations.push(ExpectationRecord {
                    index,
                    what: expectation.shows.describe(),
                    serves: expectation.serves,
                    started_ms: at_ms,
                    met,
                });
                if timed_out {
                    return Played::Stopped(format!(
                        "stopped after step {}: {} never showed within {} ms",
                        index + 1,
                        expectation.shows.describe(),
                        expectation.within_ms
                    ));
                }
                continue;
            }
        };
        let reply = match client.call(command).await {
            Ok(Reply::Ok(_)) => StepReply::Ok,
            Ok(Reply::Failed(error)) => StepReply::Failed(error),
            Ok(Reply::Unsupported) => StepReply::Unsupported,
            Err(error) => return Played::Broke(error),
        };
        let unsupported = reply == StepReply::Unsupported;
        rec.steps.push(StepRecord {
            index,
            step: step.clone(),
            at_ms,
            samples_before,
            reply,
        });
        if unsupported && matches!(step, Step::Start | Step::Send(_)) {
            return Played::Stopped(format!(
                "the driver does not support `{}`",
                command_name(step)
            ));
        }
        if let Err(error) = rec.sample(client).await {
            return Played::Broke(error);
        }
    }
    Played::Done
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

/// Runs one case (with `params` drawn from `seed`) against the client `launcher` makes.
pub async fn run_case<L: Launcher>(case: &Case, params: &Params, launcher: &L) -> CaseResult {
    let started = Instant::now();
    let mut result = CaseResult {
        case: case.id.clone(),
        description: case.description.clone(),
        tier: case.tier,
        seed: params.seed(),
        params: BTreeMap::new(),
        findings: Vec::new(),
        driver_error: None,
        notes: Vec::new(),
        duration_ms: 0,
        timeline: Vec::new(),
        views: Vec::new(),
        expected: None,
        shown: None,
        driver_logs: Vec::new(),
        driver_stderr: String::new(),
        exercised: crate::coverage::Observed::default(),
    };
    let run = match case.instantiate(params) {
        Ok(run) => run,
        Err(error) => {
            result.driver_error = Some(format!("the case does not load: {error}"));
            return result;
        }
    };
    result.params = run.params.clone();
    result.expected = run.conversation.clone();
    let mut config = run.config.clone();
    // A seed of its own per case, derived from the run's.
    config.seed = Some(params.seed() ^ fnv(&run.id));
    let server = match MockServer::launch(
        config,
        vec![(run.scenario_name.clone(), run.scenario.clone())],
        params.tls().map(|tls| tls.identity().clone()),
    )
    .await
    {
        Ok(server) => server,
        Err(error) => {
            result.driver_error = Some(format!("the mock did not start: {error}"));
            return result;
        }
    };
    let (connector_token, host) = server.credentials();
    let env = DriverEnv {
        base_url: server.base_url(),
        connector_token,
        host,
        case_id: run.id.clone(),
        ca_file: params.tls().map(|tls| tls.ca_file().to_owned()),
        node_extra_ca_certs: params.tls().map(|tls| tls.node_extra_ca_certs().to_owned()),
    };
    let workdir = match tempfile::Builder::new()
        .prefix(&format!("conformance-{}-", run.id))
        .tempdir()
    {
        Ok(dir) => dir,
        Err(error) => {
            result.driver_error = Some(format!("no working directory: {error}"));
            server.shutdown().await;
            return result;
        }
    };
    let started_ms = clock_ms(&server);
    let mut exit_ms = u64::MAX;
    let mut rec = Recorder {
        server: &server,
        samples: Vec::new(),
        steps: Vec::new(),
        expectations: Vec::new(),
        notes: Vec::new(),
    };
    match launcher.launch(env, workdir.path()).await {
        Err(DriverError::NotImplemented) => {
            result.findings = skip_all(&run, "the driver cannot run this case (exit 89)");
        }
        Err(error) => result.driver_error = Some(error.to_string()),
        Ok(mut client) => {
            let played = play(&run, &mut client, &mut rec, started_ms).await;
            let mut unsupported_start = None;
            match &played {
                Played::Done => {}
                Played::Stopped(why) => {
                    rec.notes.push(why.clone());
                    if why.contains("does not support") {
                        unsupported_start = Some(why.clone());
                    }
                }
                Played::Broke(error) => result.driver_error = Some(error.to_string()),
            }
            // Not-reached expectations, for the record.
            let reached: Vec<usize> = rec.expectations.iter().map(|x| x.index).collect();
            for (index, step) in run.steps.iter().enumerate() {
                if let Step::Expect(x) = step
                    && !reached.contains(&index)
                {
                    rec.expectations.push(ExpectationRecord {
                        index,
                        what: x.shows.describe(),
                        serves: x.serves,
                        started_ms: 0,
                        met: Met::NotReached,
                    });
                }
            }
            if result.driver_error.is_none() {
                let until = rec.now() + run.settle.as_millis() as u64;
                if let Err(error) = rec.hold(&mut client, until).await {
                    result.driver_error = Some(error.to_string());
                }
            }
            exit_ms = rec.now();
            let finished = client.finish().await;
            if let (None, Some(error)) = (&result.driver_error, &finished.error) {
                result.driver_error = Some(error.to_string());
            }
            result.driver_logs = finished.logs;
            result.driver_stderr = finished.stderr;
            if let Some(why) = unsupported_start {
                result.findings = skip_all(&run, &why);
            }
        }
    }
    let evidence = Evidence::gather(
        run,
        &server,
        std::mem::take(&mut rec.samples),
        std::mem::take(&mut rec.steps),
        std::mem::take(&mut rec.expectations),
        exit_ms,
    );
    result.notes.append(&mut rec.notes);
    if result.findings.is_empty() {
        result.findings = grade(&evidence);
    }
    result.exercised = crate::coverage::observe(&evidence);
    result.timeline = timeline(&evidence, started_ms);
    result.views = view_spans(&evidence.samples, started_ms);
    // Messages, then system messages: the order the report's diff lays the expected out in.
    result.shown = evidence.final_view().and_then(|v| {
        v.messages().map(|ms| {
            let system = v.system_messages.iter().flatten().map(|m| ExpectedMessage {
                from: Speaker::System,
                text: m.message.clone(),
            });
            ms.iter()
                .map(|m| ExpectedMessage {
                    from: m.from.into(),
                    text: m.text.clone(),
                })
                .chain(system)
                .collect()
        })
    });
    server.shutdown().await;
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

fn skip_all(run: &CaseRun, reason: &str) -> Vec<Finding> {
    run.checks
        .iter()
        .map(|id| Finding {
            obligation: *id,
            verdict: Verdict::Skipped(reason.to_owned()),
        })
        .collect()
}

/// FNV-1a of a case id: spreads the run's seed over the cases.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Both directions of every session, the HTTP calls, closes and the steps, in time order.
fn timeline(e: &Evidence, origin: u64) -> Vec<TimelineEntry> {
    use mock_server::journal::JournalEvent;
    let rel = |at: u64| at.saturating_sub(origin);
    let mut out = Vec::new();
    for call in &e.http {
        out.push(TimelineEntry {
            at_ms: rel(call.at_ms),
            lane: "client",
            summary: format!(
                "{} {} → {}{}",
                if call.endpoint == mock_server::http_log::Endpoint::WebSocket {
                    "GET"
                } else {
                    "POST"
                },
                call.endpoint.path(),
                call.status,
                call.error
                    .as_deref()
                    .map(|e| format!(" {e}"))
                    .unwrap_or_default()
            ),
            detail: serde_json::to_value(&call.request).ok(),
        });
    }
    for session in &e.sessions {
        for entry in &session.journal {
            let (lane, summary, detail) = match &entry.event {
                JournalEvent::ClientFrame {
                    frame,
                    text,
                    error,
                    conn,
                    ..
                } => {
                    let value = frame
                        .as_ref()
                        .and_then(|f| serde_json::from_str::<Value>(f.get()).ok());
                    let kind = value
                        .as_ref()
                        .map(|v| {
                            checks::event_type(v)
                                .trim_start_matches("EVENT_TYPE_")
                                .to_owned()
                        })
                        .unwrap_or_else(|| "(not JSON)".into());
                    let error = error
                        .as_deref()
                        .map(|e| format!(" — {e}"))
                        .unwrap_or_default();
                    (
                        "client",
                        format!("#{conn} {kind}{error}"),
                        value.or_else(|| text.clone().map(Value::String)),
                    )
                }
                JournalEvent::ServerFrame { frame, conn } => {
                    let value: Value = serde_json::from_str(frame.get()).unwrap_or_default();
                    let kind = checks::event_type(&value).trim_start_matches("EVENT_TYPE_");
                    let text = value["payload"]["text"]
                        .as_str()
                        .map(|t| format!(" `{}`", shorten(t)))
                        .unwrap_or_default();
                    let to = conn.map_or_else(|| "all".to_owned(), |c| format!("#{c}"));
                    ("mock", format!("→{to} {kind}{text}"), Some(value))
                }
                JournalEvent::Close { conn, code, by } => (
                    "note",
                    format!(
                        "#{} closed by {by:?} ({})",
                        conn.unwrap_or_default(),
                        code.map_or_else(|| "no close frame".into(), |c| c.to_string())
                    ),
                    None,
                ),
                JournalEvent::Fault { fault } => ("note", format!("fault {fault}"), None),
                JournalEvent::Timer { what } => ("note", what.clone(), None),
                JournalEvent::Control { action } => ("note", action.clone(), None),
                // REST calls and handshakes are in the HTTP log already.
                JournalEvent::Http { .. } | JournalEvent::Handshake { .. } => continue,
            };
            out.push(TimelineEntry {
                at_ms: rel(entry.at_ms),
                lane,
                summary,
                detail,
            });
        }
    }
    for step in &e.steps {
        out.push(TimelineEntry {
            at_ms: rel(step.at_ms),
            lane: "note",
            summary: format!(
                "user: {} ({})",
                serde_json::to_string(&step.step).unwrap_or_default(),
                match &step.reply {
                    StepReply::Ok => "ok".to_owned(),
                    StepReply::Failed(e) => format!("failed: {e}"),
                    StepReply::Unsupported => "unsupported".to_owned(),
                    StepReply::NotRun(why) => format!("not run: {why}"),
                }
            ),
            detail: None,
        });
    }
    out.sort_by_key(|t| t.at_ms);
    out
}

/// The view timeline: consecutive identical samples merged.
fn view_spans(samples: &[Sample], origin: u64) -> Vec<ViewSpan> {
    let mut out: Vec<ViewSpan> = Vec::new();
    for sample in samples {
        let at = sample.replied_ms.saturating_sub(origin);
        match out.last_mut() {
            Some(last) if last.view == *sample.view => last.to_ms = at,
            _ => out.push(ViewSpan {
                from_ms: at,
                to_ms: at,
                view: (*sample.view).clone(),
            }),
        }
    }
    out
}

/// What a run plays: the catalogue's cases of a tier, or generated sessions only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunProfile {
    /// No deliberate waiting: a few seconds.
    Quick,
    /// Every obligation the contract makes observable, each timing obligation under two draws.
    Full,
    /// Also what takes the spec's long timers (the 30 s backoff cap, the 30 s heartbeat).
    Thorough,
    /// Generated sessions only (12 unless `--generative` says how many).
    Generative,
}

impl RunProfile {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Full => "full",
            Self::Thorough => "thorough",
            Self::Generative => "generative",
        }
    }

    /// The catalogue tier it runs, if any.
    pub fn tier(self) -> Option<Tier> {
        match self {
            Self::Quick => Some(Tier::Quick),
            Self::Full => Some(Tier::Full),
            Self::Thorough => Some(Tier::Thorough),
            Self::Generative => None,
        }
    }
}

/// The cases of `profile` (and matching `only`, when given), in catalogue order.
pub fn select<'c>(cases: &'c [Case], profile: Tier, only: &[String]) -> Vec<&'c Case> {
    cases
        .iter()
        .filter(|c| profile.includes(c.tier))
        .filter(|c| only.is_empty() || only.iter().any(|o| c.id.contains(o.as_str())))
        .collect()
}

/// Runs `cases` with up to `jobs` at once; `progress` hears of each as it finishes. Results
/// come back in the order of `cases`.
/// How many cases a run plays at once unless `--jobs` says: four per core. Cases mostly wait
/// (backoff, heartbeats, resends), so a core stays busy with four.
pub fn default_jobs() -> usize {
    4 * std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
}

pub async fn run_cases<L: Launcher>(
    cases: &[&Case],
    params: &Params,
    launcher: &L,
    jobs: usize,
    progress: impl Fn(&CaseResult, usize, usize),
) -> Vec<CaseResult> {
    // Longest first (thorough, then full, then quick), so the slowest do not finish last alone.
    let mut order: Vec<usize> = (0..cases.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(cases[*i].tier));
    let total = cases.len();
    let mut done = 0;
    let mut results: Vec<Option<CaseResult>> = vec![None; total];
    let mut running = futures_util::stream::iter(order)
        .map(|i| async move { (i, run_case(cases[i], params, launcher).await) })
        .buffer_unordered(jobs.max(1));
    while let Some((i, result)) = running.next().await {
        done += 1;
        progress(&result, done, total);
        results[i] = Some(result);
    }
    results.into_iter().flatten().collect()
}

/// MUSTs the contract makes observable that a run's cases check but never graded (every
/// verdict skipped): each with the reasons. A run with any fails.
pub fn ungraded_musts(results: &[CaseResult]) -> Vec<(ObligationId, Vec<String>)> {
    let mut out = Vec::new();
    for obligation in crate::obligations::OBLIGATIONS {
        if obligation.level != Level::Must || !obligation.id.observable() {
            continue;
        }
        let verdicts: Vec<(&str, &Verdict)> = results
            .iter()
            .flat_map(|r| {
                r.verdicts_of(obligation.id)
                    .into_iter()
                    .map(move |v| (r.case.as_str(), v))
            })
            .collect();
        if verdicts.is_empty()
            || verdicts
                .iter()
                .any(|(_, v)| !matches!(v, Verdict::Skipped(_)))
        {
            continue;
        }
        let mut reasons: Vec<String> = verdicts
            .iter()
            .map(|(case, v)| format!("{case}: {}", v.reason()))
            .collect();
        reasons.dedup();
        out.push((obligation.id, reasons));
    }
    out
}

/// Every finding of `results` that is neither a pass nor a skip with its reason, and every
/// driver error, one line each with its case (a strict, silent run has none). AUTH-4 and
/// SEC-1, which no mock can see, must be skipped.
pub fn unexpected_findings(results: &[CaseResult]) -> Vec<String> {
    let mut out = Vec::new();
    for result in results {
        if let Some(error) = &result.driver_error {
            out.push(format!("{}: driver error {error}", result.case));
        }
        for finding in &result.findings {
            let fine = match &finding.verdict {
                Verdict::Pass(_) => finding.obligation.observable(),
                Verdict::Skipped(_) => true,
                Verdict::Fail(_) | Verdict::Warn(_) => false,
            };
            if !fine {
                out.push(format!(
                    "{}: {} {:?} (notes {:?})",
                    result.case, finding.obligation, finding.verdict, result.notes
                ));
            }
        }
    }
    out
}

/// Whether a run passes: no failed case, no ungraded MUST (and with `strict`, no warning).
pub fn run_passes(results: &[CaseResult], strict: bool) -> bool {
    !results.iter().any(CaseResult::failed)
        && ungraded_musts(results).is_empty()
        && !(strict && results.iter().any(CaseResult::warned))
}

/// What the app showed, without what differs run to run or client to client: ids become
/// placeholders, typing indicators (a moment's state) are left out.
pub fn normalised_view(view: &View) -> Value {
    let mut value = serde_json::to_value(view).unwrap_or_default();
    if let Value::Object(map) = &mut value {
        map.shift_remove("typing");
        if map.get("session_id").is_some_and(|s| !s.is_null()) {
            map.insert("session_id".into(), "[session]".into());
        }
        let mut ids: Vec<String> = Vec::new();
        if let Some(Value::Array(messages)) = map.get_mut("messages") {
            for message in messages {
                if let Some(id) = message
                    .get("message_id")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                {
                    let n = ids.iter().position(|x| *x == id).unwrap_or_else(|| {
                        ids.push(id);
                        ids.len() - 1
                    });
                    message["message_id"] = format!("[message-{}]", n + 1).into();
                }
            }
        }
    }
    value
}
