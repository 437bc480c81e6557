//! Runs cases against a client under test and grades the evidence.

use std::future::Future;
use std::time::{Duration, Instant};

use mock_server::{Config, MockServer};
use serde::Serialize;

use crate::catalogue::{Case, Step};
use crate::checks::{Evidence, Outcome};
use crate::contract::{Command, Reply, View};
use crate::driver::{ClientUnderTest, DriverEnv, DriverError};
use crate::obligations::{Level, obligation};

/// The grade of one obligation in one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// A MUST broken.
    Fail(String),
    /// A SHOULD broken.
    Warn(String),
    Skipped(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub obligation: &'static str,
    #[serde(flatten)]
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub case: &'static str,
    pub scenario: &'static str,
    pub findings: Vec<Finding>,
    /// The client broke (crashed, timed out, spoke nonsense).
    pub driver_error: Option<String>,
    pub notes: Vec<String>,
    pub duration_ms: u64,
    /// Both directions of every session, as the mock journaled them: `[dir, frame]` pairs.
    pub transcript: Vec<serde_json::Value>,
    /// The client's final view.
    pub view: Option<View>,
}

impl CaseResult {
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

    pub fn verdict_of(&self, obligation: &str) -> Vec<&Verdict> {
        self.findings
            .iter()
            .filter(|f| f.obligation == obligation)
            .map(|f| &f.verdict)
            .collect()
    }
}

fn grade(obligation_id: &'static str, outcome: Outcome) -> Finding {
    let level = obligation(obligation_id).map_or(Level::Must, |o| o.level);
    let verdict = match outcome {
        Outcome::Kept => Verdict::Pass,
        Outcome::NotObservable(reason) => Verdict::Skipped(format!("not observable: {reason}")),
        Outcome::Broken(reason) => match level {
            Level::Should => Verdict::Warn(reason),
            Level::Must | Level::MustNot => Verdict::Fail(reason),
        },
    };
    Finding {
        obligation: obligation_id,
        verdict,
    }
}

fn skipped_all(case: &Case, reason: &str) -> Vec<Finding> {
    case.checks
        .iter()
        .map(|(id, _)| Finding {
            obligation: id,
            verdict: Verdict::Skipped(reason.to_owned()),
        })
        .collect()
}

/// How a case's steps ended.
enum Played {
    Done,
    Unsupported(String),
    Broke(DriverError),
}

async fn view<C: ClientUnderTest>(client: &mut C) -> Result<Option<View>, DriverError> {
    Ok(match client.call(Command::View).await? {
        Reply::Ok(view) => view.map(|v| *v),
        _ => None,
    })
}

async fn play<C: ClientUnderTest>(
    case: &Case,
    client: &mut C,
    notes: &mut Vec<String>,
    observed: &mut Vec<(&'static str, bool)>,
) -> Played {
    for step in &case.steps {
        let command = match step {
            Step::Start => Command::Start {
                streaming: case.streaming,
            },
            Step::Send(text) => Command::Send {
                text: (*text).to_owned(),
            },
            Step::End => Command::End,
            Step::Sleep(ms) => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                continue;
            }
            Step::TapFirstSuggestion => {
                let current = match view(client).await {
                    Ok(v) => v,
                    Err(error) => return Played::Broke(error),
                };
                let first = current
                    .and_then(|v| v.messages)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|m| m.from == "agent" && !m.suggestions.is_empty());
                let Some(message_id) = first.and_then(|m| m.message_id) else {
                    return Played::Unsupported("the view shows no suggestion to tap".into());
                };
                Command::TapSuggestion {
                    message_id,
                    index: 0,
                }
            }
            Step::Observe(what, ms, shown) => {
                let deadline = Instant::now() + Duration::from_millis(*ms);
                let mut seen = false;
                while !seen && Instant::now() < deadline {
                    match view(client).await {
                        Ok(Some(v)) => seen = shown(&v),
                        Ok(None) => {}
                        Err(error) => return Played::Broke(error),
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                observed.push((what, seen));
                continue;
            }
            Step::WaitFor(what, done) => {
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    match view(client).await {
                        Ok(Some(v)) if done(&v) => break,
                        Ok(_) if Instant::now() > deadline => {
                            notes.push(format!("gave up waiting for {what}"));
                            break;
                        }
                        Ok(_) => tokio::time::sleep(Duration::from_millis(25)).await,
                        Err(error) => return Played::Broke(error),
                    }
                }
                continue;
            }
        };
        match client.call(command.clone()).await {
            Ok(Reply::Ok(_)) => {}
            Ok(Reply::Failed(error)) => notes.push(format!("{command:?} failed: {error}")),
            Ok(Reply::Unsupported) => {
                return Played::Unsupported(format!("the driver does not support {command:?}"));
            }
            Err(error) => return Played::Broke(error),
        }
    }
    Played::Done
}

