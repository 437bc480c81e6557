//! Runs cases against a client under test and grades the evidence.
//!
//! Each case gets its own mock (its scenario handed over in memory), a fresh temporary working
//! directory and a fresh client. The runner plays the steps, sampling the view after every
//! step and while it waits, keeps watching for the case's settle period after the last step,
//! then ends the client; the evidence is everything up to the moment the client is gone. A
//! case runs with `--jobs` others at once.

mod grade;
mod play;

pub use grade::{Finding, Verdict, grade};
// The records of a run live with the report; these paths stay for the callers.
pub use crate::report::{
    CaseResult, TimelineEntry, ViewSpan, normalised_view, run_passes, unexpected_findings,
    ungraded_musts,
};

use std::collections::BTreeMap;
use std::time::Instant;

use futures_util::StreamExt;
use mock_server::{MockServer, StartError};
use serde::Serialize;

use crate::cases::{Case, CaseRun, Step, Tier};
use crate::checks::{Evidence, ExpectationRecord, Met};
use crate::driver::{ClientUnderTest, DriverEnv, DriverError, Launcher};
use crate::params::Params;
use crate::report::{shown, timeline, view_spans};
use play::{Played, Recorder, clock_ms, play};

/// Runs one case (with `params` drawn from `seed`) against the client `launcher` makes.
pub async fn run_case<L: Launcher>(case: &Case, params: &Params, launcher: &L) -> CaseResult {
    let started = Instant::now();
    let mut result = empty_result(case, params);
    let run = match case.instantiate(params) {
        Ok(run) => run,
        Err(error) => {
            result.driver_error = Some(format!("the case does not load: {error}"));
            return result;
        }
    };
    result.params = run.params.clone();
    result.expected = run.conversation.clone();
    let server = match launch_mock(&run, params).await {
        Ok(server) => server,
        Err(error) => {
            result.driver_error = Some(format!("the mock did not start: {error}"));
            return result;
        }
    };
    let env = driver_env(&server, &run, params);
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
        Ok(client) => {
            exit_ms = drive(client, &run, &mut rec, started_ms, &mut result).await;
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
    record_evidence(&mut result, &evidence, started_ms);
    server.shutdown().await;
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

/// The result of `case` before anything ran: its identity and the run's seed, nothing found.
fn empty_result(case: &Case, params: &Params) -> CaseResult {
    CaseResult {
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
    }
}

/// The case's own mock, serving its scenario, seeded from the run's seed and the case id.
async fn launch_mock(run: &CaseRun, params: &Params) -> Result<MockServer, StartError> {
    let mut config = run.config.clone();
    // A seed of its own per case, derived from the run's.
    config.seed = Some(params.seed() ^ fnv(&run.id));
    MockServer::launch(
        config,
        vec![(run.scenario_name.clone(), run.scenario.clone())],
        params.tls().map(|tls| tls.identity().clone()),
    )
    .await
}

/// What the client under test is told: where the mock is, its credentials, the CA to trust.
fn driver_env(server: &MockServer, run: &CaseRun, params: &Params) -> DriverEnv {
    let (connector_token, host) = server.credentials();
    DriverEnv {
        base_url: server.base_url(),
        connector_token,
        host,
        case_id: run.id.clone(),
        ca_file: params.tls().map(|tls| tls.ca_file().to_owned()),
        node_extra_ca_certs: params.tls().map(|tls| tls.node_extra_ca_certs().to_owned()),
    }
}

/// Plays the case on a launched client, holds for the settle period, then ends the client.
/// Returns the mock time the client was told to exit.
async fn drive<C: ClientUnderTest>(
    mut client: C,
    run: &CaseRun,
    rec: &mut Recorder<'_>,
    started_ms: u64,
    result: &mut CaseResult,
) -> u64 {
    let played = play(run, &mut client, rec, started_ms).await;
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
    record_unreached(run, rec);
    if result.driver_error.is_none() {
        let until = rec.now() + run.settle.as_millis() as u64;
        if let Err(error) = rec.hold(&mut client, until).await {
            result.driver_error = Some(error.to_string());
        }
    }
    let exit_ms = rec.now();
    let finished = client.finish().await;
    if let (None, Some(error)) = (&result.driver_error, &finished.error) {
        result.driver_error = Some(error.to_string());
    }
    result.driver_logs = finished.logs;
    result.driver_stderr = finished.stderr;
    if let Some(why) = unsupported_start {
        result.findings = skip_all(run, &why);
    }
    exit_ms
}

/// Not-reached expectations, for the record.
fn record_unreached(run: &CaseRun, rec: &mut Recorder<'_>) {
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
}

/// Grades the evidence (unless the case was skipped already) and keeps its readable forms.
fn record_evidence(result: &mut CaseResult, evidence: &Evidence, started_ms: u64) {
    if result.findings.is_empty() {
        result.findings = grade(evidence);
    }
    result.exercised = crate::coverage::observe(evidence);
    result.timeline = timeline(evidence, started_ms);
    result.views = view_spans(&evidence.samples, started_ms);
    result.shown = shown(evidence);
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
