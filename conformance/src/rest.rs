//! The two REST calls of the handshake, bounded in time, over `mock_server::http_client`
//! (loopback; `https://` with the mock's CA under `run --tls`).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::Value;
use std::sync::Arc;

/// What a REST call answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The JSON body (`Value::Null` when it is not JSON).
    pub body: Value,
    /// `Retry-After` in seconds, when given.
    pub retry_after: Option<u64>,
}

/// How long one REST call may take, connection included: a server that accepts and never
/// answers is an error, not a hang.
pub const REST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `POST base+path` with `headers` (the caller sets `Content-Type`) and `body`; an `https://`
/// base URL is verified with `tls`. At most [`REST_TIMEOUT`].
pub async fn post_json(
    base_url: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Answer, String> {
    tokio::time::timeout(REST_TIMEOUT, post(base_url, tls, path, headers, body))
        .await
        .map_err(|_| format!("POST {path}: no answer within {REST_TIMEOUT:?}"))?
}

async fn post(
    base_url: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Answer, String> {
    let (authority, tls) = match (base_url.split_once("://"), tls) {
        (Some(("http", rest)), _) => (rest, None),
        (Some(("https", rest)), Some(tls)) => (rest, Some(Arc::clone(tls))),
        (Some(("https", _)), None) => return Err(format!("{base_url}: https:// without a CA")),
        _ => return Err(format!("{base_url}: not an http:// or https:// base URL")),
    };
    let authority = authority.trim_end_matches('/');
    let mut sender = mock_server::http_client::connect(authority, tls)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = hyper::Request::post(path)
        .header("host", authority)
        .header("accept", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("POST {path}: {e}"))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("POST {path}: {e}"))?
        .to_bytes();
    Ok(Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        retry_after,
    })
}
