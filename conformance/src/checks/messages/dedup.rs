//! MSG-2: a message that arrived more than once is never shown twice.

use std::collections::{HashMap, HashSet};

use crate::cases::shorten;
use crate::checks::{Evidence, MESSAGE_TYPES, Outcome, event_id, event_type};
use crate::contract::Author;

/// MSG-2: events that arrived more than once; no sampled view ever shows a message twice.
pub fn shown_once(e: &Evidence) -> Outcome {
    let deliveries = e.deliveries();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for d in &deliveries {
        if MESSAGE_TYPES.contains(&event_type(&d.event))
            && let Some(id) = event_id(&d.event)
        {
            *counts.entry(id).or_default() += 1;
        }
    }
    let repeated = counts.values().filter(|n| **n > 1).count();
    if repeated == 0 {
        return Outcome::NotObservable("no message event arrived twice".into());
    }
    if e.samples.is_empty() {
        return Outcome::NotObservable("the driver gave no view".into());
    }
    for sample in &e.samples {
        let Some(messages) = sample.view.messages() else {
            return Outcome::NotObservable("the view has no `messages`".into());
        };
        let mut ids = HashSet::new();
        for m in messages {
            if let Some(id) = &m.message_id
                && !ids.insert(id)
            {
                return Outcome::Broken(format!(
                    "the view at {} ms shows `{}` twice",
                    sample.replied_ms,
                    shorten(&m.text)
                ));
            }
        }
    }
    // Messages the view shows without an id: by author and text, in every sample (a duplicate
    // that a later replay happens to reconcile was still shown twice), against how many times
    // the server said it.
    let mut said: HashMap<(Author, &str), usize> = HashMap::new();
    let server = e.server_messages();
    for m in &server {
        *said.entry((m.from, m.text.as_str())).or_default() += 1;
    }
    for sample in &e.samples {
        let Some(messages) = sample.view.messages() else {
            continue;
        };
        for m in messages.iter().filter(|m| m.message_id.is_none()) {
            let shown_n = messages
                .iter()
                .filter(|x| x.from == m.from && x.text == m.text)
                .count();
            let allowed = said
                .get(&(m.from, m.text.as_str()))
                .copied()
                .unwrap_or(0)
                .max(1);
            if shown_n > allowed {
                return Outcome::Broken(format!(
                    "the view at {} ms shows `{}` {shown_n} times; it was said {allowed} time(s)",
                    sample.replied_ms,
                    shorten(&m.text)
                ));
            }
        }
    }
    Outcome::Kept(format!(
        "{repeated} message event(s) arrived more than once; {} views, none showing a message twice",
        e.samples.len()
    ))
}
