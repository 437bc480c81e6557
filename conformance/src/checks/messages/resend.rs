//! MSG-5: a message whose echo was lost is resent with the same `metadata.custom`, on time, at
//! most 3 times, then shown failed.

use std::collections::HashSet;

use serde_json::Value;

use crate::cases::shorten;
use crate::checks::{Connection, Evidence, Outcome, Sent, SessionRecord, USER_MESSAGE, event_type};
use crate::contract::{Author, MessageStatus};

/// MSG-5: a message whose echo was lost is resent 4–7.5 s later with the same
/// `metadata.custom`; never sooner than 4 s after the previous try (resends right after a
/// reconnect aside), never after its echo, never on a connection whose history holds its
/// echo, at most 3 times.
/// After the third resend, spec §4.4 has the message marked failed 5 s later: not while it is
/// still due a try, and not long after. `Some` names what was wrong.
fn failed_on_time(e: &Evidence, text: &str, last_try_ms: u64) -> Option<String> {
    let failed = |sample: &&crate::checks::Sample| {
        sample.view.messages.iter().flatten().any(|m| {
            m.from == Author::User && m.text == text && m.status == Some(MessageStatus::Failed)
        })
    };
    let shown = e.samples.iter().find(failed);
    let (earliest, latest) = (last_try_ms + 4_000, last_try_ms + 9_000);
    match shown {
        Some(sample) if sample.replied_ms < earliest => Some(format!(
            "showed `{}` failed {} ms after its third resend; about 5 s expected",
            shorten(text),
            sample.replied_ms as i64 - last_try_ms as i64
        )),
        Some(sample) if sample.sent_ms > latest => Some(format!(
            "showed `{}` failed only {} ms after its third resend; about 5 s expected",
            shorten(text),
            sample.sent_ms - last_try_ms
        )),
        None if e.end_ms > latest => Some(format!(
            "never showed `{}` failed after its third resend",
            shorten(text)
        )),
        _ => None,
    }
}

/// MSG-5, judged: every user message the client sent, session by session, by its tries.
pub fn lost_messages_resent(e: &Evidence) -> Outcome {
    let mut judged = Vec::new();
    let mut kept_across = 0;
    for session in &e.sessions {
        let sends = SessionSends::of(e, session);
        let mut texts: Vec<&str> = sends.sent.iter().filter_map(|s| s.text_payload()).collect();
        texts.dedup();
        let mut done = HashSet::new();
        for text in texts {
            if !done.insert(text) {
                continue;
            }
            match sends.judge(text) {
                Err(problem) => return Outcome::Broken(problem),
                Ok(Tries::Unremarkable) => {}
                Ok(Tries::KeptAcross) => kept_across += 1,
                Ok(Tries::Resent(n, gap)) => judged.push((text.to_owned(), n, gap)),
            }
        }
    }
    summary(&judged, kept_across)
}

/// What one sent message's tries came to, when they broke nothing.
enum Tries {
    /// Nothing to report: echoed in time, or no resend could be judged.
    Unremarkable,
    /// Echoed, and not sent again across a reconnect that came after its echo.
    KeptAcross,
    /// Lost its echo and was resent this many times, the first this many ms after the first try.
    Resent(usize, u64),
}

/// One session's user messages, as the client sent them and as the server echoed them.
struct SessionSends<'e> {
    e: &'e Evidence,
    session: &'e SessionRecord,
    sent: Vec<Sent>,
    /// Each echo: when it arrived, its `metadata.custom`, its text.
    echoes: Vec<(u64, Value, String)>,
    connections: Vec<Connection>,
    /// When each connection after the first opened.
    reconnects: Vec<u64>,
}

