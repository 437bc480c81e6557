//! The server's clock.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::Now;

/// How far the mock clock may go: a hundred years, so every deadline computed from it stays
/// representable however often `advance_ms` is called.
pub const MAX_MOCK_TIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The slowest and fastest clock rates the control API accepts.
pub const SCALE_RANGE: std::ops::RangeInclusive<f64> = 1e-3..=1e6;

/// The server's clock: monotonic time (pausable in tests, and scalable or advanced through the
/// control API) and wall time derived from it, so timestamps follow it too.
#[derive(Debug)]
pub struct Clock {
    origin_unix_millis: u64,
    state: Mutex<ClockState>,
}

#[derive(Debug, Clone, Copy)]
struct ClockState {
    /// Real instant and mock time at the last change of rate or offset.
    anchor_real: Instant,
    anchor_mock: Duration,
    /// Mock seconds per real second.
    scale: f64,
}

impl Clock {
    pub fn start() -> Self {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            origin_unix_millis: unix.as_millis() as u64,
            state: Mutex::new(ClockState {
                anchor_real: Instant::now(),
                anchor_mock: Duration::ZERO,
                scale: 1.0,
            }),
        }
    }

    fn state(&self) -> ClockState {
        *self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn elapsed(state: &ClockState, real: Instant) -> Duration {
        let since = real
            .saturating_duration_since(state.anchor_real)
            .as_secs_f64()
            * state.scale;
        let since = Duration::try_from_secs_f64(since).unwrap_or(MAX_MOCK_TIME);
        state.anchor_mock.saturating_add(since).min(MAX_MOCK_TIME)
    }

    pub fn now(&self) -> Now {
        let elapsed = Self::elapsed(&self.state(), Instant::now());
        Now {
            elapsed,
            unix_millis: self.origin_unix_millis + elapsed.as_millis() as u64,
        }
    }

    pub fn unix_seconds(&self) -> u64 {
        self.now().unix_millis / 1000
    }

    /// The real instant at which mock time reaches `deadline` (a year from now at the latest:
    /// a timer task wakes then and looks again).
    pub fn instant_at(&self, deadline: Duration) -> Instant {
        let state = self.state();
        let ahead = deadline.saturating_sub(state.anchor_mock).as_secs_f64() / state.scale;
        let latest = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        Duration::try_from_secs_f64(ahead)
            .ok()
            .and_then(|ahead| state.anchor_real.checked_add(ahead))
            .map_or(latest, |at| at.min(latest))
    }

    /// Moves mock time forward by `by` at once: due timers fire on their next wake-up. Refused
    /// (with the current mock time) past [`MAX_MOCK_TIME`].
    pub fn advance(&self, by: Duration) -> Result<(), Duration> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let real = Instant::now();
        let now = Self::elapsed(&state, real);
        let later = now
            .checked_add(by)
            .filter(|t| *t <= MAX_MOCK_TIME)
            .ok_or(now)?;
        state.anchor_mock = later;
        state.anchor_real = real;
        Ok(())
    }

    /// Runs mock time `scale` times as fast as real time from now on.
    pub fn set_scale(&self, scale: f64) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let real = Instant::now();
        state.anchor_mock = Self::elapsed(&state, real);
        state.anchor_real = real;
        state.scale = scale;
    }

    pub fn scale(&self) -> f64 {
        self.state().scale
    }
}
