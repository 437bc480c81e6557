//! The timing tolerances of the checks, in one place. Each timing check judges with these, and
//! a property test over the draws ([`crate::params`]) proves that no constant a client could
//! hard-code lies within tolerance of every draw of a profile (the argument, obligation by
//! obligation, is in `conformance/README.md`, "Draws no constant can pass").

/// HB-2: the median gap between heartbeats is within a quarter of the interval the client was
/// told (or 30 s when none was advertised).
pub fn heartbeat_cadence_ok(median_gap_ms: u64, interval_ms: u64) -> bool {
    (interval_ms * 3 / 4..=interval_ms * 5 / 4).contains(&median_gap_ms)
}

/// WS-2: how long after the history was sent a join may still be a decision taken on it (the
/// client reads the batch, finds no `POLY_AGENT_JOINED`, and joins): a join later than this was
/// not waiting for the history but for something else, a timer.
pub const JOIN_AFTER_HISTORY_MS: u64 = 1_500;

/// WS-2: a join sent `join_ms` after the connection opened, whose history the mock held back
/// `hold_back_ms`: after the history, and soon after it.
pub fn join_timing_ok(join_ms: u64, hold_back_ms: u64) -> bool {
    join_ms >= hold_back_ms && join_ms - hold_back_ms <= JOIN_AFTER_HISTORY_MS
}

/// AUTH-5: a retry `waited_ms` after a 429 whose `Retry-After` was `seconds`: not before it
/// (100 ms for the clocks of two processes), and not so long after that the header cannot
/// have been what the client waited for (a quarter more and half a second).
pub fn retry_after_ok(waited_ms: u64, seconds: u64) -> bool {
    let told = seconds * 1_000;
    waited_ms + 100 >= told && waited_ms <= told + told / 4 + 500
}

/// RC-3: the first reconnect attempt after a drop comes about 1 s after it.
pub fn first_retry_ok(after_drop_ms: u64) -> bool {
    (600..=2_000).contains(&after_drop_ms)
}

/// RC-3: a later delay between attempts grows (×1.3 at least) until both sit at the 30 s cap.
pub fn backoff_step_ok(before_ms: u64, after_ms: u64) -> bool {
    let capped = before_ms >= 25_000 && after_ms >= 25_000;
    after_ms <= 31_000 && (capped || after_ms as f64 >= before_ms as f64 * 1.3)
}

/// RC-4: exactly the advertised number of attempts.
pub fn attempts_ok(attempts: u64, advertised: u64) -> bool {
    attempts == advertised
}

/// HB-1: no heartbeat on a connection open this long breaks HB-1 whatever the interval: a
/// client keeping even the 30 s default (a quarter late) has sent one by then.
pub const NO_HEARTBEAT_MS: u64 = 40_000;

