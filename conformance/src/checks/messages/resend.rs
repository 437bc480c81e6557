//! MSG-5: a message whose echo was lost is resent with the same `metadata.custom`, on time, at
//! most 3 times, then shown failed.

use std::collections::HashSet;

use serde_json::Value;

use crate::cases::shorten;
use crate::checks::{Evidence, Outcome, USER_MESSAGE, event_type};
use crate::contract::{Author, MessageStatus};

/// MSG-5: a message whose echo was lost is resent 4–7.5 s later with the same
/// `metadata.custom`; never sooner than 4 s after the previous try (resends right after a
/// reconnect aside), never after its echo, at most 3 times.
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

pub fn lost_messages_resent(e: &Evidence) -> Outcome {
    let mut judged = Vec::new();
    let mut kept_across = 0;
    for session in &e.sessions {
        let sent = session.sent_of(USER_MESSAGE);
        let echoes: Vec<(u64, Value, String)> = session
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
        let reconnects: Vec<u64> = session
            .connections()
            .iter()
            .skip(1)
            .map(|c| c.opened_ms)
            .collect();
        let mut texts: Vec<&str> = sent.iter().filter_map(|s| s.text_payload()).collect();
        texts.dedup();
        let mut done = HashSet::new();
        for text in texts {
            if !done.insert(text) {
                continue;
            }
            let tries: Vec<_> = sent
                .iter()
                .filter(|s| s.text_payload() == Some(text))
                .collect();
            let first = tries[0];
            let custom = first
                .custom()
                .filter(|c| c.as_object().is_some_and(|o| !o.is_empty()));
            let echoed_at = echoes
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
                    return Outcome::Broken(format!(
                        "sent `{}` without metadata.custom, so its echo cannot serve as a receipt",
                        shorten(text)
                    ));
                }
                continue;
            };
            for resend in &tries[1..] {
                if resend.custom() != Some(custom) {
                    return Outcome::Broken(format!(
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
                    return Outcome::Broken(format!(
                        "resent `{}` at {} ms although its echo arrived at {echoed} ms",
                        shorten(text),
                        resend.at_ms
                    ));
                }
            }
            for w in tries.windows(2) {
                let gap = w[1].at_ms - w[0].at_ms;
                let after_reconnect = reconnects
                    .iter()
                    .any(|r| *r <= w[1].at_ms && w[1].at_ms - r < 1_500 && *r > w[0].at_ms);
                if gap < 4_000 && !after_reconnect {
                    return Outcome::Broken(format!(
                        "resent `{}` {gap} ms after the previous try; about 5 s expected",
                        shorten(text)
                    ));
                }
            }
            if !lost {
                // Echoed, and not sent again across a reconnect that came after its echo.
                if echoed_at.is_some_and(|echoed| reconnects.iter().any(|r| *r > echoed)) {
                    kept_across += 1;
                }
                continue;
            }
            if tries.len() > 4 {
                return Outcome::Broken(format!(
                    "sent `{}` {} times: more than 3 resends",
                    shorten(text),
                    tries.len()
                ));
            }
            // A session the client had left by the time a resend was due (a new session
            // instead of a reconnect is RC-1's) cannot carry one.
            let still_there = session
                .connections()
                .iter()
                .any(|c| c.closed_ms.is_none_or(|t| t > first.at_ms + 5_000));
            match tries.get(1) {
                None if !still_there => {}
                None if e.end_ms.saturating_sub(first.at_ms) >= 7_500 => {
                    return Outcome::Broken(format!(
                        "`{}` got no echo and was never sent again",
                        shorten(text)
                    ));
                }
                None => {}
                Some(second) => {
                    let gap = second.at_ms - first.at_ms;
                    if gap > 7_500 {
                        return Outcome::Broken(format!(
                            "resent `{}` {gap} ms after the first try; about 5 s expected",
                            shorten(text)
                        ));
                    }
                    judged.push((text.to_owned(), tries.len() - 1, gap));
                }
            }
            if tries.len() == 4
                && let Some(problem) = failed_on_time(e, text, tries[3].at_ms)
            {
                return Outcome::Broken(problem);
            }
        }
    }
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
