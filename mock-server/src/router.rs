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
        .with_state(state)
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
