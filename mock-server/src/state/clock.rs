//! The server's clock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering, fence};
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
///
/// Every frame reads it, from every worker thread, and the control API changes it rarely: the
/// state is a sequence lock over three atomics, so a read writes nothing shared (a mutex made
/// the workers take turns at one cache line on every frame).
#[derive(Debug)]
pub struct Clock {
    origin_unix_millis: u64,
    /// The instant the anchors count from.
    base: Instant,
    /// Odd while a change is being written.
    seq: AtomicU64,
    anchor_real_nanos: AtomicU64,
    anchor_mock_nanos: AtomicU64,
    scale_bits: AtomicU64,
    /// One writer at a time.
    writer: Mutex<()>,
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
            base: Instant::now(),
            seq: AtomicU64::new(0),
            anchor_real_nanos: AtomicU64::new(0),
            anchor_mock_nanos: AtomicU64::new(0),
            scale_bits: AtomicU64::new(1.0f64.to_bits()),
            writer: Mutex::new(()),
        }
    }

    fn state(&self) -> ClockState {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let real = self.anchor_real_nanos.load(Ordering::Relaxed);
            let mock = self.anchor_mock_nanos.load(Ordering::Relaxed);
            let scale = self.scale_bits.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return ClockState {
                    anchor_real: self.base + Duration::from_nanos(real),
                    anchor_mock: Duration::from_nanos(mock),
                    scale: f64::from_bits(scale),
                };
            }
        }
    }

    /// Changes the state with `change`, which sees the state and the real instant now, and
    /// publishes it (unchanged when `change` left it so); returns what `change` did.
    fn update<T>(&self, change: impl FnOnce(&mut ClockState, Instant) -> T) -> T {
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut state = self.state();
        let out = change(&mut state, Instant::now());
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let real = state.anchor_real.saturating_duration_since(self.base);
        self.anchor_real_nanos.store(nanos(real), Ordering::Relaxed);
        self.anchor_mock_nanos
            .store(nanos(state.anchor_mock), Ordering::Relaxed);
        self.scale_bits
            .store(state.scale.to_bits(), Ordering::Relaxed);
        self.seq.store(seq + 2, Ordering::Release);
        out
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
        self.update(|state, real| {
            let now = Self::elapsed(state, real);
            let later = now
                .checked_add(by)
                .filter(|t| *t <= MAX_MOCK_TIME)
                .ok_or(now)?;
            state.anchor_mock = later;
            state.anchor_real = real;
            Ok(())
        })
    }

    /// Runs mock time `scale` times as fast as real time from now on.
    pub fn set_scale(&self, scale: f64) {
        self.update(|state, real| {
            state.anchor_mock = Self::elapsed(state, real);
            state.anchor_real = real;
            state.scale = scale;
        });
    }

    pub fn scale(&self) -> f64 {
        self.state().scale
    }
}

/// Nanoseconds in a `u64`: mock time stops at [`MAX_MOCK_TIME`] (a hundred years), well inside.
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_and_scale_move_mock_time_and_wall_time_together() {
        let clock = Clock::start();
        let before = clock.now();
        clock
            .advance(Duration::from_secs(10))
            .expect("within range");
        let after = clock.now();
        assert!(after.elapsed >= before.elapsed + Duration::from_secs(10));
        assert_eq!(
            after.unix_millis - before.unix_millis,
            (after.elapsed - before.elapsed).as_millis() as u64
        );
        clock.set_scale(1000.0);
        assert_eq!(clock.scale(), 1000.0);
        let refused = clock.advance(MAX_MOCK_TIME);
        assert!(
            matches!(refused, Err(now) if now >= after.elapsed),
            "{refused:?}"
        );
    }

    /// Readers racing a writer never see half a change: with the anchors moving on every
    /// change, a read that mixed an old and a new anchor would put mock time out of order.
    #[test]
    fn readers_racing_changes_see_time_in_order() {
        let clock = std::sync::Arc::new(Clock::start());
        let writer = std::thread::spawn({
            let clock = clock.clone();
            move || {
                for _ in 0..50_000 {
                    clock
                        .advance(Duration::from_millis(1))
                        .expect("within range");
                }
            }
        });
        let mut last = Duration::ZERO;
        while !writer.is_finished() {
            let now = clock.now().elapsed;
            assert!(now >= last, "mock time went back from {last:?} to {now:?}");
            last = now;
        }
        writer.join().expect("writer");
        assert!(clock.now().elapsed >= Duration::from_secs(50));
    }
}
