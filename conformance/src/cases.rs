//! The case catalogue, as data: one file per case under `fixtures/conformance/` (embedded at
//! build time). Loading has two stages, like scenarios: the file as written ([`CaseFile`],
//! whose JSON Schema is `schemas/conformance-case.schema.json`), then a [`Case`] checked with
//! a sample draw of the parameters: every placeholder known, the scenario valid, the mock
//! settings real, every expectation serving an obligation the case grades. Errors name the
//! file, the JSON pointer and the problem.
//!
//! At run time [`Case::instantiate`] fills in the run's [`Params`]: the mock configuration,
//! the scenario, the user's steps and the conversation the client must end up showing, which
//! is written next to the scenario (what the agent says, in which order) and never taken from
//! a client.

use std::collections::BTreeMap;
use std::time::Duration;

use mock_server::Config;
use mock_server::scenario::Script;
use mock_server::scenario::raw::{RawStep, ScenarioFile};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::contract::{Author, ConnectionState, HandoffState, MessageStatus, TypingChange, View};
use crate::obligations::ObligationId;
use crate::params::Params;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_cases.rs"));
}

/// Which profiles run a case: `quick` ⊂ `full` ⊂ `thorough`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[derive(clap::ValueEnum)]
pub enum Tier {
    /// No deliberate waiting: a few seconds.
    Quick,
    /// Every obligation the contract makes observable, each timing obligation under two draws.
    Full,
    /// Also what takes the spec's long timers: the resend cap (≈45 s), the 30 s backoff cap
    /// and the 30 s default heartbeat (≈65 s each).
    Thorough,
}

impl Tier {
    /// Whether a run of profile `self` includes a case of tier `case`.
    pub fn includes(self, case: Tier) -> bool {
        case <= self
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Full => "full",
            Self::Thorough => "thorough",
        }
    }
}

/// A case file as written.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Kebab-case, equal to the file name.
    pub id: String,
    pub description: String,
    pub tier: Tier,
    /// `streaming` of the user's `start`.
    #[serde(default)]
    pub streaming: bool,
    /// Fields of the mock's configuration (`mock-server/src/config.rs`), over the kit's
    /// defaults; values may be `{parameter}`s.
    #[serde(default)]
    pub mock: Map<String, Value>,
    /// The scenario the session runs (`fixtures/README.md`), with `{parameter}`s.
    #[schemars(with = "ScenarioFile")]
    pub scenario: Value,
    /// What the user does and what the app must show meanwhile.
    #[schemars(with = "Vec<Step>")]
    pub steps: Vec<Value>,
    /// How long to keep watching after the last step (default 500 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_ms: Option<u64>,
    /// The messages the app must show at the end, in order (for MSG-3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<ExpectedMessage>>")]
    pub conversation: Option<Vec<Value>>,
    /// The obligations this case grades.
    pub checks: Vec<ObligationId>,
}

/// One thing the user does, or a moment the runner waits for.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Start a conversation (`start`, with the case's `streaming`).
    Start,
    /// The user sends this text.
    Send(String),
    /// The user taps the suggestion with this text (wherever the view shows it).
    TapSuggestion(String),
    Typing(TypingChange),
    /// The user leaves (`end`).
    End,
    /// The app restarts (`restart`); a driver may answer `unsupported`.
    Restart,
    /// Wait until the view shows something.
    Expect(Expectation),
    /// Keep watching for this long.
    HoldMs(u64),
    /// Keep watching until this long after the case started.
    HoldUntilMs(u64),
    /// Play these scenario steps in the newest session now.
    Mock(Vec<RawStep>),
}

/// Something the view must come to show, within a time, for an obligation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Expectation {
    #[serde(flatten)]
    pub shows: Shows,
    /// The obligation a timeout fails (unless the client never got as far: see the runner).
    pub serves: ObligationId,
    #[serde(default = "ten_seconds")]
    pub within_ms: u64,
}