fn transcript(evidence: &Evidence) -> Vec<serde_json::Value> {
    use mock_server::journal::JournalEvent;
    let mut out = Vec::new();
    for (summary, journal) in &evidence.sessions {
        out.push(serde_json::json!(["session", summary.session_id]));
        for entry in journal {
            let line = match &entry.event {
                JournalEvent::ClientFrame {
                    frame: Some(frame), ..
                } => {
                    serde_json::json!([
                        "→",
                        serde_json::from_str::<serde_json::Value>(frame.get()).unwrap_or_default()
                    ])
                }
                JournalEvent::ClientFrame { text, error, .. } => {
                    serde_json::json!(["→", text, error])
                }
                JournalEvent::ServerFrame { frame, .. } => {
                    serde_json::json!([
                        "←",
                        serde_json::from_str::<serde_json::Value>(frame.get()).unwrap_or_default()
                    ])
                }
                other => serde_json::json!(["·", serde_json::to_value(other).unwrap_or_default()]),
            };
            out.push(line);
        }
    }
    out
}

/// Runs `case` against a fresh mock and the client `launch` makes for it.
pub async fn run_case<C, F, Fut>(case: &Case, launch: F) -> CaseResult
where
    C: ClientUnderTest,
    F: FnOnce(DriverEnv) -> Fut,
    Fut: Future<Output = Result<C, DriverError>>,
{
    run_case_seeded(case, None, launch).await
}

/// [`run_case`] with the mock's ids and random choices drawn from `seed`.
pub async fn run_case_seeded<C, F, Fut>(case: &Case, seed: Option<u64>, launch: F) -> CaseResult
where
    C: ClientUnderTest,
    F: FnOnce(DriverEnv) -> Fut,
    Fut: Future<Output = Result<C, DriverError>>,
{
    let started = Instant::now();
    let mut result = CaseResult {
        case: case.id,
        scenario: case.scenario,
        findings: Vec::new(),
        driver_error: None,
        notes: Vec::new(),
        duration_ms: 0,
        transcript: Vec::new(),
        view: None,
    };
    let mut config = Config {
        seed,
        ..Config::default()
    };
    (case.mock)(&mut config);
    let server = match MockServer::start_with(config).await {
        Ok(server) => server,
        Err(error) => {
            result.driver_error = Some(format!("the mock did not start: {error}"));
            return result;
        }
    };
    let (_, host) = server.credentials();
    let env = DriverEnv {
        base_url: server.base_url(),
        connector_token: format!("scenario:{}", case.scenario),
        host,
        case_id: case.id.to_owned(),
    };
    let mut observed = Vec::new();
    match launch(env).await {
        Err(DriverError::NotImplemented) => {
            result.findings = skipped_all(case, "the driver cannot run this case (exit 89)")
        }
        Err(error) => result.driver_error = Some(error.to_string()),
        Ok(mut client) => match play(case, &mut client, &mut result.notes, &mut observed).await {
            Played::Broke(error) => result.driver_error = Some(error.to_string()),
            Played::Unsupported(reason) => result.findings = skipped_all(case, &reason),
            Played::Done => {
                let final_view = view(&mut client).await.unwrap_or(None);
                // The evidence is taken before `exit`: tearing the client down is not part of
                // the conversation being graded.
                let sessions = server.sessions_with_journals();
                let _ = client.call(Command::Exit).await;
                let evidence = Evidence {
                    sessions,
                    view: final_view,
                    observed: std::mem::take(&mut observed),
                    rest_calls: server.http_calls(),
                };
                result.findings = case
                    .checks
                    .iter()
                    .map(|(id, check)| grade(id, check(&evidence)))
                    .collect();
                result.transcript = transcript(&evidence);
                result.view = evidence.view;
            }
        },
    }
    server.shutdown().await;
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

/// What the app showed, without what differs run to run or client to client: ids become
/// placeholders (message ids numbered by first appearance), and the typing indicators (a
/// moment's state) are left out. Every conformant client shows the same normalised view.
pub fn normalised_view(view: &View) -> serde_json::Value {
    let mut value = serde_json::to_value(view).unwrap_or_default();
    if let serde_json::Value::Object(map) = &mut value {
        map.shift_remove("typing");
        if map.get("session_id").is_some_and(|s| !s.is_null()) {
            map.insert("session_id".into(), "[session]".into());
        }
        let mut ids: Vec<String> = Vec::new();
        if let Some(serde_json::Value::Array(messages)) = map.get_mut("messages") {
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
