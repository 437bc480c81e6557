//! The proxy's own control API under `/_mock/` (behind the mock's guard) and its routes:
//! health, violations, sessions, journals, faults, the console.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use schemars::JsonSchema;
use serde::Serialize;

use super::{Proxy, console, rest, ws};

/// One session the proxy has seen, as `GET /_mock/sessions` lists it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProxySession {
    pub session_id: String,
    /// Connections opened (accepted or refused).
    pub connections: u64,
    /// The numbers of the connections open now.
    pub live: Vec<u64>,
    /// Entries in its journal.
    pub entries: usize,
}

/// The proxy's routes: the protocol's endpoints forwarded, `/ws` bridged, and a control API
/// of its own under `/_mock/` (loopback only, guarded as the mock's).
pub fn router(proxy: Proxy) -> Router {
    let control = Router::new()
        .route("/health", get(health))
        .route("/violations", get(violations))
        .route("/sessions", get(sessions))
        .route("/sessions/{id}/journal", get(journal))
        .route("/sessions/{id}/faults", axum::routing::post(inject))
        .merge(console::routes())
        .fallback(|| async {
            control_error(
                StatusCode::NOT_FOUND,
                "no such control endpoint of the proxy",
                None,
            )
        })
        .layer(axum::middleware::from_fn_with_state(proxy.clone(), guard));
    Router::new()
        .route("/ws", get(ws::bridge))
        .nest("/_mock", control)
        .fallback(rest::forward)
        .with_state(proxy)
}

async fn guard(
    State(proxy): State<Proxy>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match crate::control::refusal(&request, None, |authority| {
        proxy.is_own_loopback_authority(authority)
    }) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

fn control_error(status: StatusCode, message: &str, pointer: Option<String>) -> Response {
    let body = crate::control::ControlErrorBody {
        error: message.to_owned(),
        message: message.to_owned(),
        pointer,
    };
    (status, axum::Json(body)).into_response()
}

async fn sessions(State(proxy): State<Proxy>) -> Response {
    axum::Json(proxy.sessions()).into_response()
}

async fn journal(
    State(proxy): State<Proxy>,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    if query.get("follow").is_some_and(|f| f == "true") {
        return control_error(
            StatusCode::BAD_REQUEST,
            "the proxy does not follow a journal: ask again for the newest entries",
            None,
        );
    }
    if proxy.faults_of(&id).is_none() {
        return control_error(
            StatusCode::NOT_FOUND,
            &format!("no session {id} went through the proxy"),
            None,
        );
    }
    axum::Json(proxy.journal_of(&id)).into_response()
}

/// `POST /_mock/sessions/{id}/faults`: the mock's fault JSON (one or an array), applied now.
async fn inject(
    State(proxy): State<Proxy>,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: Bytes,
) -> Response {
    let faults = match crate::control::parse_faults(&body) {
        Ok(faults) => faults,
        Err((message, pointer)) => {
            return control_error(StatusCode::BAD_REQUEST, &message, Some(pointer));
        }
    };
    match proxy.inject(&id, &faults) {
        Some(accepted) => axum::Json(serde_json::json!({ "accepted": accepted })).into_response(),
        None => control_error(
            StatusCode::NOT_FOUND,
            &format!("no session {id} went through the proxy"),
            None,
        ),
    }
}

async fn health(State(proxy): State<Proxy>) -> Response {
    axum::Json(serde_json::json!({
        "ok": true,
        "upstream": proxy.inner.config.upstream.origin(),
        "violations": proxy.violation_count(),
    }))
    .into_response()
}

async fn violations(State(proxy): State<Proxy>) -> Response {
    axum::Json(proxy.violations()).into_response()
}