fn ten_seconds() -> u64 {
    10_000
}

/// What the view must show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Shows {
    /// A message with this author and text (complete unless said otherwise; a status when
    /// given).
    Message {
        from: Author,
        text: String,
        #[serde(default = "yes")]
        complete: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<MessageStatus>,
    },
    Connection(ConnectionState),
    /// `ended` with this reason.
    Ended(String),
    Handoff(HandoffState),
    Language(String),
    /// A session other than the one shown when the wait began (`true`).
    AnotherSession(bool),
}

fn yes() -> bool {
    true
}

impl Shows {
    /// Whether `view` shows it; `None` when the view lacks the field it needs.
    pub fn holds(&self, view: &View, session_before: Option<&str>) -> Option<bool> {
        Some(match self {
            Self::Message {
                from,
                text,
                complete,
                status,
            } => view.messages()?.iter().any(|m| {
                m.from == *from
                    && m.text == *text
                    && m.complete == *complete
                    && status.is_none_or(|s| m.status == Some(s))
            }),
            Self::Connection(state) => view.connection? == *state,
            Self::Ended(reason) => view
                .ended
                .clone()?
                .is_some_and(|ended| ended.reason == *reason),
            Self::Handoff(state) => view.handoff? == *state,
            Self::Language(code) => view.language.clone()?.as_deref() == Some(code.as_str()),
            Self::AnotherSession(_) => {
                let now = view.session_id.clone()?;
                now.is_some() && now.as_deref() != session_before
            }
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Message {
                from, text, status, ..
            } => {
                let status = status.map(|s| format!(" ({s:?})")).unwrap_or_default();
                format!("{from:?} message `{}`{status}", shorten(text))
            }
            Self::Connection(state) => format!("connection {state:?}"),
            Self::Ended(reason) => format!("ended with {reason}"),
            Self::Handoff(state) => format!("handoff {state:?}"),
            Self::Language(code) => format!("language {code}"),
            Self::AnotherSession(_) => "another session".into(),
        }
    }
}

/// `text` cut to 60 characters for messages.
pub fn shorten(text: &str) -> String {
    if text.chars().count() <= 60 {
        text.to_owned()
    } else {
        format!(
            "{}… ({} characters)",
            text.chars().take(40).collect::<String>(),
            text.chars().count()
        )
    }
}

/// Who said an entry of the conversation: the three authors of the view's messages, or the
/// server (a `SYSTEM_MESSAGE`, which the view shows under `system_messages` and never as
/// someone's message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    User,
    Agent,
    LiveAgent,
    System,
}

impl Speaker {
    /// The view author of a message entry; `None` for a system message.
    pub fn author(self) -> Option<Author> {
        match self {
            Self::User => Some(Author::User),
            Self::Agent => Some(Author::Agent),
            Self::LiveAgent => Some(Author::LiveAgent),
            Self::System => None,
        }
    }
}

impl From<Author> for Speaker {
    fn from(author: Author) -> Self {
        match author {
            Author::User => Self::User,
            Author::Agent => Self::Agent,
            Author::LiveAgent => Self::LiveAgent,
        }
    }
}

/// An entry of the conversation the app must show: a message, or a system message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedMessage {
    pub from: Speaker,
    pub text: String,
}

/// A case file that cannot be used: which file, where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: at {pointer}: {problem}")]
pub struct CaseError {
    pub file: String,
    pub pointer: String,
    pub problem: String,
}

/// A validated case, parameters not yet filled in.
#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub description: String,
    pub tier: Tier,
    pub file: String,
    raw: CaseFile,
    /// The [`EVERY_CASE`] obligations the file does not list itself.
    added: Vec<ObligationId>,
}

