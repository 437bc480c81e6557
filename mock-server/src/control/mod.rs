//! The control API under `/_mock/`: see and steer a running mock (sessions, journals, pushed
//! steps and faults, scenario choice, the clock, reset). Handlers only parse, call the
//! [`AppState`] operation, and map the result; the same operations back the typed methods of
//! [`crate::MockServer`].
//!
//! Loopback peers only, unless `control_token` is configured: then every request must carry
//! `Authorization: Bearer <control_token>`.

mod guard;
pub mod openapi;
pub mod ui;

use guard::guard;
pub(crate) use guard::{loopback_port, refusal};

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http_log::HttpFailures;
use crate::scenario::raw::{RawFault, RawStep};
use crate::scenario::validate::validate_steps;
use crate::state::{AppState, ControlError, SessionSummary};

/// Every control-API failure: a status, the message, and for bad bodies the JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ControlErrorBody {
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

struct Failure(StatusCode, ControlErrorBody);

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>, pointer: Option<String>) -> Self {
        let message = message.into();
        Self(
            status,
            ControlErrorBody {
                error: message.clone(),
                message,
                pointer,
            },
        )
    }
}

impl From<ControlError> for Failure {
    fn from(error: ControlError) -> Self {
        let status = match error {
            ControlError::UnknownSession(_) => StatusCode::NOT_FOUND,
            ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
            ControlError::Conflict(_) => StatusCode::CONFLICT,
        };
        Self::new(status, error.to_string(), None)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

type Reply<T> = Result<Json<T>, Failure>;

/// Routes, to be nested at `/_mock`.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/sessions", get(sessions))
        .route("/sessions/{id}", get(session))
        .route("/sessions/{id}/journal", get(journal))
        .route("/sessions/{id}/steps", post(push_steps))
        .route("/sessions/{id}/faults", post(push_faults))
        .route("/sessions/{id}/end", post(end_session))
        .route("/next-scenario", put(next_scenario))
        .route("/connectors/{token}/scenario", put(connector_scenario))
        .route("/scenarios", get(scenarios))
        .route("/requests", get(requests))
        .route("/clock", post(clock))
        .route("/http-failures", post(http_failures))
        .route("/reset", post(reset))
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .merge(ui::routes())
        .fallback(|| async {
            Failure::new(StatusCode::NOT_FOUND, "no such control endpoint", None)
        })
        .layer(middleware::from_fn_with_state(state, guard))
}

/// `GET /_mock/health`
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    pub ok: bool,
    pub sessions: usize,
    /// Mock-clock milliseconds since start.
    pub clock_ms: u64,
    pub clock_scale: f64,
}

async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        ok: true,
        sessions: state.sessions().len(),
        clock_ms: state.clock().now().elapsed.as_millis() as u64,
        clock_scale: state.clock().scale(),
    })
}

#[derive(Debug, Deserialize)]
struct SessionsQuery {
    /// Only the newest this many (the console asks for a page, not for 20 000 sessions).
    #[serde(default)]
    limit: Option<usize>,
}

/// Every session, oldest first; with `?limit=N` only the newest N (still oldest first).
async fn sessions(
    State(state): State<AppState>,
    Query(query): Query<SessionsQuery>,
) -> Json<Vec<SessionSummary>> {
    let mut all = state.sessions();
    if let Some(limit) = query.limit {
        all.drain(..all.len().saturating_sub(limit));
    }
    Json(all)
}

/// Which logged requests `GET /_mock/requests` answers with.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestsQuery {
    /// `access-token`, `sessions` or `ws` (or the path: `/api/v1/sessions`).
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub session_id: Option<String>,
    /// Mock-clock milliseconds: calls at or after.
    #[serde(default)]
    pub since_ms: Option<u64>,
    /// Calls before.
    #[serde(default)]
    pub until_ms: Option<u64>,
    /// Answer `{"count": n}` instead of the calls.
    #[serde(default)]
    pub count: bool,
}

/// The endpoint a query names, in short or path form.
fn endpoint_named(name: &str) -> Option<crate::http_log::Endpoint> {
    use crate::http_log::Endpoint;
    [
        Endpoint::AccessToken,
        Endpoint::Sessions,
        Endpoint::WebSocket,
    ]
    .into_iter()
    .find(|e| {
        let path = e.path();
        name == path || path.rsplit('/').next() == Some(name)
    })
}

