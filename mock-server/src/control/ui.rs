//! The web console at `/_mock/ui/`: five static files embedded in the binary (no CDN, no
//! network, no build step). The page talks to the control API only, like any other client of
//! it; these routes serve code, never session data.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::state::AppState;

/// The visual language the console shares with the conformance report.
pub const THEME: &str = include_str!("ui/theme.css");

/// The console's files, `(name, content type, body)`.
pub const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("ui/index.html"),
    ),
    ("theme.css", "text/css; charset=utf-8", THEME),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("ui/app.css"),
    ),
    // The step and fault forms the console offers; a test keeps it covering every kind.
    (
        "templates.json",
        "application/json",
        include_str!("ui/templates.json"),
    ),
];

/// Only our own files, scripts and styles; fetches go to this origin only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn file(name: &str) -> Response {
    embedded(FILES, name).unwrap_or_else(|| {
        super::Failure::new(
            axum::http::StatusCode::NOT_FOUND,
            "no such console file",
            None,
        )
        .into_response()
    })
}

/// `name` from an embedded file table, with headers that let it run only as our own code.
pub(crate) fn embedded(files: &[(&str, &str, &'static str)], name: &str) -> Option<Response> {
    let (_, content_type, body) = files.iter().find(|(n, _, _)| *n == name)?;
    let mut response = (*body).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(response)
}

/// Routes, nested with the rest of the control API at `/_mock`.
pub fn routes() -> Router<AppState> {
    console_routes(file)
}

/// A console's routes under `/ui`: `/ui/` is `file("index.html")`, `/ui/NAME` is `file(NAME)`.
pub(crate) fn console_routes<S: Clone + Send + Sync + 'static>(
    file: fn(&str) -> Response,
) -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/_mock/ui/") }))
        .route("/ui/", get(move || async move { file("index.html") }))
        .route(
            "/ui/{name}",
            get(
                move |axum::extract::Path(name): axum::extract::Path<String>| async move {
                    file(&name)
                },
            ),
        )
}