/// A case with the run's parameters filled in: everything the runner needs.
#[derive(Debug, Clone)]
pub struct CaseRun {
    pub id: String,
    pub description: String,
    pub tier: Tier,
    pub streaming: bool,
    pub config: Config,
    pub scenario_name: String,
    pub scenario: Script,
    pub steps: Vec<Step>,
    pub settle: Duration,
    pub conversation: Option<Vec<ExpectedMessage>>,
    pub checks: Vec<ObligationId>,
    /// Checks the kit adds to every case ([`EVERY_CASE`]): graded where the case left evidence,
    /// left out of the findings where it did not.
    pub added_checks: Vec<ObligationId>,
    /// The parameters the case uses, by name.
    pub params: BTreeMap<String, Value>,
}

/// Obligations about the form of what a client sends, graded in every case besides the ones
/// a case lists: they do not depend on what the case plays, and a client that breaks them only
/// on some path (X-Host left out of a later token call, a field added to heartbeats only)
/// would otherwise pass every case that happens not to list them.
pub const EVERY_CASE: [ObligationId; 5] = [
    ObligationId::Auth1,
    ObligationId::Auth2,
    ObligationId::Ws5,
    ObligationId::Ws6,
    ObligationId::Ws7,
];

/// What the kit sets on every case's mock before the case's own `mock` fields: a client gets
/// 1.5 s after `SESSION_END` to close its socket itself (spec §11 UX-4).
pub fn kit_config() -> Config {
    Config {
        session_end_close_grace_ms: 1_500,
        // The evidence is the journal: keep every frame a client sends whole (one session per
        // mock, so these generous bounds cost nothing).
        journal_frame_max_bytes: 16 * 1024 * 1024,
        journal_max_bytes: 256 * 1024 * 1024,
        journal_total_max_bytes: 256 * 1024 * 1024,
        journal_max_entries: 100_000,
        ..Config::default()
    }
}

/// The kit's agents answer each user message once: a rule on a message fires once unless the
/// file says otherwise, and a message no rule matches gets no answer unless the file gives a
/// fallback. A client that sends a message twice (resending one already echoed) then gets only
/// the echo of the repeat, which MSG-5 judges, instead of a second answer that would look like
/// a conversation going wrong.
fn answer_each_message_once(scenario: &mut Value) {
    let Value::Object(file) = scenario else {
        return;
    };
    for rule in file
        .get_mut("rules")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Value::Object(rule) = rule
            && rule.get("when").is_some_and(|w| w.get("message").is_some())
        {
            rule.entry("once").or_insert(Value::Bool(true));
        }
    }
    file.entry("fallback")
        .or_insert_with(|| serde_json::json!({ "agent": [], "live_agent": [] }));
}

/// The 2026-05 revision has no `LANGUAGE_CHANGED` (spec §0): a case's language steps go, and
/// so does a `swap_next` fault that was there to swap them (with one event left to swap it
/// would hold back the next reply for good).
fn without_language_steps(scenario: &mut Value) {
    let is_language = |step: &Value| step.get("language").is_some();
    let swap = serde_json::json!({ "fault": "swap_next" });
    let rules = scenario.get_mut("rules").and_then(Value::as_array_mut);
    for rule in rules.into_iter().flatten() {
        let Some(steps) = rule.get_mut("steps").and_then(Value::as_array_mut) else {
            continue;
        };
        let kept: Vec<Value> = steps
            .iter()
            .enumerate()
            .filter(|(i, step)| {
                let swaps_languages = **step == swap && steps.get(i + 1).is_some_and(is_language);
                !(is_language(step) || swaps_languages)
            })
            .map(|(_, step)| step.clone())
            .collect();
        *steps = kept;
    }
}

fn deserialize_at<T: serde::de::DeserializeOwned>(
    file: &str,
    pointer: &str,
    value: Value,
) -> Result<T, CaseError> {
    serde_path_to_error::deserialize(value).map_err(|error| CaseError {
        file: file.to_owned(),
        pointer: format!(
            "{pointer}{}",
            mock_server::scenario::json_pointer(error.path())
        ),
        problem: error.into_inner().to_string(),
    })
}

