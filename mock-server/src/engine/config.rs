//! The engine's configuration: the §12 decisions a session consults.

use super::*;
use crate::protocol::ServerEvent;

/// Server-wide settings the engine consults (spec §12, the configurable parts).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Advertised in `SESSION_START`; `streaming` is filled per session, and a scenario may
    /// override the rest.
    pub capabilities: Capabilities,
    /// `SESSION_START.context_id`, omitted when `None` (spec §12 B12).
    pub context_id: Option<String>,
    /// Session inactivity before `REASON_USER_ABANDONED` (spec §12 C7).
    pub idle_timeout: Duration,
    /// How long an ended session still replays before it is gone (spec §12 C8).
    pub retention: Duration,
    /// Maximum events per replay batch (spec §12 C3).
    pub replay_batch_size: usize,
    /// Replay strictly `sequence > cursor`, without the leading `SESSION_START` (spec §12 C2).
    pub strict_cursor: bool,
    /// Whether a join after a client-managed or failed handoff brings the agent back (§12 E2).
    pub rejoin_after_handoff: bool,
    /// Whether `LANGUAGE_CHANGED` exists in the served revision; without it a language step
    /// sends nothing (profile 2026-05).
    pub language_changed: bool,
    /// Event types sent with `sequence: null` and not journaled (spec §12 B1).
    pub transient_types: Vec<String>,
    /// Scenario delays are divided by this (100 = a hundred times faster).
    pub time_scale: f64,
    /// When set, timestamps and ids come from a logical clock starting here (Unix ms) and
    /// advancing 1 ms per frame: same seed, same inputs, byte-identical frames.
    pub logical_clock_epoch: Option<u64>,
}

impl EngineConfig {
    /// The transient types of spec §12 B1.
    pub fn default_transient_types() -> Vec<String> {
        [
            ServerEvent::LIVE_AGENT_TYPING,
            ServerEvent::POLY_AGENT_THINKING,
            ServerEvent::HANDOFF_QUEUE_STATUS,
            ServerEvent::HEARTBEAT,
        ]
        .map(String::from)
        .to_vec()
    }

    pub(super) fn is_transient(&self, event_type: &str) -> bool {
        self.transient_types.iter().any(|t| t == event_type)
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            capabilities: Capabilities {
                streaming: None,
                max_message_size_bytes: Some(131_072),
                max_reconnect_attempts: Some(5),
                heartbeat_interval_seconds: Some(30),
            },
            context_id: None,
            idle_timeout: Duration::from_secs(600),
            retention: Duration::from_secs(600),
            replay_batch_size: 50,
            strict_cursor: false,
            rejoin_after_handoff: true,
            language_changed: true,
            transient_types: Self::default_transient_types(),
            time_scale: 1.0,
            logical_clock_epoch: None,
        }
    }
}
