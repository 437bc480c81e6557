//! Routes and cross-cutting HTTP behaviour: CORS (spec §12 A10) and the correlation id
//! (spec §12 A2).

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::state::AppState;
use crate::{http, ws};

const CORRELATION_ID: HeaderName = HeaderName::from_static("x-polyai-correlation-id");

/// The whole application, ready to serve or to test with `tower::ServiceExt::oneshot`.
pub fn router(state: AppState) -> Router {
    app(state, true)
}

/// The control API alone, for a separate `--control-bind` listener.
pub fn control_router(state: AppState) -> Router {
    Router::new()
        .nest("/_mock", crate::control::router(state.clone()))
        .layer(middleware::from_fn(correlation_id))
        .layer(middleware::from_fn_with_state(state.clone(), body_deadline))
        .with_state(state)
}

/// The protocol endpoints, and the control API unless it has a listener of its own.
pub fn app(state: AppState, with_control: bool) -> Router {
    let origin = match state.config().cors_allow_origin.as_str() {
        "*" => AllowOrigin::any(),
        exact => {
            HeaderValue::from_str(exact).map_or_else(|_| AllowOrigin::any(), AllowOrigin::exact)
        }
    };
    let cors = CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static("x-token"),
            HeaderName::from_static("x-host"),
            header::AUTHORIZATION,
            CORRELATION_ID,
        ])
        .expose_headers([CORRELATION_ID, header::RETRY_AFTER]);
    let protocol = Router::new()
        .route("/api/v1/access-token", post(http::create_access_token))
        .route("/api/v1/sessions", post(http::create_session))
        .route("/ws", get(ws::connect))
        .fallback(http::not_found)
        .layer(cors);
    // The control API gets no CORS: a web page must not reach it (see `control::guard`).
    let mut routes = protocol;
    if with_control {
        routes = routes.nest("/_mock", crate::control::router(state.clone()));
    }
    routes
        .layer(middleware::from_fn(correlation_id))
        .layer(middleware::from_fn_with_state(state.clone(), body_deadline))
        .with_state(state)
}

/// What a TLS port answers a client speaking plain HTTP to it: 400, the connection closed, and
/// the request noted in the HTTP log (with `plaintext`) when it addressed a protocol endpoint,
/// so the conformance kit can say the client did not use `https://`/`wss://` (spec §11 WS-1).
pub fn plaintext_refusal(state: AppState) -> Router {
    Router::new().fallback(refuse_plaintext).with_state(state)
}

/// The refusal's body and HTTP-log `error`.
pub const PLAINTEXT_REFUSED: &str = "This port serves TLS: use https:// and wss://";

async fn refuse_plaintext(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
) -> Response {
    use crate::http_log::{Endpoint, HttpCall, RequestFacts};
    use axum::response::IntoResponse as _;
    if let Some(endpoint) = Endpoint::of_path(request.uri().path()) {
        let headers = request.headers();
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        state.note_http_call(HttpCall {
            at_ms: 0,
            endpoint,
            status: 400,
            error: Some(PLAINTEXT_REFUSED.to_owned()),
            retry_after: None,
            request: RequestFacts {
                x_token: headers.contains_key("x-token"),
                x_host: text("x-host"),
                upgrade: text("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")),
                plaintext: true,
                ..RequestFacts::default()
            },
            token: None,
            session_id: None,
        });
    }
    (
        axum::http::StatusCode::BAD_REQUEST,
        [(header::CONNECTION, "close")],
        PLAINTEXT_REFUSED,
    )
        .into_response()
}

/// The largest request body read (axum's default limit, which the handlers' extractors keep).
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// A request's body must arrive whole within the header timeout, like its headers: a body
/// trickled a byte at a time would otherwise hold a connection and a task open for ever.
/// Too slow: 408 and the connection closed; too large: 413.
async fn body_deadline(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    use axum::response::IntoResponse as _;
    let (parts, body) = request.into_parts();
    let limit = state.config().http_header_timeout();
    let refuse = |status, message: String| {
        let mut response = (
            status,
            axum::Json(serde_json::json!({ "message": message })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    };
    match tokio::time::timeout(limit, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Ok(Err(error)) => {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
            if too_large {
                refuse(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the request body is over {MAX_BODY_BYTES} bytes"),
                )
            } else {
                refuse(
                    axum::http::StatusCode::BAD_REQUEST,
                    "the request body could not be read".into(),
                )
            }
        }
        Err(_) => refuse(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s",
                limit.as_secs_f64()
            ),
        ),
    }
}

/// Echoes the request's `X-Polyai-Correlation-Id`, or mints one.
async fn correlation_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&CORRELATION_ID)
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        });
    let mut response = next.run(request).await;
    response.headers_mut().insert(CORRELATION_ID, id);
    response
}