impl Case {
    /// Reads one case file and checks it with a sample draw.
    pub fn parse(file: &str, text: &str) -> Result<Self, CaseError> {
        let error = |pointer: &str, problem: String| CaseError {
            file: file.to_owned(),
            pointer: pointer.to_owned(),
            problem,
        };
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let raw: CaseFile =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|e| CaseError {
                file: file.to_owned(),
                pointer: mock_server::scenario::json_pointer(e.path()),
                problem: e.into_inner().to_string(),
            })?;
        let expected_name = format!("{}.json", raw.id);
        if !file.ends_with(&expected_name) {
            return Err(error(
                "/id",
                format!("the file must be named {expected_name}"),
            ));
        }
        if raw.checks.is_empty() {
            return Err(error("/checks", "a case must grade something".into()));
        }
        let mut raw = raw;
        let added: Vec<ObligationId> = EVERY_CASE
            .into_iter()
            .filter(|always| !raw.checks.contains(always))
            .collect();
        raw.checks.extend(&added);
        let case = Self {
            id: raw.id.clone(),
            description: raw.description.clone(),
            tier: raw.tier,
            file: file.to_owned(),
            raw,
            added,
        };
        // Two draws, so a case that only works with one value of a parameter fails here.
        for seed in [0, 1] {
            let run = case.instantiate(&Params::draw(seed))?;
            for (i, step) in run.steps.iter().enumerate() {
                if let Step::Expect(expectation) = step
                    && !run.checks.contains(&expectation.serves)
                {
                    return Err(error(
                        &format!("/steps/{i}/serves"),
                        format!(
                            "{} is not among the case's checks",
                            expectation.serves.as_str()
                        ),
                    ));
                }
            }
            if !run.steps.first().is_some_and(|s| matches!(s, Step::Start)) {
                return Err(error("/steps/0", "the first step must be `start`".into()));
            }
        }
        Ok(case)
    }

    pub fn checks(&self) -> &[ObligationId] {
        &self.raw.checks
    }

    /// The obligations the case file lists itself (without the [`EVERY_CASE`] additions).
    pub fn listed_checks(&self) -> Vec<ObligationId> {
        self.raw
            .checks
            .iter()
            .copied()
            .filter(|id| !self.added.contains(id))
            .collect()
    }

    /// The case with `params` filled in.
    pub fn instantiate(&self, params: &Params) -> Result<CaseRun, CaseError> {
        let file = self.file.as_str();
        let mut used = Vec::new();
        let mut fill = |pointer: &str, value: &Value| {
            params
                .substitute(value, &mut used)
                .map_err(|problem| CaseError {
                    file: file.to_owned(),
                    pointer: pointer.to_owned(),
                    problem,
                })
        };
        let mock = fill("/mock", &Value::Object(self.raw.mock.clone()))?;
        let scenario = fill("/scenario", &self.raw.scenario)?;
        let steps = fill("/steps", &Value::Array(self.raw.steps.clone()))?;
        let conversation = match &self.raw.conversation {
            Some(list) => Some(fill("/conversation", &Value::Array(list.clone()))?),
            None => None,
        };

        let mut config = serde_json::to_value(kit_config()).map_err(|e| CaseError {
            file: file.to_owned(),
            pointer: "/mock".into(),
            problem: e.to_string(),
        })?;
        if let (Value::Object(base), Value::Object(overrides)) = (&mut config, mock) {
            base.extend(overrides);
        }
        let scenario_name = format!("conformance/{}", self.id);
        let mut config: Config = deserialize_at(file, "/mock", config)?;
        config.scenario = scenario_name.clone();
        config.profile = params.protocol();
        config.validate().map_err(|e| CaseError {
            file: file.to_owned(),
            pointer: "/mock".into(),
            problem: e.to_string(),
        })?;
        let mut scenario = scenario;
        answer_each_message_once(&mut scenario);
        if !params.protocol().has_language_changed() {
            without_language_steps(&mut scenario);
        }
        let scenario_file: ScenarioFile = deserialize_at(file, "/scenario", scenario)?;
        let script = mock_server::scenario::validate::validate(
            &scenario_name,
            &format!("{file} (scenario)"),
            &scenario_file,
        )
        .map_err(|e| CaseError {
            file: file.to_owned(),
            pointer: format!("/scenario{}", e.pointer),
            problem: e.problem,
        })?;
        let steps: Vec<Step> = deserialize_at(file, "/steps", steps)?;
        let conversation: Option<Vec<ExpectedMessage>> = match conversation {
            Some(list) => Some(deserialize_at(file, "/conversation", list)?),
            None => None,
        };
        let params_used = used
            .iter()
            .filter_map(|name| params.shown().get(name).map(|v| (name.clone(), v.clone())))
            .collect();
        Ok(CaseRun {
            id: self.id.clone(),
            description: self.description.clone(),
            tier: self.tier,
            streaming: self.raw.streaming,
            config,
            scenario_name,
            scenario: script,
            steps,
            settle: Duration::from_millis(self.raw.settle_ms.unwrap_or(500)),
            conversation,
            checks: self.raw.checks.clone(),
            added_checks: self.added.clone(),
            params: params_used,
        })
    }
}

