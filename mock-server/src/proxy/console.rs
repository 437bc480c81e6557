//! The proxy's console at `/_mock/ui/`: a page of its own (sessions, their journals, fault
//! injection, violations), the mock's theme, and the mock console's fault templates, embedded
//! in the binary. The page talks to the proxy's control API only.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::Proxy;

/// The console's files, `(name, content type, body)`.
pub const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("ui/index.html"),
    ),
    (
        "theme.css",
        "text/css; charset=utf-8",
        crate::control::ui::THEME,
    ),
    (
        "proxy.css",
        "text/css; charset=utf-8",
        include_str!("ui/proxy.css"),
    ),
    (
        "proxy.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/proxy.js"),
    ),
    (
        "templates.json",
        "application/json",
        include_str!("../control/ui/templates.json"),
    ),
];

fn file(name: &str) -> Response {
    crate::control::ui::embedded(FILES, name)
        .unwrap_or_else(|| (StatusCode::NOT_FOUND, "no such console file").into_response())
}

/// Routes, nested with the rest of the proxy's control API at `/_mock`.
pub fn routes() -> Router<Proxy> {
    crate::control::ui::console_routes(file)
}
