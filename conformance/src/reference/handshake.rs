//! The REST handshake: a token and a session, each call retried after a 429 or a 5xx
//! (spec §11 AUTH-1/2/3/5).

use std::time::Duration;

use super::connection::BACKOFF_CAP;
use super::{ClientConfig, ClientError, Defect, Session};
use crate::rest::post_json;

/// REST retries after a 5xx start here and double (spec §10.1 asks only for exponential).
const REST_BACKOFF_START: Duration = Duration::from_millis(500);
/// Attempts of one REST call before giving up.
const REST_ATTEMPTS: u32 = 5;

/// `post_json`, retried: after a 429 once `Retry-After` has passed, after a 5xx with a
/// doubling delay (spec §11 AUTH-5).
async fn post_retrying(
    config: &ClientConfig,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<crate::rest::Answer, ClientError> {
    let defects = config.defects;
    let mut delay = REST_BACKOFF_START;
    for attempt in 1..=REST_ATTEMPTS {
        let answer = post_json(&config.base_url, config.tls.as_ref(), path, headers, body)
            .await
            .map_err(ClientError::Http)?;
        let retryable = answer.status == 429 || answer.status >= 500;
        if !retryable || attempt == REST_ATTEMPTS || defects.has(Defect::NoRestRetry) {
            return Ok(answer);
        }
        let wait = if answer.status == 429 {
            if defects.has(Defect::RetryAfterIgnored) {
                Duration::from_millis(500)
            } else if defects.has(Defect::RetryAfterFixed3S) {
                Duration::from_secs(3)
            } else {
                Duration::from_secs(answer.retry_after.unwrap_or(1))
            }
        } else if defects.has(Defect::RestConstantBackoff) {
            Duration::from_secs(1)
        } else {
            let wait = delay;
            delay = (delay * 2).min(BACKOFF_CAP);
            wait
        };
        tokio::time::sleep(wait).await;
    }
    Err(ClientError::Http(format!("{path}: no answer")))
}

/// A token (fresh, unless `reuse` is given and the defect keeps tokens) and a session.
pub(super) async fn new_session(
    config: &ClientConfig,
    reuse: Option<&str>,
) -> Result<Session, ClientError> {
    let defects = config.defects;
    let json = if defects.has(Defect::NoContentType) {
        "text/plain"
    } else {
        "application/json"
    };
    let token = match reuse.filter(|_| defects.has(Defect::TokenReuse)) {
        Some(token) => token.to_owned(),
        None => {
            let mut headers = vec![
                ("x-token", config.connector_token.as_str()),
                ("content-type", json),
            ];
            if !defects.has(Defect::NoXHost) {
                headers.push(("x-host", config.host.as_str()));
            }
            let answer = post_retrying(config, "/api/v1/access-token", &headers, "{}").await?;
            match (answer.status, answer.body["access_token"].as_str()) {
                (200, Some(token)) => token.to_owned(),
                _ => {
                    return Err(ClientError::Refused {
                        endpoint: "/api/v1/access-token",
                        status: answer.status,
                        body: answer.body.to_string(),
                    });
                }
            }
        }
    };
    let bearer = format!("Bearer {token}");
    let request =
        serde_json::json!({ "streaming_enabled": config.streaming, "platform": "custom" });
    let answer = post_retrying(
        config,
        "/api/v1/sessions",
        &[("authorization", &bearer), ("content-type", json)],
        &request.to_string(),
    )
    .await?;
    match (answer.status, answer.body["session_id"].as_str()) {
        (200, Some(id)) => Ok(Session {
            token,
            id: id.to_owned(),
        }),
        _ => Err(ClientError::Refused {
            endpoint: "/api/v1/sessions",
            status: answer.status,
            body: answer.body.to_string(),
        }),
    }
}
