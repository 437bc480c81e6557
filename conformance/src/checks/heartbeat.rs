//! HB-1 and HB-2: heartbeats on each open connection, every connection judged on its own (a
//! client whose heartbeat timer is not restarted after a reconnect has a silent second one).

use super::{Evidence, HEARTBEAT, Outcome};
use crate::tolerance::{NO_HEARTBEAT_MS, heartbeat_cadence_ok, heartbeats_stopped};

/// One accepted connection: its number, when it was open, and when it carried heartbeats.
struct Beats {
    conn: u64,
    opened: u64,
    until: u64,
    times: Vec<u64>,
}

impl Beats {
    fn open_ms(&self) -> u64 {
        self.until - self.opened
    }

    /// The median gap between its heartbeats (two or more).
    fn median_gap(&self) -> Option<u64> {
        let mut gaps: Vec<u64> = self.times.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_unstable();
        gaps.get(gaps.len() / 2).copied()
    }
}

fn heartbeats_per_connection(e: &Evidence) -> Vec<Beats> {
    let mut out = Vec::new();
    for session in &e.sessions {
        let beats: Vec<(u64, u64)> = session
            .sent_of(HEARTBEAT)
            .into_iter()
            .map(|s| (s.conn, s.at_ms))
            .collect();
        for c in session.connections() {
            let until = c
                .closed_ms
                .unwrap_or(e.end_ms)
                .min(e.exit_ms.max(c.opened_ms));
            let times = beats
                .iter()
                .filter(|(conn, _)| *conn == c.conn)
                .map(|(_, at)| *at)
                .collect();
            out.push(Beats {
                conn: c.conn,
                opened: c.opened_ms,
                until,
                times,
            });
        }
    }
    out
}

/// The interval the client must use: the advertised one, or 30 s when none is (spec §3.5).
fn effective_interval_ms(e: &Evidence) -> (u64, String) {
    if e.case.config.advertise_heartbeat_interval {
        let seconds = e.case.config.heartbeat_interval_seconds;
        (u64::from(seconds) * 1000, format!("told {seconds} s"))
    } else {
        (30_000, "told nothing, so the 30 s default".to_owned())
    }
}

/// HB-1: heartbeats are sent, and they keep coming. Broken when a connection stays open
/// [`NO_HEARTBEAT_MS`] without one (none at all, or a cadence slower than the 30 s default),
/// or when a client that had shown its cadence falls silent on an open connection (a timer
/// that stopped, or was not started again on a new connection).
pub fn heartbeats_sent(e: &Evidence) -> Outcome {
    if let Some(nothing) = e.no_session() {
        return nothing;
    }
    let connections = heartbeats_per_connection(e);
    let (_, told) = effective_interval_ms(e);
    let total: usize = connections.iter().map(|c| c.times.len()).sum();
    for c in &connections {
        let mut last = c.opened;
        for at in c.times.iter().copied().chain(std::iter::once(c.until)) {
            if at.saturating_sub(last) >= NO_HEARTBEAT_MS {
                let what = if c.times.is_empty() {
                    "no heartbeat at all".to_owned()
                } else {
                    format!("{} heartbeat(s), then none", c.times.len())
                };
                return Outcome::Broken(format!(
                    "{what} for {} ms on connection {} ({told})",
                    at - last,
                    c.conn
                ));
            }
            last = at;
        }
    }
    // The client's own cadence, from its connection with the most heartbeats.
    let shown = connections
        .iter()
        .filter(|c| c.times.len() >= 2)
        .max_by_key(|c| c.times.len());
    if let Some(cadence) = shown.and_then(Beats::median_gap) {
        let shown_on = shown.map_or(0, |c| c.conn);
        for c in &connections {
            // The silence before the first heartbeat counts from the connection's opening.
            let mut last = c.opened;
            for at in c.times.iter().copied().chain(std::iter::once(c.until)) {
                let silence = at.saturating_sub(last);
                if heartbeats_stopped(silence, cadence) {
                    let whose = if c.conn == shown_on {
                        "on the same connection".to_owned()
                    } else {
                        format!("on connection {} (a later one)", c.conn)
                    };
                    return Outcome::Broken(format!(
                        "sent heartbeats every ~{cadence} ms on connection {shown_on}, then none for {silence} ms {whose} ({told}): its heartbeats stopped"
                    ));
                }
                last = at;
            }
        }
    }
    if total == 0 {
        let longest = connections.iter().map(Beats::open_ms).max().unwrap_or(0);
        return Outcome::NotObservable(format!(
            "no heartbeat in {longest} ms of connection ({told}): too short to tell none from a 30 s cadence (HB-2 judges the cadence)"
        ));
    }
    Outcome::Kept(format!(
        "{total} heartbeat(s) on {} connection(s), none silent for long ({told})",
        connections.iter().filter(|c| !c.times.is_empty()).count()
    ))
}

/// HB-2: on every connection, the first heartbeat comes within a quarter more than the
/// interval the client was told (and a second) after it opened, and on every connection open
/// long enough the median gap between heartbeats is within tolerance of that interval.
pub fn heartbeat_cadence(e: &Evidence) -> Outcome {
    if let Some(nothing) = e.no_session() {
        return nothing;
    }
    let (interval, told) = effective_interval_ms(e);
    let connections = heartbeats_per_connection(e);
    let long_enough = interval * 5 / 2 + 1_000;
    // Later than this after the connection opened, the first heartbeat is late (or missing).
    let first_due = interval * 5 / 4 + 1_000;
    let mut judged = Vec::new();
    for c in &connections {
        let first = c.times.first().map_or(c.until, |at| *at);
        if first.saturating_sub(c.opened) > first_due {
            let what = if c.times.is_empty() {
                format!(
                    "no heartbeat in the {} ms connection {} was open",
                    c.open_ms(),
                    c.conn
                )
            } else {
                format!(
                    "the first heartbeat on connection {} came {} ms after it opened",
                    c.conn,
                    first - c.opened
                )
            };
            return Outcome::Broken(format!("{what} ({told})"));
        }
        match c.median_gap() {
            Some(median) if heartbeat_cadence_ok(median, interval) => {
                judged.push(format!("#{}: {median} ms", c.conn));
            }
            Some(median) => {
                return Outcome::Broken(format!(
                    "median gap {median} ms between {} heartbeats on connection {} ({told})",
                    c.times.len(),
                    c.conn
                ));
            }
            None if c.open_ms() >= long_enough => {
                return Outcome::Broken(format!(
                    "{} heartbeat(s) on connection {}, open {} ms ({told})",
                    c.times.len(),
                    c.conn,
                    c.open_ms()
                ));
            }
            None => {}
        }
    }
    if judged.is_empty() {
        let longest = connections.iter().map(Beats::open_ms).max().unwrap_or(0);
        return Outcome::NotObservable(format!(
            "no connection carried two heartbeats; the longest was open {longest} ms: too short for a cadence ({told})"
        ));
    }
    Outcome::Kept(format!("median gaps {} ({told})", judged.join(", ")))
}
