//! Server configuration: every knob spec §12 calls "configurable", with working defaults.
//!
//! A config file is JSON (`--config FILE`); command-line flags override single fields. Zero
//! configuration gives a working server with one default connector.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::Connector;
use crate::engine::EngineConfig;
use crate::protocol::{Capabilities, DecodeOptions};

/// What a session is bound to (spec §12 A8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionBinding {
    /// The exact access token (`jti`) that created the session (default).
    #[default]
    Token,
    /// Any token of the same connector.
    Connector,
}

/// Which revision of the documentation the mock serves (spec §0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
pub enum Profile {
    /// The protocol as documented now (since the June 2026 revision).
    #[default]
    #[serde(rename = "current")]
    #[value(name = "current")]
    Current,
    /// As documented before June 2026 (spec §0, 2026-05-20): the cursor is `seq:<n>` (a plain
    /// `<n>` is unparseable, so the server replays everything), no `LANGUAGE_CHANGED` event,
    /// and `platform` knows only `web`, `ios`, `android`, `custom`.
    #[serde(rename = "2026-05")]
    #[value(name = "2026-05")]
    May2026,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::May2026 => "2026-05",
        }
    }

    /// Whether a `cursor` of this form is understood: `seq:<n>` always, a plain `<n>` since
    /// the 2026-05-29 revision.
    pub fn accepts_plain_cursor(self) -> bool {
        self == Self::Current
    }

    /// Whether `EVENT_TYPE_LANGUAGE_CHANGED` exists (added 2026-06-12).
    pub fn has_language_changed(self) -> bool {
        self == Self::Current
    }

    /// Whether `platform` lists this value (`ios-web` and `android-web` came 2026-06-01).
    pub fn knows_platform(self, platform: &crate::protocol::Platform) -> bool {
        use crate::protocol::Platform;
        platform.is_known()
            && (self == Self::Current
                || !matches!(platform, Platform::IosWeb | Platform::AndroidWeb))
    }
}

/// Optional rate limits (spec §10.5, §12 A11). Off unless configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Requests per minute per connector token (access-token) or access token (sessions);
    /// over it: 429 with `Retry-After`.
    pub http_requests_per_minute: u32,
    /// Client frames per second per session; frames over it are dropped silently.
    pub ws_frames_per_second: u32,
}

