//! The server-wide log of HTTP requests: both REST calls of the handshake and every `/ws`
//! upgrade, answered or refused, whether or not a session came of it. Session journals only
//! see requests that reached a session; a client that forgets `X-Host` never does, and the
//! conformance kit must still be able to say so (spec §11 AUTH-1).
//!
//! Secrets are never kept: the connector token only as "present or not", access tokens only as
//! their `jti` (an opaque id inside the JWT, useless without the token itself).

use std::collections::{BTreeMap, VecDeque};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Requests kept (the newest); a flood of tokens must not grow memory without bound.
pub const MAX_CALLS: usize = 10_000;

/// Which endpoint a request addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Endpoint {
    #[serde(rename = "/api/v1/access-token")]
    AccessToken,
    #[serde(rename = "/api/v1/sessions")]
    Sessions,
    #[serde(rename = "/ws")]
    WebSocket,
}

impl Endpoint {
    /// The endpoint a request path addresses, if any.
    pub fn of_path(path: &str) -> Option<Self> {
        [Self::AccessToken, Self::Sessions, Self::WebSocket]
            .into_iter()
            .find(|e| e.path() == path)
    }

    pub fn path(self) -> &'static str {
        match self {
            Self::AccessToken => "/api/v1/access-token",
            Self::Sessions => "/api/v1/sessions",
            Self::WebSocket => "/ws",
        }
    }
}

/// How an `Authorization` header was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationForm {
    /// `Bearer <token>`.
    Bearer,
    /// Present, but not `Bearer <token>`.
    Malformed,
}

/// What a request carried, without its secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RequestFacts {
    /// An `X-Token` header was sent (its value is a secret and is not kept).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub x_token: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<AuthorizationForm>,
    /// The request body (first 1 KiB); REST bodies carry no secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The `/ws` query, `access_token` redacted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// A `/ws` request that asked for a WebSocket upgrade (a connection attempt); a plain GET
    /// (a client asking why its socket did not open) is not one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upgrade: bool,
    /// Sent in plain HTTP to a port that serves TLS, and refused (400) unread: the client used
    /// `http://` or `ws://` where it should have used `https://` or `wss://`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plaintext: bool,
}

/// One answered request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HttpCall {
    /// Mock-clock milliseconds since the server started.
    pub at_ms: u64,
    pub endpoint: Endpoint,
    /// The answer: 200, 101 for an accepted upgrade, or the refusal's status.
    pub status: u16,
    /// The catalog string of a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `Retry-After` seconds of a 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    pub request: RequestFacts,
    /// The `jti` of the access token minted (access-token) or presented and verified
    /// (sessions, `/ws`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The session created (sessions) or addressed (`/ws`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// The newest [`MAX_CALLS`] requests, oldest first.
#[derive(Debug, Default)]
pub struct HttpLog {
    calls: VecDeque<HttpCall>,
}

impl HttpLog {
    pub fn push(&mut self, call: HttpCall) {
        if self.calls.len() >= MAX_CALLS {
            self.calls.pop_front();
        }
        self.calls.push_back(call);
    }

    pub fn calls(&self) -> Vec<HttpCall> {
        self.calls.iter().cloned().collect()
    }

    pub fn clear(&mut self) {
        self.calls.clear();
    }
}

/// Rate-limit answers armed for one endpoint: `count` 429s with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimited {
    pub count: u32,
    #[serde(default = "one_second")]
    pub retry_after_seconds: u32,
}

fn one_second() -> u32 {
    1
}

/// REST failures armed for the next calls (spec §10.1–10.3, §10.5): per endpoint, the 429s
/// (with `Retry-After`) come first, then the documented 500s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HttpFailures {
    /// `POST /api/v1/access-token` answers 500 `Failed to create access token`.
    pub access_token: u32,
    /// `POST /api/v1/sessions` answers 500 `Failed to create session`.
    pub sessions: u32,
    /// `POST /api/v1/access-token` answers 429 `Too Many Requests` with `Retry-After`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_429: Option<RateLimited>,
    /// `POST /api/v1/sessions` answers 429 `Too Many Requests` with `Retry-After`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_429: Option<RateLimited>,
}

/// What an armed failure makes a call answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmedFailure {
    ServerError,
    RateLimited { retry_after_seconds: u32 },
}

impl HttpFailures {
    /// Adds `more` to what is armed (counts add up; a new `Retry-After` replaces the old).
    pub fn add(&mut self, more: &HttpFailures) {
        self.access_token = self.access_token.saturating_add(more.access_token);
        self.sessions = self.sessions.saturating_add(more.sessions);
        for (mine, theirs) in [
            (&mut self.access_token_429, more.access_token_429),
            (&mut self.sessions_429, more.sessions_429),
        ] {
            if let Some(theirs) = theirs {
                let count = mine.map_or(0, |m| m.count).saturating_add(theirs.count);
                *mine = Some(RateLimited {
                    count,
                    retry_after_seconds: theirs.retry_after_seconds,
                });
            }
        }
    }

    /// Consumes the failure the next call of `endpoint` must answer, if any.
    pub fn take(&mut self, endpoint: Endpoint) -> Option<ArmedFailure> {
        let (errors, limited) = match endpoint {
            Endpoint::AccessToken => (&mut self.access_token, &mut self.access_token_429),
            Endpoint::Sessions => (&mut self.sessions, &mut self.sessions_429),
            Endpoint::WebSocket => return None,
        };
        if let Some(armed) = limited.as_mut().filter(|l| l.count > 0) {
            armed.count -= 1;
            let retry_after_seconds = armed.retry_after_seconds;
            if armed.count == 0 {
                *limited = None;
            }
            return Some(ArmedFailure::RateLimited {
                retry_after_seconds,
            });
        }
        if *errors > 0 {
            *errors -= 1;
            return Some(ArmedFailure::ServerError);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_come_before_server_errors_and_counts_add_up() {
        let mut armed = HttpFailures::default();
        armed.add(&HttpFailures {
            sessions: 1,
            sessions_429: Some(RateLimited {
                count: 1,
                retry_after_seconds: 3,
            }),
            ..HttpFailures::default()
        });
        armed.add(&HttpFailures {
            sessions: 1,
            ..HttpFailures::default()
        });
        assert_eq!(armed.take(Endpoint::AccessToken), None);
        assert_eq!(
            armed.take(Endpoint::Sessions),
            Some(ArmedFailure::RateLimited {
                retry_after_seconds: 3
            })
        );
        assert_eq!(
            armed.take(Endpoint::Sessions),
            Some(ArmedFailure::ServerError)
        );
        assert_eq!(
            armed.take(Endpoint::Sessions),
            Some(ArmedFailure::ServerError)
        );
        assert_eq!(armed.take(Endpoint::Sessions), None);
        assert_eq!(armed, HttpFailures::default());
    }

    #[test]
    fn the_control_body_of_old_still_parses() {
        let old: HttpFailures =
            serde_json::from_str(r#"{"access_token": 1, "sessions": 2}"#).expect("parses");
        assert_eq!((old.access_token, old.sessions), (1, 2));
        let limited: HttpFailures =
            serde_json::from_str(r#"{"access_token_429": {"count": 2}}"#).expect("parses");
        assert_eq!(
            limited.access_token_429,
            Some(RateLimited {
                count: 2,
                retry_after_seconds: 1
            })
        );
    }
}