/// HB-1: once a client has shown its cadence (`cadence_ms`, the median gap of its
/// heartbeats), a silence this long on an open connection means its heartbeats stopped.
pub fn heartbeats_stopped(silence_ms: u64, cadence_ms: u64) -> bool {
    silence_ms > cadence_ms * 5 / 2 + 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tolerance_accepts_the_spec_value_and_refuses_its_neighbours() {
        assert!(heartbeat_cadence_ok(3_000, 3_000));
        assert!(!heartbeat_cadence_ok(2_000, 3_000));
        assert!(!heartbeat_cadence_ok(30_000, 3_000));
        assert!(join_timing_ok(700, 500));
        assert!(!join_timing_ok(400, 500), "before the history");
        assert!(!join_timing_ok(2_100, 500), "long after it");
        assert!(retry_after_ok(2_000, 2));
        assert!(!retry_after_ok(1_500, 2));
        assert!(!retry_after_ok(5_000, 2));
        assert!(first_retry_ok(1_000) && !first_retry_ok(100) && !first_retry_ok(5_000));
        assert!(backoff_step_ok(1_000, 2_000));
        assert!(!backoff_step_ok(2_000, 2_000));
        assert!(backoff_step_ok(30_000, 30_000));
        assert!(!backoff_step_ok(16_000, 45_000));
        assert!(attempts_ok(3, 3) && !attempts_ok(4, 3));
        assert!(!heartbeats_stopped(5_000, 2_000) && heartbeats_stopped(7_000, 2_000));
    }

    /// The values a profile's cases draw for each timing obligation, read from the cases as
    /// instantiated (so a new case or a changed draw is covered without editing this).
    struct Drawn {
        heartbeat_ms: Vec<u64>,
        hold_back_ms: Vec<u64>,
        retry_after_s: Vec<u64>,
        attempts: Vec<u64>,
        /// Attempts of the cases that judge the backoff's growth.
        backoff_attempts: Vec<u64>,
    }

    fn drawn(seed: u64, profile: crate::cases::Tier) -> Drawn {
        use crate::obligations::ObligationId as O;
        let cases = crate::cases::catalogue().expect("the catalogue loads");
        let params = crate::params::Params::draw(seed);
        let mut out = Drawn {
            heartbeat_ms: Vec::new(),
            hold_back_ms: Vec::new(),
            retry_after_s: Vec::new(),
            attempts: Vec::new(),
            backoff_attempts: Vec::new(),
        };
        for case in crate::runner::select(&cases, profile, &[]) {
            let run = case.instantiate(&params).expect("instantiates");
            let config = &run.config;
            let checks = |id| run.checks.contains(&id);
            if checks(O::Hb2) && config.advertise_heartbeat_interval {
                out.heartbeat_ms
                    .push(u64::from(config.heartbeat_interval_seconds) * 1_000);
            }
            if checks(O::Ws2) && config.replay_delay_ms > 0 {
                out.hold_back_ms.push(config.replay_delay_ms);
            }
            if checks(O::Auth5) {
                let failures = &config.http_failures;
                for armed in [&failures.access_token_429, &failures.sessions_429]
                    .into_iter()
                    .flatten()
                {
                    out.retry_after_s.push(u64::from(armed.retry_after_seconds));
                }
            }
            if checks(O::Rc4) {
                out.attempts.push(u64::from(config.max_reconnect_attempts));
            }
            if checks(O::Rc3) && checks(O::Rc4) {
                out.backoff_attempts
                    .push(u64::from(config.max_reconnect_attempts));
            }
        }
        out
    }

    /// The constants (ms, 25 ms apart, up to a minute) that pass every draw.
    fn passing_all(draws: &[u64], passes: impl Fn(u64, u64) -> bool) -> Vec<u64> {
        (0..=60_000u64)
            .step_by(25)
            .filter(|c| draws.iter().all(|d| passes(*c, *d)))
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever the seed, no value a client could hard-code is within tolerance of every
        /// draw of the full profile: not a heartbeat period, not a join delay, not a wait after
        /// a 429, not an attempt count. And one case shows three growth steps of the backoff.
        #[test]
        fn no_constant_passes_every_draw_of_the_full_profile(seed in proptest::prelude::any::<u64>()) {
            let d = drawn(seed, crate::cases::Tier::Full);
            proptest::prop_assert!(d.heartbeat_ms.len() >= 2, "{:?}", d.heartbeat_ms);
            proptest::prop_assert!(d.hold_back_ms.len() >= 2, "{:?}", d.hold_back_ms);
            proptest::prop_assert!(d.retry_after_s.len() >= 2, "{:?}", d.retry_after_s);
            proptest::prop_assert!(d.attempts.len() >= 2, "{:?}", d.attempts);
            let heartbeat = passing_all(&d.heartbeat_ms, heartbeat_cadence_ok);
            proptest::prop_assert!(heartbeat.is_empty(), "heartbeat every {:?} ms passes {:?}", heartbeat.first(), d.heartbeat_ms);
            let join = passing_all(&d.hold_back_ms, join_timing_ok);
            proptest::prop_assert!(join.is_empty(), "a join {:?} ms after opening passes {:?}", join.first(), d.hold_back_ms);
            let wait = passing_all(&d.retry_after_s, retry_after_ok);
            proptest::prop_assert!(wait.is_empty(), "a wait of {:?} ms passes {:?}", wait.first(), d.retry_after_s);
            let attempts: Vec<u64> = (0..=10)
                .filter(|n| d.attempts.iter().all(|a| attempts_ok(*n, *a)))
                .collect();
            proptest::prop_assert!(attempts.is_empty(), "{attempts:?} attempts pass {:?}", d.attempts);
            // Three growth steps (four delays: 1 s, 2 s, 4 s, 8 s) need four attempts.
            proptest::prop_assert!(d.backoff_attempts.iter().any(|a| *a >= 4), "{:?}", d.backoff_attempts);
        }
    }

    /// The negative control: with the draws the kit had before (heartbeats of 2 s and 3 s,
    /// hold-backs up to 1.38 s, Retry-After 2 s and 3 s), the property finds the constants
    /// that passed them all.
    #[test]
    fn the_property_finds_constants_that_fit_draws_too_close_together() {
        assert!(passing_all(&[2_000, 3_000], heartbeat_cadence_ok).contains(&2_400));
        assert!(passing_all(&[500, 1_380], join_timing_ok).contains(&1_500));
        assert!(passing_all(&[2, 3], retry_after_ok).contains(&3_000));
        assert!(!passing_all(&[2_000, 6_000], heartbeat_cadence_ok).contains(&2_400));
    }
}