/// The whole configuration. Durations are in seconds (fractions allowed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The documentation revision served: `current` or `2026-05` (spec §0).
    pub profile: Profile,
    /// Known connectors (spec §1.3). Default: one, token `mock-connector-token`, host `localhost`.
    pub connectors: Vec<Connector>,
    /// `expires_in` of access tokens (spec §12 A7).
    pub token_ttl_seconds: u64,
    /// HS256 key for access tokens; a random per-process key when absent.
    pub jwt_secret: Option<String>,
    pub session_binding: SessionBinding,
    /// Reject unknown `platform` values with 400 (spec §12 A6). Default: accept them.
    pub strict_platform: bool,
    /// `SESSION_START.capabilities.max_message_size_bytes`, also the inbound frame limit.
    pub max_message_size_bytes: u64,
    pub max_reconnect_attempts: u32,
    pub heartbeat_interval_seconds: u32,
    /// Put `heartbeat_interval_seconds` in `SESSION_START.capabilities`. Off, clients must fall
    /// back to the documented 30 s (spec §3.5).
    pub advertise_heartbeat_interval: bool,
    /// `SESSION_START.context_id` (spec §12 B12); omitted when absent.
    pub context_id: Option<String>,
    /// A client gets this long to send a request's headers (also the longest an idle
    /// keep-alive connection stays open).
    pub http_header_timeout_seconds: f64,
    /// Session inactivity before `REASON_USER_ABANDONED` (spec §12 C7).
    pub session_idle_timeout_seconds: f64,
    /// A silent socket is closed with 1001 after this (spec §12 C7).
    pub connection_idle_timeout_seconds: f64,
    /// An ended session still replays for this long, then handshakes get 404 (spec §12 C8).
    pub session_retention_seconds: f64,
    pub max_connections_per_session: usize,
    /// Sessions held at once, live or ended-and-retained. At the cap the oldest ended session
    /// is let go early; with none ended, `POST /api/v1/sessions` answers 429 (docs/mock.md, Limits).
    pub max_sessions: usize,
    /// Open WebSockets across all sessions; the next handshake answers 503 (docs/mock.md, Limits).
    pub max_connections: usize,
    /// A socket that has not taken a frame for this long is closed (1008) and its slot freed.
    pub write_timeout_seconds: f64,
    pub replay_batch_size: usize,
    /// Replay strictly `sequence > cursor` without the leading `SESSION_START` (spec §12 C2).
    pub strict_cursor: bool,
    /// A join after a client-managed or failed handoff brings the agent back (spec §12 E2).
    pub rejoin_after_handoff: bool,
    /// Types sent with `sequence: null` and not journaled (spec §12 B1).
    pub transient_types: Vec<String>,
    /// Treat a missing `payload` as `{}` (spec §12 B9).
    pub lenient_missing_payload: bool,
    /// Accept whitespace-only message text (spec §12 B10).
    pub allow_blank_text: bool,
    /// Close with 1009 on an oversized frame instead of answering `Message too large` (§12 B13).
    pub close_on_oversized_frame: bool,
    /// `Access-Control-Allow-Origin` (spec §12 A10).
    pub cors_allow_origin: String,
    pub rate_limits: Option<RateLimits>,
    /// Seed for ids and random scenario choices; the scenario's own seed, or random per
    /// process, when absent.
    pub seed: Option<u64>,
    /// The scenario sessions run unless their connector names another: a catalogue name
    /// (`playground`, `handoff/server-managed`, ...) or a path to a file.
    pub scenario: String,
    /// Scenario delays are divided by this: 100 plays a scenario a hundred times faster.
    pub time_scale: f64,
    /// REST failures armed at start (as `POST /_mock/http-failures` would).
    pub http_failures: crate::http_log::HttpFailures,
    /// Hold each connection's history this long; frames the client sends meanwhile are
    /// journaled as sent before the history (spec §11 WS-2 becomes observable).
    pub replay_delay_ms: u64,
    /// After `SESSION_END`, wait this long for the client to close the socket itself before the
    /// server closes it with 1000 (spec §6.4.2: "the client should close the socket"); 0 closes
    /// at once (spec §12 D1). Makes a client that never closes visible (spec §11 UX-4).
    pub session_end_close_grace_ms: u64,
    /// Append each session's journal to `<record_dir>/<session_id>.jsonl`.
    pub record_dir: Option<std::path::PathBuf>,
    /// Journal entries kept in memory per session (the newest; a recording keeps them all).
    /// Every frame is an entry of about 200 bytes, so this bounds a busy session's memory;
    /// `0` keeps none (pure load tests).
    pub journal_max_entries: usize,
    /// In-memory journal bytes per session (oldest entries go first).
    pub journal_max_bytes: usize,
    /// In-memory journal bytes of all sessions together: each session's share is this divided
    /// by the sessions held (at most `journal_max_bytes`); the archive of gone sessions gets as
    /// much again.
    pub journal_total_max_bytes: usize,
    /// A client frame longer than this is journaled as its start, its length, `truncated`.
    pub journal_frame_max_bytes: usize,
    /// Bearer token the control API (`/_mock/`) requires. Without it, only loopback peers may
    /// use the control API, and only with a loopback `Host` and `Origin`.
    pub control_token: Option<String>,
    /// Where the control API may read scenario files from; empty: anywhere the server can read.
    pub scenario_dirs: Vec<std::path::PathBuf>,
    /// Timestamps and ids from a logical clock starting at this Unix time (ms), advancing 1 ms
    /// per frame, so a seed reproduces byte-identical frames.
    pub logical_clock_epoch_ms: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            connectors: vec![Connector::default_connector()],
            token_ttl_seconds: 86_400,
            jwt_secret: None,
            session_binding: SessionBinding::Token,
            profile: Profile::Current,
            strict_platform: false,
            max_message_size_bytes: 131_072,
            max_reconnect_attempts: 5,
            heartbeat_interval_seconds: 30,
            advertise_heartbeat_interval: true,
            context_id: None,
            http_header_timeout_seconds: 10.0,
            session_idle_timeout_seconds: 600.0,
            connection_idle_timeout_seconds: 600.0,
            session_retention_seconds: 600.0,
            max_connections_per_session: 10,
            max_sessions: 20_000,
            max_connections: 20_000,
            write_timeout_seconds: 10.0,
            replay_batch_size: 50,
            strict_cursor: false,
            rejoin_after_handoff: true,
            transient_types: EngineConfig::default_transient_types(),
            lenient_missing_payload: false,
            allow_blank_text: true,
            close_on_oversized_frame: false,
            cors_allow_origin: "*".into(),
            rate_limits: None,
            seed: None,
            scenario: crate::scenario::DEFAULT_SCENARIO.into(),
            time_scale: 1.0,
            replay_delay_ms: 0,
            session_end_close_grace_ms: 0,
            http_failures: crate::http_log::HttpFailures::default(),
            record_dir: None,
            journal_max_entries: crate::journal::DEFAULT_MAX_ENTRIES,
            journal_max_bytes: crate::journal::DEFAULT_MAX_BYTES,
            journal_total_max_bytes: crate::journal::DEFAULT_TOTAL_MAX_BYTES,
            journal_frame_max_bytes: crate::journal::DEFAULT_FRAME_MAX_BYTES,
            control_token: None,
            scenario_dirs: Vec::new(),
            logical_clock_epoch_ms: None,
        }
    }
}

/// A configuration that cannot run. Says which field and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is invalid")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("`{field}` {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
}

fn invalid(field: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        problem: problem.into(),
    }
}