/// Every embedded case, validated, in file-name order.
pub fn catalogue() -> Result<Vec<Case>, CaseError> {
    static PARSED: std::sync::OnceLock<Result<Vec<Case>, CaseError>> = std::sync::OnceLock::new();
    PARSED
        .get_or_init(|| {
            embedded::EMBEDDED
                .iter()
                .map(|(name, text)| Case::parse(&format!("fixtures/conformance/{name}"), text))
                .collect()
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_case_loads() {
        let cases = catalogue().unwrap_or_else(|e| panic!("{e}"));
        assert!(cases.len() >= 10, "{} cases", cases.len());
    }

    #[test]
    fn broken_case_files_are_refused_with_file_pointer_and_problem() {
        let good = r#"{"id": "x", "description": "d", "tier": "quick", "scenario": {"description": "s"},
            "steps": ["start", {"expect": {"message": {"from": "agent", "text": "{greeting}"}, "serves": "WS-3"}}],
            "checks": ["WS-3"]}"#;
        Case::parse("fixtures/conformance/x.json", good).expect("a good case loads");
        let cases = [
            (good.replace("\"quick\"", "\"slow\""), "/tier", "unknown variant"),
            (good.replace("\"WS-3\"]", "\"WS-9\"]"), "/checks/0", "WS-9"),
            (good.replace("{greeting}", "{nope}"), "/steps", "`{nope}`"),
            (
                good.replace("\"checks\": [\"WS-3\"]", "\"checks\": [\"MSG-3\"]"),
                "/steps/1/serves",
                "not among",
            ),
            (
                good.replace("\"scenario\": {\"description\": \"s\"}", "\"scenario\": {\"description\": \"s\", \"rules\": [{\"when\": \"join\", \"steps\": [{\"fault\": {\"close\": 1006}}]}]}"),
                "/scenario/rules/0/steps/0/fault/close",
                "1006",
            ),
            (
                good.replace("\"tier\"", "\"mock\": {\"heartbeat_interval_secs\": 2}, \"tier\""),
                "/mock",
                "heartbeat_interval_secs",
            ),
            (good.replace("\"start\",", ""), "/steps/0", "start"),
        ];
        for (text, pointer, problem) in cases {
            let error = Case::parse("fixtures/conformance/x.json", &text).expect_err(&text);
            assert!(
                error.pointer.starts_with(pointer) && error.to_string().contains(problem),
                "{error} (wanted {pointer}, {problem})"
            );
        }
        let misnamed = Case::parse("fixtures/conformance/y.json", good).expect_err("name");
        assert_eq!(misnamed.pointer, "/id");
    }
}
