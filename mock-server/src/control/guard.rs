//! Who may use a control API (the mock's and the proxy's): loopback peers naming this server's
//! own address, or holders of the control token; writes in JSON.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Failure;
use crate::state::AppState;

/// Who may use the control API. With `control_token`: whoever presents it. Without: a loopback
/// peer (an unknown peer is refused) whose `Host` and `Origin` (when sent) name a loopback
/// address and a port this server listens on, so a web page the developer has open, or a DNS
/// name rebound to 127.0.0.1, cannot reach it. And a write must be JSON: a browser form cannot
/// send that without a CORS preflight, which `/_mock/` never answers.
pub(super) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let token = state.config().control_token.as_deref();
    match refusal(&request, token, |authority| {
        state.is_own_loopback_authority(authority)
    }) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

/// The port of a `host:port` authority whose host is a loopback address (or `localhost`).
pub(crate) fn loopback_port(authority: &str) -> Option<u16> {
    let (host, port) = authority.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback.then_some(port)
}

/// The answer refusing a control request (see [`guard`]), or `None` when it may go on. `own`
/// says whether an authority (`host:port`) is one of this server's loopback addresses.
pub(crate) fn refusal(
    request: &Request,
    token: Option<&str>,
    own: impl Fn(&str) -> bool,
) -> Option<Response> {
    // With a token, the console's static files (code, no data) load without it: a browser
    // cannot add the header to a navigation. The page then sends the token on every call.
    let console_file =
        request.method() == axum::http::Method::GET && request.uri().path().starts_with("/ui");
    if console_file && token.is_some() {
        return None;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let refused = match token {
        Some(token) if presented == Some(token) => None,
        Some(_) => Some((
            StatusCode::UNAUTHORIZED,
            "the control API needs `Authorization: Bearer <control_token>`",
        )),
        None => loopback_refusal(request, &own),
    };
    refused
        .or_else(|| media_type_refusal(request))
        .map(|(status, message)| Failure::new(status, message, None).into_response())
}

/// Without a control token: why a request is refused (status and message) unless it comes
/// from a loopback peer and names only this server's loopback address in `Host`, its target
/// and `Origin`; `None` when it may go on.
fn loopback_refusal(
    request: &Request,
    own: impl Fn(&str) -> bool,
) -> Option<(StatusCode, &'static str)> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if !peer.is_some_and(|p| p.ip().is_loopback()) {
        return Some((
            StatusCode::FORBIDDEN,
            "the control API answers loopback peers only (configure `control_token` to allow others)",
        ));
    }
    // One `Host`, one `Origin` at most (RFC 9112 §3.2: more than one Host is a 400),
    // so the guard judges the header the application would read.
    let headers = request.headers();
    if headers.get_all(header::HOST).iter().count() > 1 {
        return Some((
            StatusCode::BAD_REQUEST,
            "a request carries one `Host` header",
        ));
    }
    if headers.get_all(header::ORIGIN).iter().count() > 1 {
        return Some((
            StatusCode::FORBIDDEN,
            "a request carries one `Origin` header at most",
        ));
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    // An absolute-form target names its own authority, which then wins over `Host`
    // (RFC 9112 §3.2.2): it must be this server's loopback address too.
    let target = request.uri().authority().map(|a| a.as_str());
    let own_host = |h: Option<&str>| h.is_some_and(&own);
    if !own_host(host) || target.is_some_and(|t| !own_host(Some(t))) {
        return Some((
            StatusCode::FORBIDDEN,
            "the control API answers requests for this server's loopback address only (check the Host header, or configure `control_token`)",
        ));
    }
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("?"));
    if let Some(origin) = origin {
        // The console's own origin: `http://` or, with `--tls`, `https://`.
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(&own);
        if !same {
            return Some((
                StatusCode::FORBIDDEN,
                "the control API does not answer other origins (configure `control_token` to allow them)",
            ));
        }
    }
    None
}

/// Why a write is refused (status and message) when its body is not declared JSON; `None`
/// for reads, JSON writes and writes without a body.
fn media_type_refusal(request: &Request) -> Option<(StatusCode, &'static str)> {
    let writes = !matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let headers = request.headers();
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    // A write with no body at all (`curl -X POST …/reset`) has no type to declare. It is no
    // cross-site risk: a browser sends `Origin` with any cross-origin POST, refused above.
    let bodiless = !headers.contains_key(header::CONTENT_TYPE)
        && axum::body::HttpBody::size_hint(request.body()).exact() == Some(0);
    (writes && !json && !bodiless).then_some((
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "control API writes with a body take `Content-Type: application/json`",
    ))
}