impl Config {
    /// Reads a JSON config file; absent fields keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
            path: shown,
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every field a server cannot run with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.connectors.is_empty() {
            return Err(invalid("connectors", "must list at least one connector"));
        }
        for (field, seconds) in [
            (
                "session_idle_timeout_seconds",
                self.session_idle_timeout_seconds,
            ),
            (
                "connection_idle_timeout_seconds",
                self.connection_idle_timeout_seconds,
            ),
            ("session_retention_seconds", self.session_retention_seconds),
            (
                "http_header_timeout_seconds",
                self.http_header_timeout_seconds,
            ),
            ("write_timeout_seconds", self.write_timeout_seconds),
        ] {
            if !(seconds.is_finite() && seconds > 0.0 && seconds < 1e9) {
                return Err(invalid(
                    field,
                    format!("must be a positive number of seconds, got {seconds}"),
                ));
            }
        }
        if self.jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err(invalid(
                "jwt_secret",
                "must be at least 32 bytes: an HS256 key shorter than its hash is guessable (leave it out for a random per-process key)",
            ));
        }
        if self.token_ttl_seconds == 0 {
            return Err(invalid("token_ttl_seconds", "must be at least 1"));
        }
        for (field, value) in [
            ("max_sessions", self.max_sessions),
            ("max_connections", self.max_connections),
        ] {
            if value == 0 {
                return Err(invalid(field, "must be at least 1"));
            }
        }
        if self.journal_frame_max_bytes < 64 {
            return Err(invalid("journal_frame_max_bytes", "must be at least 64"));
        }
        if self.max_connections_per_session == 0 {
            return Err(invalid("max_connections_per_session", "must be at least 1"));
        }
        if self.replay_batch_size == 0 {
            return Err(invalid("replay_batch_size", "must be at least 1"));
        }
        if self.max_message_size_bytes < 1024 {
            return Err(invalid("max_message_size_bytes", "must be at least 1024"));
        }
        if !(self.time_scale.is_finite() && (1e-3..=1e6).contains(&self.time_scale)) {
            return Err(invalid(
                "time_scale",
                format!("must be between 0.001 and 1000000, got {}", self.time_scale),
            ));
        }
        if let Some(limits) = &self.rate_limits
            && (limits.http_requests_per_minute == 0 || limits.ws_frames_per_second == 0)
        {
            return Err(invalid("rate_limits", "limits must be at least 1"));
        }
        Ok(())
    }

    pub fn session_idle_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.session_idle_timeout_seconds)
    }

    pub fn connection_idle_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connection_idle_timeout_seconds)
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.write_timeout_seconds)
    }

    pub fn http_header_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.http_header_timeout_seconds)
    }

    pub fn session_retention(&self) -> Duration {
        Duration::from_secs_f64(self.session_retention_seconds)
    }

    /// The engine's view of this configuration.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            capabilities: Capabilities {
                streaming: None,
                max_message_size_bytes: Some(self.max_message_size_bytes),
                max_reconnect_attempts: Some(self.max_reconnect_attempts),
                heartbeat_interval_seconds: self
                    .advertise_heartbeat_interval
                    .then_some(self.heartbeat_interval_seconds),
            },
            context_id: self.context_id.clone(),
            idle_timeout: self.session_idle_timeout(),
            retention: self.session_retention(),
            replay_batch_size: self.replay_batch_size,
            strict_cursor: self.strict_cursor,
            language_changed: self.profile.has_language_changed(),
            rejoin_after_handoff: self.rejoin_after_handoff,
            transient_types: self.transient_types.clone(),
            time_scale: self.time_scale,
            logical_clock_epoch: self.logical_clock_epoch_ms,
        }
    }

    pub fn decode_options(&self) -> DecodeOptions {
        DecodeOptions {
            max_message_size_bytes: usize::try_from(self.max_message_size_bytes)
                .unwrap_or(usize::MAX),
            missing_payload_is_empty: self.lenient_missing_payload,
            allow_blank_text: self.allow_blank_text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_is_valid_and_a_partial_file_keeps_defaults() {
        Config::default().validate().expect("valid");
        let config: Config =
            serde_json::from_str(r#"{"session_idle_timeout_seconds": 0.5}"#).expect("parses");
        assert_eq!(config.session_idle_timeout(), Duration::from_millis(500));
        assert_eq!(config.max_connections_per_session, 10);
    }

    #[test]
    fn bad_values_name_their_field() {
        let config = Config {
            session_retention_seconds: -1.0,
            ..Config::default()
        };
        let error = config.validate().expect_err("invalid").to_string();
        assert!(error.contains("session_retention_seconds"), "{error}");
        let unknown = serde_json::from_str::<Config>(r#"{"sesion_idle_timeout_seconds": 1}"#)
            .expect_err("unknown field")
            .to_string();
        assert!(unknown.contains("sesion_idle_timeout_seconds"), "{unknown}");
    }
}
