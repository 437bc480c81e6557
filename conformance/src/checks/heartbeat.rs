//! HB-1 and HB-2: heartbeats on each open connection.

use super::{Evidence, HEARTBEAT, Outcome};

/// A silence on an open connection this long breaks HB-1 whatever interval the client chose:
/// the 30 s default and half again.
const SILENCE_MS: u64 = 45_000;

/// Per connection: how long it was open (ms) and when it carried heartbeats.
fn heartbeats_per_connection(e: &Evidence) -> Vec<(u64, u64, Vec<u64>)> {
    let mut out = Vec::new();
    for session in &e.sessions {
        let beats: Vec<(u64, u64)> = session
            .sent_of(HEARTBEAT)
            .into_iter()
            .map(|s| (s.conn, s.at_ms))
            .collect();
        for c in session.connections() {
            let until = c.closed_ms.unwrap_or(e.end_ms);
            let times = beats
                .iter()
                .filter(|(conn, _)| *conn == c.conn)
                .map(|(_, at)| *at)
                .collect();
            out.push((c.opened_ms, until, times));
        }
    }
    out
}

/// The interval the client must use: the advertised one, or 30 s when none is (spec §3.5).
fn effective_interval_ms(e: &Evidence) -> (u64, &'static str) {
    if e.case.config.advertise_heartbeat_interval {
        (
            u64::from(e.case.config.heartbeat_interval_seconds) * 1000,
            "advertised",
        )
    } else {
        (30_000, "the default when none is advertised")
    }
}

/// HB-1: heartbeats are sent, and no open connection stays silent long enough to matter.
pub fn heartbeats_sent(e: &Evidence) -> Outcome {
    if let Some(nothing) = e.no_session() {
        return nothing;
    }
    let connections = heartbeats_per_connection(e);
    let mut total = 0;
    let mut longest_open = 0;
    for (opened, until, beats) in &connections {
        total += beats.len();
        longest_open = longest_open.max(until - opened);
        let mut last = *opened;
        for at in beats.iter().copied().chain(std::iter::once(*until)) {
            if at.saturating_sub(last) >= SILENCE_MS {
                return Outcome::Broken(format!(
                    "no heartbeat for {} ms on an open connection",
                    at - last
                ));
            }
            last = at;
        }
    }
    if total == 0 {
        return Outcome::NotObservable(format!(
            "no heartbeat in {longest_open} ms of connection: too short to tell none from a 30 s cadence (HB-2 judges the cadence)"
        ));
    }
    Outcome::Kept(format!(
        "{total} heartbeat(s), no open connection silent for {} s",
        SILENCE_MS / 1000
    ))
}

/// HB-2: the median gap between heartbeats of one connection is within 25 % of the interval.
pub fn heartbeat_cadence(e: &Evidence) -> Outcome {
    if let Some(nothing) = e.no_session() {
        return nothing;
    }
    let (interval, which) = effective_interval_ms(e);
    let connections = heartbeats_per_connection(e);
    let Some((opened, until, beats)) = connections.iter().max_by_key(|(_, _, b)| b.len()) else {
        return Outcome::NotObservable("no connection".into());
    };
    if beats.len() < 2 {
        let longest = connections.iter().map(|(o, u, _)| u - o).max().unwrap_or(0);
        if longest >= interval * 5 / 2 + 1_000 {
            return Outcome::Broken(format!(
                "{} heartbeat(s) on a connection open {longest} ms; {which} interval {} s",
                beats.len(),
                interval / 1000
            ));
        }
        return Outcome::NotObservable(format!(
            "{} heartbeat(s) on a connection open {} ms: too short for a cadence",
            beats.len(),
            until - opened
        ));
    }
    let mut gaps: Vec<u64> = beats.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    let (low, high) = (interval * 3 / 4, interval * 5 / 4);
    if (low..=high).contains(&median) {
        Outcome::Kept(format!(
            "median gap {median} ms over {} heartbeats; {which} interval {} s",
            beats.len(),
            interval / 1000
        ))
    } else {
        Outcome::Broken(format!(
            "median gap {median} ms between heartbeats; {which} interval {} s",
            interval / 1000
        ))
    }
}
