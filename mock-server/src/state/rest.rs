//! What the REST side of the state keeps: notes of calls made with a token before its session
//! exists, the server-wide HTTP log, and the optional rate limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{AppState, lock};
use crate::http_log::HttpCall;
use crate::journal::{JournalEntry, JournalEvent, RequestNote};

/// A fixed-window counter keyed by token (spec §12 A11).
#[derive(Debug, Default)]
pub(super) struct HttpLimiter {
    pub(super) windows: Mutex<HashMap<String, (Duration, u32)>>,
}

impl AppState {
    /// Remembers a REST call made with token `jti` for the session it will create.
    pub fn note_token_call(
        &self,
        jti: &str,
        endpoint: crate::http_log::Endpoint,
        status: u16,
        request: RequestNote,
    ) {
        let now = self.inner.clock.now();
        let mut pending = self
            .inner
            .pending_http
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Tokens that never create a session must not accumulate without bound.
        if pending.len() >= 10_000 {
            pending.clear();
        }
        pending
            .entry(jti.to_owned())
            .or_default()
            .push(JournalEntry {
                at_ms: now.elapsed.as_millis() as u64,
                unix_ms: now.unix_millis,
                event: JournalEvent::Http {
                    endpoint,
                    status,
                    error: None,
                    content_type: request.content_type,
                    body: request.body,
                },
            });
    }

    pub(super) fn take_pending_http(&self, jti: &str) -> Vec<JournalEntry> {
        self.inner
            .pending_http
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(jti)
            .unwrap_or_default()
    }

    /// Notes an answered HTTP request (REST call or `/ws` handshake).
    pub fn note_http_call(&self, mut call: HttpCall) {
        call.at_ms = self.inner.clock.now().elapsed.as_millis() as u64;
        lock(&self.inner.http_log).push(call);
    }

    /// Every REST call and `/ws` handshake answered, oldest first.
    pub fn http_calls(&self) -> Vec<HttpCall> {
        lock(&self.inner.http_log).calls()
    }

    /// Checks an HTTP rate limit for `key`; `Err(retry_after_seconds)` when over it.
    pub fn check_http_rate(&self, key: &str) -> Result<(), u64> {
        let Some(limits) = &self.inner.config.rate_limits else {
            return Ok(());
        };
        let now = self.inner.clock.now().elapsed;
        let window = Duration::from_secs(60);
        let mut windows = self
            .inner
            .limiter
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (start, count) = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.saturating_sub(*start) >= window {
            *start = now;
            *count = 0;
        }
        *count += 1;
        if *count > limits.http_requests_per_minute {
            let left = window.saturating_sub(now.saturating_sub(*start));
            return Err(left.as_secs().max(1));
        }
        Ok(())
    }
}
