//! The signal that ends a connection whatever it is doing.

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::Poll;

use futures_util::task::AtomicWaker;

/// Why a connection must end now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The session dropped it for falling too far behind (journaled then).
    Overflowed = 1,
    /// The server is shutting down.
    ShuttingDown = 2,
}

/// Tripped once, by the session (overflow) or the server (shutdown); the first reason stays.
///
/// The connection loop polls it on every turn, so it is an atomic and a waker. A
/// `CancellationToken` takes two locks per poll, and two of them (shutdown and overflow) cost
/// about 3 % of the mock's CPU on the echo path.
#[derive(Debug, Default)]
pub struct Stop {
    reason: AtomicU8,
    waker: AtomicWaker,
}

impl Stop {
    pub(crate) fn trip(&self, reason: StopReason) {
        let _ = self
            .reason
            .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire);
        self.waker.wake();
    }

    pub fn reason(&self) -> Option<StopReason> {
        match self.reason.load(Ordering::Acquire) {
            1 => Some(StopReason::Overflowed),
            2 => Some(StopReason::ShuttingDown),
            _ => None,
        }
    }

    /// Resolves once tripped. One task waits on a `Stop`: the connection's own.
    pub fn tripped(&self) -> impl Future<Output = StopReason> + '_ {
        std::future::poll_fn(move |cx| {
            if let Some(reason) = self.reason() {
                return Poll::Ready(reason);
            }
            self.waker.register(cx.waker());
            // A trip between the first look and the registration woke no one: look again.
            self.reason().map_or(Poll::Pending, Poll::Ready)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_trip_wakes_the_waiting_task_and_the_first_reason_stays() {
        let stop = std::sync::Arc::new(Stop::default());
        assert_eq!(stop.reason(), None);
        let waiting = tokio::spawn({
            let stop = stop.clone();
            async move { stop.tripped().await }
        });
        tokio::task::yield_now().await;
        stop.trip(StopReason::Overflowed);
        stop.trip(StopReason::ShuttingDown);
        let reason = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(reason, StopReason::Overflowed);
        assert_eq!(stop.reason(), Some(StopReason::Overflowed));
    }

    #[tokio::test]
    async fn an_untripped_stop_stays_pending() {
        let stop = Stop::default();
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), stop.tripped()).await;
        assert!(waited.is_err(), "resolved without a trip");
    }
}
