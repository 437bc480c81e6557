//! A minimal HTTP/1.1 client for the two REST calls of the handshake (loopback, plain HTTP).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// What a REST call answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The JSON body (`Value::Null` when it is not JSON).
    pub body: Value,
    /// `Retry-After` in seconds, when given.
    pub retry_after: Option<u64>,
}

/// `POST base+path` with `headers` (the caller sets `Content-Type`) and `body`.
pub async fn post_json(
    base_url: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Answer, String> {
    let authority = base_url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{base_url}: only http:// base URLs are supported"))?
        .trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(connection);
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