/// The server-wide log of REST calls and `/ws` handshakes (refused ones too, before any session
/// exists), oldest first, filtered.
async fn requests(
    State(state): State<AppState>,
    query: Result<Query<RequestsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Failure> {
    let Query(query) =
        query.map_err(|e| Failure::new(StatusCode::BAD_REQUEST, e.body_text(), None))?;
    let endpoint = match query.endpoint.as_deref() {
        None => None,
        Some(name) => Some(endpoint_named(name).ok_or_else(|| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                format!("unknown endpoint `{name}`: access-token, sessions or ws"),
                Some("/endpoint".into()),
            )
        })?),
    };
    let calls: Vec<crate::http_log::HttpCall> = state
        .http_calls()
        .into_iter()
        .filter(|c| endpoint.is_none_or(|e| c.endpoint == e))
        .filter(|c| query.status.is_none_or(|s| c.status == s))
        .filter(|c| {
            query
                .session_id
                .as_deref()
                .is_none_or(|id| c.session_id.as_deref() == Some(id))
        })
        .filter(|c| query.since_ms.is_none_or(|t| c.at_ms >= t))
        .filter(|c| query.until_ms.is_none_or(|t| c.at_ms < t))
        .collect();
    Ok(if query.count {
        Json(serde_json::json!({ "count": calls.len() })).into_response()
    } else {
        Json(calls).into_response()
    })
}

async fn session(State(state): State<AppState>, Path(id): Path<String>) -> Reply<SessionSummary> {
    let slot = state.session(&id).ok_or(ControlError::UnknownSession(id))?;
    Ok(Json(slot.summary()))
}

#[derive(Debug, Deserialize)]
struct JournalQuery {
    #[serde(default)]
    follow: bool,
    /// `jsonl`: the journal as a downloadable recording (the `--record` file format).
    #[serde(default)]
    format: Option<String>,
}

fn json_lines(entries: &[crate::journal::JournalEntry]) -> String {
    let mut lines = String::new();
    for entry in entries {
        lines.push_str(&serde_json::to_string(entry).unwrap_or_default());
        lines.push('\n');
    }
    lines
}

/// The journal as a JSON array; with `?format=jsonl` as a recording file to download (JSON
/// Lines, the `--record` format, which `--scenario FILE.jsonl` replays); with `?follow=true` as
/// JSON Lines that go on with new entries until the session is gone.
async fn journal(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<JournalQuery>,
) -> Result<Response, Failure> {
    let slot = state
        .session(&id)
        .ok_or_else(|| ControlError::UnknownSession(id.clone()))?;
    match query.format.as_deref() {
        None | Some("json") => {}
        Some("jsonl") if !query.follow => {
            let (entries, _) = slot.journal_since(0);
            let disposition = format!("attachment; filename=\"{}.jsonl\"", sanitize(&id));
            return Ok((
                [
                    (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                json_lines(&entries),
            )
                .into_response());
        }
        Some(other) => {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown journal format `{other}` (use `json`, or `jsonl` without `follow`)"
                ),
                None,
            ));
        }
    }
    if !query.follow {
        let (entries, _) = slot.journal_since(0);
        return Ok(Json(entries).into_response());
    }
    let shutdown = state.shutdown_token().clone();
    let stream = futures_util::stream::unfold((slot, 0u64, false), move |(slot, from, done)| {
        let shutdown = shutdown.clone();
        async move {
            if done {
                return None;
            }
            loop {
                let (entries, next) = slot.journal_since(from);
                let gone = slot.status() == crate::engine::SessionStatus::Expired
                    || shutdown.is_cancelled();
                if !entries.is_empty() || gone {
                    let lines = json_lines(&entries);
                    return Some((Ok::<_, Infallible>(Bytes::from(lines)), (slot, next, gone)));
                }
                slot.journal_changed().await;
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// A session id as a file name: ids are ours, but a header is no place to trust that.
fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One item or an array of them. A single item is treated as a one-element list, so error
/// pointers always start with the item's index (`/0/...`).
fn one_or_many<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Vec<T>, Failure> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            format!("body is not JSON: {e}"),
            Some(String::new()),
        )
    })?;
    let items = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            serde_path_to_error::deserialize(item).map_err(|e| {
                let pointer = format!("/{i}{}", crate::scenario::json_pointer(e.path()));
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    e.inner().to_string(),
                    Some(pointer),
                )
            })
        })
        .collect()
}

/// What a push accepted.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Accepted {
    pub accepted: usize,
}

fn play(state: &AppState, id: &str, raw: Vec<RawStep>, what: &str) -> Reply<Accepted> {
    let steps = validate_steps("request body", &raw)
        .map_err(|e| Failure::new(StatusCode::BAD_REQUEST, e.problem, Some(e.pointer)))?;
    let count = raw.len();
    let action = format!(
        "{what}: {}",
        serde_json::to_string(&raw).unwrap_or_default()
    );
    state.push_steps(id, steps, &action)?;
    Ok(Json(Accepted { accepted: count }))
}

