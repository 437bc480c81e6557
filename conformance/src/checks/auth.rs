//! AUTH-1, AUTH-2, AUTH-3, AUTH-5: the REST handshake, from the server-wide HTTP log (so a
//! call the server refused counts as much as one that led to a session).

use mock_server::http_log::{AuthorizationForm, Endpoint, HttpCall};
use serde_json::Value;

use super::{Evidence, Outcome};
use crate::tolerance::retry_after_ok;

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        c.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// AUTH-1: every access-token call carries both headers, JSON, and the body `{}`.
pub fn access_token_calls(e: &Evidence) -> Outcome {
    let calls = e.http_of(Endpoint::AccessToken);
    if calls.is_empty() {
        return if e.starts().is_empty() {
            Outcome::NotObservable("the user never started a conversation".into())
        } else {
            Outcome::Broken(
                "the user started a conversation; the client never called POST /api/v1/access-token"
                    .into(),
            )
        };
    }
    for call in &calls {
        let request = &call.request;
        let problem = if !request.x_token {
            Some("without X-Token".to_owned())
        } else if request.x_host.is_none() {
            Some("without X-Host".to_owned())
        } else if !is_json(request.content_type.as_deref()) {
            Some(format!(
                "with Content-Type {:?}, not application/json",
                request.content_type.as_deref().unwrap_or("(none)")
            ))
        } else {
            let body = request.body.as_deref().unwrap_or_default();
            (serde_json::from_str::<Value>(body).ok() != Some(serde_json::json!({})))
                .then(|| format!("with the body {body:?}, not {{}}"))
        };
        if let Some(problem) = problem {
            return Outcome::Broken(format!(
                "called the access-token endpoint at {} ms {problem} (answered {}{})",
                call.at_ms,
                call.status,
                call.error
                    .as_deref()
                    .map(|e| format!(" `{e}`"))
                    .unwrap_or_default()
            ));
        }
    }
    Outcome::Kept(format!(
        "{} access-token call(s), each with X-Token, X-Host, application/json and {{}}",
        calls.len()
    ))
}

/// A body the sessions endpoint documents: absent, or a JSON object whose known fields have
/// their documented types.
fn session_body_problem(body: &str) -> Option<String> {
    if body.trim().is_empty() {
        return None;
    }
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return Some(format!("the body {body:?} is not JSON"));
    };
    let Some(object) = value.as_object() else {
        return Some(format!("the body {body} is not a JSON object"));
    };
    if object
        .get("streaming_enabled")
        .is_some_and(|v| !v.is_boolean())
    {
        return Some("`streaming_enabled` is not a boolean".into());
    }
    if object.get("platform").is_some_and(|v| !v.is_string()) {
        return Some("`platform` is not a string".into());
    }
    None
}

/// AUTH-2: every sessions call carries `Authorization: Bearer <token>` with a token the server
/// issued, JSON, and a body the server parses.
pub fn session_calls(e: &Evidence) -> Outcome {
    let calls = e.http_of(Endpoint::Sessions);
    if calls.is_empty() {
        let got_token = e
            .http_of(Endpoint::AccessToken)
            .iter()
            .any(|c| c.status == 200);
        return if got_token {
            Outcome::Broken("got an access token but never called POST /api/v1/sessions".into())
        } else {
            Outcome::NotObservable("the client never got an access token (see AUTH-1)".into())
        };
    }
    for call in &calls {
        let request = &call.request;
        let problem = match request.authorization {
            None => Some("without an Authorization header".to_owned()),
            Some(AuthorizationForm::Malformed) => {
                Some("with an Authorization header not of the form `Bearer <token>`".to_owned())
            }
            Some(AuthorizationForm::Bearer) if call.token.is_none() => {
                Some("with a Bearer token the server never issued".to_owned())
            }
            Some(AuthorizationForm::Bearer) => None,
        }
        .or_else(|| {
            (!is_json(request.content_type.as_deref())).then(|| {
                format!(
                    "with Content-Type {:?}, not application/json",
                    request.content_type.as_deref().unwrap_or("(none)")
                )
            })
        })
        .or_else(|| session_body_problem(request.body.as_deref().unwrap_or_default()));
        if let Some(problem) = problem {
            return Outcome::Broken(format!(
                "called the sessions endpoint at {} ms {problem} (answered {})",
                call.at_ms, call.status
            ));
        }
    }
    Outcome::Kept(format!(
        "{} sessions call(s), each with a Bearer token, application/json and a valid body",
        calls.len()
    ))
}

/// AUTH-3: no token creates two sessions.
pub fn fresh_token_per_session(e: &Evidence) -> Outcome {
    let created: Vec<&HttpCall> = e
        .http_of(Endpoint::Sessions)
        .into_iter()
        .filter(|c| c.status == 200)
        .collect();
    if created.len() < 2 {
        return Outcome::NotObservable(format!(
            "{} session(s): a reused token needs two",
            created.len()
        ));
    }
    for (i, call) in created.iter().enumerate() {
        if created[..i]
            .iter()
            .any(|earlier| earlier.token == call.token)
        {
            return Outcome::Broken(format!(
                "session {} was created at {} ms with the token of an earlier session",
                call.session_id.as_deref().unwrap_or("?"),
                call.at_ms
            ));
        }
    }
    Outcome::Kept(format!(
        "{} sessions, each created with a token of its own",
        created.len()
    ))
}

/// AUTH-5: after a 429, no retry before `Retry-After`; after a 5xx, not at once, with growing
/// delays over consecutive 5xx; and a retry at all.
pub fn rest_retries(e: &Evidence) -> Outcome {
    let mut judged = Vec::new();
    for endpoint in [Endpoint::AccessToken, Endpoint::Sessions] {
        let calls = e.http_of(endpoint);
        let mut previous_5xx_gap: Option<u64> = None;
        for (i, call) in calls.iter().enumerate() {
            let retryable = call.status == 429 || call.status >= 500;
            if !retryable {
                previous_5xx_gap = None;
                continue;
            }
            let Some(next) = calls.get(i + 1) else {
                return Outcome::Broken(format!(
                    "gave up after {} on {} at {} ms",
                    call.status,
                    endpoint.path(),
                    call.at_ms
                ));
            };
            let gap = next.at_ms.saturating_sub(call.at_ms);
            if call.status == 429 {
                let seconds = call.retry_after.unwrap_or(1);
                if !retry_after_ok(gap, seconds) {
                    let how = if gap < seconds * 1_000 {
                        "before it had passed"
                    } else {
                        "long after it: the wait was not the header's"
                    };
                    return Outcome::Broken(format!(
                        "retried {} {gap} ms after a 429 whose Retry-After was {seconds} s, {how}",
                        endpoint.path(),
                    ));
                }
                judged.push(format!("429 (Retry-After {seconds} s): waited {gap} ms"));
                previous_5xx_gap = None;
                continue;
            }
            if gap < 250 {
                return Outcome::Broken(format!(
                    "retried {} {gap} ms after a {}: no backoff",
                    endpoint.path(),
                    call.status
                ));
            }
            if let Some(before) = previous_5xx_gap
                && (gap as f64) < before as f64 * 1.3
            {
                return Outcome::Broken(format!(
                    "consecutive {}s on {}: waited {before} ms, then {gap} ms (no growth)",
                    call.status,
                    endpoint.path()
                ));
            }
            judged.push(format!("{}: waited {gap} ms", call.status));
            previous_5xx_gap = Some(gap);
        }
    }
    if judged.is_empty() {
        Outcome::NotObservable("no REST call was refused with 429 or 5xx".into())
    } else {
        Outcome::Kept(judged.join("; "))
    }
}
