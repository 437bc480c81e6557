//! The server's clock.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::Now;

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
        state.anchor_mock
            + real
                .saturating_duration_since(state.anchor_real)
                .mul_f64(state.scale)
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

    /// The real instant at which mock time reaches `deadline`.
    pub fn instant_at(&self, deadline: Duration) -> Instant {
        let state = self.state();
        let ahead = deadline.saturating_sub(state.anchor_mock);
        state.anchor_real + ahead.div_f64(state.scale)
    }

    /// Moves mock time forward by `by` at once: due timers fire on their next wake-up.
    pub fn advance(&self, by: Duration) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let real = Instant::now();
        state.anchor_mock = Self::elapsed(&state, real) + by;
        state.anchor_real = real;
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
