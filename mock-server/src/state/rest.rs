//! What the REST side of the state keeps: notes of calls made with a token before its session
//! exists, the server-wide HTTP log, the failures armed for the next calls, and the optional
//! rate limits' windows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{AppState, lock};
use crate::http_log::{ArmedFailure, Endpoint, HttpCall, HttpFailures, HttpLog};
use crate::journal::{JournalEntry, JournalEvent, RequestNote};

/// Tokens whose calls wait for a session, at most (tokens that never create one must not
/// accumulate without bound).
const PENDING_TOKENS: usize = 10_000;

#[derive(Debug, Default)]
pub(super) struct RestNotes {
    /// Journal entries of REST calls by token `jti`, until a session claims them.
    pending: Mutex<HashMap<String, Vec<JournalEntry>>>,
    /// Every REST call and `/ws` handshake answered, session or not (the newest 10 000).
    log: Mutex<HttpLog>,
    /// Armed REST failures (control API): the next calls of an endpoint answer 429 or 500.
    failures: Mutex<HttpFailures>,
    /// A fixed window per key (spec §12 A11): its start and its count.
    windows: Mutex<HashMap<String, (Duration, u32)>>,
}

impl RestNotes {
    pub(super) fn new(failures: HttpFailures) -> Self {
        Self {
            failures: Mutex::new(failures),
            ..Self::default()
        }
    }

    fn remember(&self, jti: &str, entry: JournalEntry) {
        let mut pending = lock(&self.pending);
        if pending.len() >= PENDING_TOKENS {
            pending.clear();
        }
        pending.entry(jti.to_owned()).or_default().push(entry);
    }

    pub(super) fn take_pending(&self, jti: &str) -> Vec<JournalEntry> {
        lock(&self.pending).remove(jti).unwrap_or_default()
    }

    /// Counts one call of `key` in the window at `now`; `Err(retry_after_seconds)` when the
    /// window already holds `per_minute`.
    fn count(&self, key: &str, now: Duration, per_minute: u32) -> Result<(), u64> {
        let window = Duration::from_secs(60);
        let mut windows = lock(&self.windows);
        let (start, count) = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.saturating_sub(*start) >= window {
            *start = now;
            *count = 0;
        }
        *count += 1;
        if *count > per_minute {
            let left = window.saturating_sub(now.saturating_sub(*start));
            return Err(left.as_secs().max(1));
        }
        Ok(())
    }

    pub(super) fn arm(&self, failures: HttpFailures) -> HttpFailures {
        let mut armed = lock(&self.failures);
        armed.add(&failures);
        *armed
    }

    /// Forgets every note, armed failure and logged call.
    pub(super) fn clear(&self) {
        lock(&self.pending).clear();
        *lock(&self.failures) = HttpFailures::default();
        lock(&self.log).clear();
    }
}

impl AppState {
    /// Remembers a REST call made with token `jti` for the session it will create.
    pub fn note_token_call(
        &self,
        jti: &str,
        endpoint: Endpoint,
        status: u16,
        request: RequestNote,
    ) {
        let now = self.inner.clock.now();
        self.inner.rest.remember(
            jti,
            JournalEntry {
                at_ms: now.elapsed.as_millis() as u64,
                unix_ms: now.unix_millis,
                event: JournalEvent::Http {
                    endpoint,
                    status,
                    error: None,
                    content_type: request.content_type,
                    body: request.body,
                },
            },
        );
    }

    /// Notes an answered HTTP request (REST call or `/ws` handshake).
    pub fn note_http_call(&self, mut call: HttpCall) {
        call.at_ms = self.inner.clock.now().elapsed.as_millis() as u64;
        lock(&self.inner.rest.log).push(call);
    }

    /// Every REST call and `/ws` handshake answered, oldest first.
    pub fn http_calls(&self) -> Vec<HttpCall> {
        lock(&self.inner.rest.log).calls()
    }

    /// Checks an HTTP rate limit for `key`; `Err(retry_after_seconds)` when over it.
    pub fn check_http_rate(&self, key: &str) -> Result<(), u64> {
        let Some(limits) = &self.inner.config.rate_limits else {
            return Ok(());
        };
        let now = self.inner.clock.now().elapsed;
        self.inner
            .rest
            .count(key, now, limits.http_requests_per_minute)
    }

    /// Arms failures of the next REST calls (added to any already armed); returns what is
    /// armed now.
    pub fn arm_http_failures(&self, failures: HttpFailures) -> HttpFailures {
        self.inner.rest.arm(failures)
    }

    /// The failure this call of `endpoint` must answer, if one is armed (consuming it).
    pub fn take_http_failure(&self, endpoint: Endpoint) -> Option<ArmedFailure> {
        lock(&self.inner.rest.failures).take(endpoint)
    }
}
