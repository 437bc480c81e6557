//! The records a report is made of: a case's result (findings, frame and view timelines, the
//! conversation shown), built from its evidence, and the run's summaries of them.

use std::collections::BTreeMap;

use mock_server::journal::{JournalEvent, WireJson};
use serde::Serialize;
use serde_json::Value;

use crate::cases::{ExpectedMessage, Speaker, Tier, shorten};
use crate::checks::{self, Evidence, Sample, StepRecord, StepReply};
use crate::contract::View;
use crate::obligations::{Level, ObligationId};
use crate::runner::{Finding, Verdict};

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

/// Both directions of every session, the HTTP calls, closes and the steps, in time order.
pub(crate) fn timeline(e: &Evidence, origin: u64) -> Vec<TimelineEntry> {
    let rel = |at: u64| at.saturating_sub(origin);
    let mut out = Vec::new();
    for call in &e.http {
        out.push(http_entry(call, rel(call.at_ms)));
    }
    for session in &e.sessions {
        for entry in &session.journal {
            let Some((lane, summary, detail)) = journal_line(&entry.event) else {
                continue;
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
        out.push(step_entry(step, rel(step.at_ms)));
    }
    out.sort_by_key(|t| t.at_ms);
    out
}

/// An HTTP call (or the WebSocket upgrade) at `at_ms`, with its request.
fn http_entry(call: &mock_server::http_log::HttpCall, at_ms: u64) -> TimelineEntry {
    TimelineEntry {
        at_ms,
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
    }
}

/// The lane, summary and detail of a journal event; `None` for the HTTP calls and
/// handshakes the journal also holds.
fn journal_line(event: &JournalEvent) -> Option<(&'static str, String, Option<Value>)> {
    Some(match event {
        JournalEvent::ClientFrame {
            frame,
            text,
            error,
            conn,
            ..
        } => client_frame_line(frame.as_ref(), text.as_ref(), error.as_deref(), *conn),
        JournalEvent::ServerFrame { frame, conn } => server_frame_line(frame, *conn),
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
        JournalEvent::Http { .. } | JournalEvent::Handshake { .. } => return None,
    })
}

/// A frame the client sent on connection `conn`: its event type (or that it was not JSON)
/// and the mock's complaint, with the frame as detail.
fn client_frame_line(
    frame: Option<&WireJson>,
    text: Option<&String>,
    error: Option<&str>,
    conn: u64,
) -> (&'static str, String, Option<Value>) {
    let value = frame.and_then(|f| serde_json::from_str::<Value>(f.get()).ok());
    let kind = value
        .as_ref()
        .map(|v| {
            checks::event_type(v)
                .trim_start_matches("EVENT_TYPE_")
                .to_owned()
        })
        .unwrap_or_else(|| "(not JSON)".into());
    let error = error.map(|e| format!(" — {e}")).unwrap_or_default();
    (
        "client",
        format!("#{conn} {kind}{error}"),
        value.or_else(|| text.cloned().map(Value::String)),
    )
}

/// A frame the mock sent to connection `conn` (or all): its event type and text.
fn server_frame_line(frame: &WireJson, conn: Option<u64>) -> (&'static str, String, Option<Value>) {
    let value: Value = serde_json::from_str(frame.get()).unwrap_or_default();
    let kind = checks::event_type(&value).trim_start_matches("EVENT_TYPE_");
    let text = value["payload"]["text"]
        .as_str()
        .map(|t| format!(" `{}`", shorten(t)))
        .unwrap_or_default();
    let to = conn.map_or_else(|| "all".to_owned(), |c| format!("#{c}"));
    ("mock", format!("→{to} {kind}{text}"), Some(value))
}

/// A user step at `at_ms` and how the client replied.
fn step_entry(step: &StepRecord, at_ms: u64) -> TimelineEntry {
    TimelineEntry {
        at_ms,
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
    }
}

/// The view timeline: consecutive identical samples merged.
pub(crate) fn view_spans(samples: &[Sample], origin: u64) -> Vec<ViewSpan> {
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

/// What the app showed last, as the expected conversation is written. Messages, then system
/// messages: the order the report's diff lays the expected out in.
pub(crate) fn shown(evidence: &Evidence) -> Option<Vec<ExpectedMessage>> {
    evidence.final_view().and_then(|v| {
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
    })
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