impl<'e> SessionSends<'e> {
    /// Gathers what `session` shows of the user's messages.
    fn of(e: &'e Evidence, session: &'e SessionRecord) -> Self {
        let echoes = session
            .deliveries()
            .into_iter()
            .filter(|d| event_type(&d.event) == USER_MESSAGE)
            .map(|d| {
                let text = d.event["payload"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (d.at_ms, d.event["metadata"]["custom"].clone(), text)
            })
            .collect();
        let connections = session.connections();
        let reconnects = connections.iter().skip(1).map(|c| c.opened_ms).collect();
        SessionSends {
            e,
            session,
            sent: session.sent_of(USER_MESSAGE),
            echoes,
            connections,
            reconnects,
        }
    }

    /// Judges the tries of the message with `text`; `Err` names what was wrong.
    fn judge(&self, text: &str) -> Result<Tries, String> {
        let tries: Vec<&Sent> = self
            .sent
            .iter()
            .filter(|s| s.text_payload() == Some(text))
            .collect();
        let first = tries[0];
        let custom = first
            .custom()
            .filter(|c| c.as_object().is_some_and(|o| !o.is_empty()));
        let echoed_at = self
            .echoes
            .iter()
            .filter(|(_, echoed, echoed_text)| match custom {
                Some(custom) => echoed == custom,
                None => echoed_text == text,
            })
            .map(|(at, _, _)| *at)
            .min();
        let lost = echoed_at.is_none_or(|at| at > first.at_ms + 5_000);
        let Some(custom) = custom else {
            if lost {
                return Err(format!(
                    "sent `{}` without metadata.custom, so its echo cannot serve as a receipt",
                    shorten(text)
                ));
            }
            return Ok(Tries::Unremarkable);
        };
        if let Some(problem) = self.resends_wrong(text, &tries, custom, echoed_at) {
            return Err(problem);
        }
        if !lost {
            // Echoed, and not sent again across a reconnect that came after its echo.
            if echoed_at.is_some_and(|echoed| self.reconnects.iter().any(|r| *r > echoed)) {
                return Ok(Tries::KeptAcross);
            }
            return Ok(Tries::Unremarkable);
        }
        self.lost_echo(text, &tries)
    }

    /// A resend with another `metadata.custom`, after the echo, or too soon after the
    /// previous try (right after a reconnect aside). `Some` names it.
    fn resends_wrong(
        &self,
        text: &str,
        tries: &[&Sent],
        custom: &Value,
        echoed_at: Option<u64>,
    ) -> Option<String> {
        for resend in &tries[1..] {
            if resend.custom() != Some(custom) {
                return Some(format!(
                    "resent `{}` at {} ms with metadata.custom {}, not {}",
                    shorten(text),
                    resend.at_ms,
                    resend.custom().cloned().unwrap_or_default(),
                    custom
                ));
            }
            if let Some(echoed) = echoed_at
                && resend.at_ms > echoed + 500
            {
                return Some(format!(
                    "resent `{}` at {} ms although its echo arrived at {echoed} ms",
                    shorten(text),
                    resend.at_ms
                ));
            }
            if self.history_holds_echo(resend.conn, custom) {
                return Some(format!(
                    "resent `{}` at {} ms on a connection whose history held its echo: the \
                     server got it twice",
                    shorten(text),
                    resend.at_ms
                ));
            }
        }
        for w in tries.windows(2) {
            let gap = w[1].at_ms - w[0].at_ms;
            let after_reconnect = self
                .reconnects
                .iter()
                .any(|r| *r <= w[1].at_ms && w[1].at_ms - r < 1_500 && *r > w[0].at_ms);
            if gap < 4_000 && !after_reconnect {
                return Some(format!(
                    "resent `{}` {gap} ms after the previous try; about 5 s expected",
                    shorten(text)
                ));
            }
        }
        None
    }

    /// Whether the history sent on connection `conn` carries the echo of a message with this
    /// `metadata.custom` (so the server had it before the connection opened).
    fn history_holds_echo(&self, conn: u64, custom: &Value) -> bool {
        self.session
            .replay(conn)
            .iter()
            .any(|e| event_type(e) == USER_MESSAGE && e["metadata"]["custom"] == *custom)
    }

    /// Judges the tries of a message that lost its echo: resent, on time, at most 3 times,
    /// then shown failed. `Err` names what was wrong.
    fn lost_echo(&self, text: &str, tries: &[&Sent]) -> Result<Tries, String> {
        let first = tries[0];
        if tries.len() > 4 {
            return Err(format!(
                "sent `{}` {} times: more than 3 resends",
                shorten(text),
                tries.len()
            ));
        }
        // A session the client had left by the time a resend was due (a new session
        // instead of a reconnect is RC-1's) cannot carry one.
        let still_there = self
            .connections
            .iter()
            .any(|c| c.closed_ms.is_none_or(|t| t > first.at_ms + 5_000));
        let resent = match tries.get(1) {
            None if !still_there => Tries::Unremarkable,
            None if self.e.end_ms.saturating_sub(first.at_ms) >= 7_500 => {
                return Err(format!(
                    "`{}` got no echo and was never sent again",
                    shorten(text)
                ));
            }
            None => Tries::Unremarkable,
            Some(second) => {
                let gap = second.at_ms - first.at_ms;
                if gap > 7_500 {
                    return Err(format!(
                        "resent `{}` {gap} ms after the first try; about 5 s expected",
                        shorten(text)
                    ));
                }
                Tries::Resent(tries.len() - 1, gap)
            }
        };
        if tries.len() == 4
            && let Some(problem) = failed_on_time(self.e, text, tries[3].at_ms)
        {
            return Err(problem);
        }
        Ok(resent)
    }
}

/// The verdict once no message's tries broke anything: what was judged, if anything was.
fn summary(judged: &[(String, usize, u64)], kept_across: usize) -> Outcome {
    if judged.is_empty() && kept_across == 0 {
        return Outcome::NotObservable(
            "no message lost its echo, and none was echoed before a reconnect".into(),
        );
    }
    let mut shown: Vec<String> = judged
        .iter()
        .map(|(t, n, gap)| {
            format!(
                "`{}` resent {n}× (first after {gap} ms) with the same metadata.custom",
                shorten(t)
            )
        })
        .collect();
    if kept_across > 0 {
        shown.push(format!(
            "{kept_across} message(s) echoed before a reconnect, none sent again after it"
        ));
    }
    Outcome::Kept(shown.join("; "))
}
