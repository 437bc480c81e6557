//! REST calls forwarded to the upstream as they came, but for `Host` and `Origin`; a session
//! created through the proxy is journaled from its creation.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, Full, Limited};

use super::{Direction, MAX_BODY_BYTES, Proxy, Upstream, validate};
use crate::journal::JournalEvent;

/// Hop-by-hop headers (RFC 9110, section 7.6.1) and the ones the proxy sets itself.
fn forwarded(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// Any other request: forwarded to the upstream as it came, but for `Host` and `Origin`.
pub(super) async fn forward(
    State(proxy): State<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response(),
    };
    for broken in validate::rest_call(uri.path(), &headers) {
        proxy.violation(Direction::Client, broken, (None, None), Some(&path));
    }
    let (status, response_headers, response_body) =
        match send_in_time(&proxy, &method, &path, &headers, body.clone()).await {
            Ok(answer) => answer,
            Err(refused) => return refused,
        };
    if uri.path() == "/api/v1/sessions" && status == StatusCode::OK {
        journal_created_session(&proxy, &headers, &body, &response_body);
    }
    let mut response = (status, response_body).into_response();
    for (name, value) in &response_headers {
        if forwarded(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

/// The upstream's answer within the configured timeout; else, with a violation noted, the
/// client's 502 (the upstream failed) or 504 (it did not answer in time).
async fn send_in_time(
    proxy: &Proxy,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Bytes), Response> {
    let upstream = &proxy.inner.config.upstream;
    let timeout = proxy.inner.config.timeout;
    let answer = tokio::time::timeout(timeout, send(upstream, method, path, headers, body)).await;
    match answer {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(error)) => {
            proxy.violation(
                Direction::Upstream,
                validate::Broken {
                    rule: "upstream",
                    detail: format!("{method} {path}: {error}"),
                },
                (None, None),
                None,
            );
            Err((StatusCode::BAD_GATEWAY, format!("upstream failed: {error}")).into_response())
        }
        Err(_) => {
            proxy.violation(
                Direction::Upstream,
                validate::Broken {
                    rule: "upstream",
                    detail: format!("{method} {path}: no answer in {timeout:?}"),
                },
                (None, None),
                None,
            );
            Err((
                StatusCode::GATEWAY_TIMEOUT,
                "upstream did not answer in time",
            )
                .into_response())
        }
    }
}

/// Starts the journal of a session the upstream just created (its `session_id` read from the
/// answer) with the creating call.
fn journal_created_session(
    proxy: &Proxy,
    headers: &HeaderMap,
    body: &Bytes,
    response_body: &Bytes,
) {
    let Some(session) = serde_json::from_slice::<serde_json::Value>(response_body)
        .ok()
        .and_then(|v| v["session_id"].as_str().map(str::to_owned))
    else {
        return;
    };
    let note = crate::journal::RequestNote::new(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        body,
    );
    proxy.journal(
        &session,
        JournalEvent::Http {
            endpoint: crate::http_log::Endpoint::Sessions,
            status: StatusCode::OK.as_u16(),
            error: None,
            content_type: note.content_type,
            body: note.body,
        },
    );
}

/// One request to the upstream on a connection of its own.
async fn send(
    upstream: &Upstream,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    let mut sender = crate::http_client::connect(&upstream.authority, upstream.tls.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut request = hyper::Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::HOST, &upstream.authority);
    for (name, value) in headers {
        if !forwarded(name) {
            continue;
        }
        if name == header::ORIGIN {
            if let Ok(origin) = HeaderValue::from_str(&upstream.origin()) {
                request = request.header(header::ORIGIN, origin);
            }
            continue;
        }
        request = request.header(name, value);
    }
    let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("the upstream's answer: {e}"))?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| format!("the upstream's body: {e}"))?
        .to_bytes();
    Ok((parts.status, parts.headers, body))
}