/// `POST /_mock/sessions/{id}/steps`: scenario steps (one or an array), played now.
async fn push_steps(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply<Accepted> {
    let raw: Vec<RawStep> = one_or_many(&body)?;
    play(&state, &id, raw, "steps")
}

/// A fault body (one or an array) as the mock takes it, validated: the faults, or the problem
/// and its JSON pointer. The proxy takes the same body.
pub(crate) fn parse_faults(body: &[u8]) -> Result<Vec<crate::scenario::Fault>, (String, String)> {
    let problem = |failure: Failure| {
        let Failure(_, body) = failure;
        (body.message, body.pointer.unwrap_or_default())
    };
    let raw: Vec<RawFault> = one_or_many(body).map_err(problem)?;
    let steps: Vec<RawStep> = raw.into_iter().map(RawStep::Fault).collect();
    let steps = validate_steps("request body", &steps).map_err(|e| (e.problem, e.pointer))?;
    Ok(steps
        .into_iter()
        .filter_map(|step| match step {
            crate::scenario::Step::Fault(fault) => Some(fault),
            _ => None,
        })
        .collect())
}

/// `POST /_mock/sessions/{id}/faults`: fault steps (one or an array), applied now.
async fn push_faults(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply<Accepted> {
    let faults: Vec<RawFault> = one_or_many(&body)?;
    play(
        &state,
        &id,
        faults.into_iter().map(RawStep::Fault).collect(),
        "faults",
    )
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndRequest {
    /// Default `REASON_NATURAL_END`.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /_mock/sessions/{id}/end`
async fn end_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply<Accepted> {
    let request: EndRequest = if body.iter().all(u8::is_ascii_whitespace) {
        EndRequest::default()
    } else {
        one_or_many::<EndRequest>(&body)?.pop().unwrap_or_default()
    };
    let reason = request
        .reason
        .unwrap_or_else(|| "REASON_NATURAL_END".into());
    let step = RawStep::End(crate::protocol::SessionEndReason::from_wire(&reason));
    play(&state, &id, vec![step], "end")
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioChoice {
    /// A catalogue name or a file path.
    pub scenario: String,
}

async fn next_scenario(State(state): State<AppState>, body: Bytes) -> Reply<ScenarioChoice> {
    let choice: ScenarioChoice = one_or_many::<ScenarioChoice>(&body)?
        .pop()
        .ok_or_else(|| Failure::new(StatusCode::BAD_REQUEST, "empty body", None))?;
    state.set_next_scenario(&choice.scenario).await?;
    Ok(Json(choice))
}

async fn connector_scenario(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Reply<ScenarioChoice> {
    let choice: ScenarioChoice = one_or_many::<ScenarioChoice>(&body)?
        .pop()
        .ok_or_else(|| Failure::new(StatusCode::BAD_REQUEST, "empty body", None))?;
    state
        .set_connector_scenario(&token, &choice.scenario)
        .await?;
    Ok(Json(choice))
}

async fn scenarios(State(state): State<AppState>) -> Json<Vec<String>> {
    Json(state.scenario_names())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockChange {
    /// Move the mock clock forward by this much: timers due by then fire now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advance_ms: Option<u64>,
    /// Mock seconds per real second from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
}

async fn clock(State(state): State<AppState>, body: Bytes) -> Reply<Health> {
    let change: ClockChange = one_or_many::<ClockChange>(&body)?.pop().unwrap_or_default();
    if change.advance_ms.is_none() && change.scale.is_none() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "give `advance_ms` or `scale`",
            Some(String::new()),
        ));
    }
    if let Some(scale) = change.scale {
        state.set_clock_scale(scale)?;
    }
    if let Some(ms) = change.advance_ms {
        state.advance_clock(Duration::from_millis(ms))?;
    }
    Ok(health(State(state)).await)
}

/// `POST /_mock/http-failures`: the next REST calls answer their documented 500.
async fn http_failures(State(state): State<AppState>, body: Bytes) -> Reply<HttpFailures> {
    let failures: HttpFailures = one_or_many::<HttpFailures>(&body)?
        .pop()
        .unwrap_or_default();
    Ok(Json(state.arm_http_failures(failures)))
}

async fn reset(State(state): State<AppState>) -> Json<Health> {
    state.reset();
    health(State(state)).await
}
