//! Parameters drawn from a run's seed: every number and text a case advertises or says. Drawn
//! so that no constant a client might hard-code coincides (not the 30 s default heartbeat, not
//! 1 s, not the documented examples: Ada, Sarah, fr-FR, position 3, 180 s, 5 attempts,
//! 128 KiB), and where a timing obligation is judged twice per profile (draws `a` and `b`) the
//! two draws always differ. The same seed gives the same parameters, whatever cases run.
//!
//! Case files use them as `{name}`: a whole string `"{heartbeat_a}"` becomes the value (a
//! number stays a number), and `{name}` inside a longer string is interpolated.

use std::collections::BTreeMap;

use mock_server::config::Profile;
use mock_server::engine::ids::IdGen;
use serde_json::{Map, Value};

/// The drawn values, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    seed: u64,
    values: BTreeMap<&'static str, Value>,
    /// The documentation revision every case's mock serves (not drawn: chosen for the run).
    protocol: Profile,
    /// Every case's mock serves TLS with this (`run --tls`; not drawn: chosen for the run).
    tls: Option<crate::tls::RunTls>,
}

/// Draws from a seed (also the generated sessions' source of choices).
#[derive(Debug)]
pub struct Draw(IdGen);

impl Draw {
    pub fn from_seed(seed: u64) -> Self {
        Self(IdGen::from_seed(seed))
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n.max(1)
    }

    /// A number in `low..=high`.
    pub fn within(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    /// Two different items of `from`, in random order.
    fn two<T: Copy>(&mut self, from: &[T]) -> (T, T) {
        let first = self.below(from.len() as u64) as usize;
        let mut second = self.below(from.len() as u64 - 1) as usize;
        if second >= first {
            second += 1;
        }
        (from[first], from[second])
    }

    /// `count` distinct items of `from`.
    fn distinct<'a>(&mut self, from: &[&'a str], count: usize) -> Vec<&'a str> {
        let mut pool: Vec<&str> = from.to_vec();
        (0..count)
            .map(|_| pool.remove(self.below(pool.len() as u64) as usize))
            .collect()
    }
}

const AGENT_NAMES: &[&str] = &[
    "Juniper", "Odile", "Tomasz", "Wren", "Imani", "Kasimir", "Leocadia", "Bram", "Saoirse",
    "Yusuf", "Ottilie", "Nnamdi",
];
const LIVE_NAMES: &[&str] = &[
    "Mireille", "Anselm", "Priyanka", "Caspian", "Hedda", "Ezinne", "Florin", "Marisol", "Dagny",
    "Teodor",
];
/// Not fr-FR (the docs' example) and not en-US (a likely default).
const LANGUAGES: &[&str] = &[
    "de-DE", "es-MX", "ja-JP", "pt-BR", "it-IT", "nl-NL", "pl-PL", "sv-SE", "ko-KR", "tr-TR",
];
pub(crate) const THINGS: &[&str] = &[
    "parcel",
    "booking",
    "invoice",
    "table",
    "refund",
    "voucher",
    "ticket",
    "subscription",
    "delivery",
    "appointment",
    "warranty",
    "reservation",
];
pub(crate) const ASKS: &[&str] = &[
    "Where is my",
    "Can you move my",
    "Please check my",
    "I need help with my",
    "What happened to my",
    "Could you cancel my",
];
const QUEUES: &[&str] = &[
    "Billing Desk",
    "Returns Team",
    "Priority Care",
    "Night Shift",
    "Travel Support",
    "Loyalty Club",
];
const REASONS: &[&str] = &["COMPLEX_QUERY", "AGENT_DECISION", "POLICY"];
const OPENERS: &[&str] = &[
    "Happy to help",
    "Let me look",
    "Good question",
    "One moment",
    "Certainly",
    "Right away",
];

impl Params {
    /// The same draw, served under another documentation revision (spec §0).
    pub fn with_protocol(mut self, protocol: Profile) -> Self {
        self.protocol = protocol;
        self
    }

    pub fn protocol(&self) -> Profile {
        self.protocol
    }

    /// The same draw, every case's mock serving TLS with `tls`.
    pub fn with_tls(mut self, tls: crate::tls::RunTls) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn tls(&self) -> Option<&crate::tls::RunTls> {
        self.tls.as_ref()
    }

    /// The parameters of a run with `seed`. The parts draw in this order, so the same seed
    /// gives the same values.
    pub fn draw(seed: u64) -> Self {
        let mut d = Draw::from_seed(seed ^ 0x5EED_CA5E_D00D_F00D);
        let mut v = Values::new();
        let (agent, live) = draw_people(&mut d, &mut v);
        draw_conversation(&mut d, &mut v, agent, live);
        draw_choices(&mut d, &mut v);
        draw_timings(&mut d, &mut v);
        draw_limits(&mut d, &mut v);
        // Drawn last, so the draws above stay what they were for every seed.
        draw_late(&mut d, &mut v);
        let mut params = Self {
            seed,
            values: v,
            protocol: Profile::Current,
            tls: None,
        };
        params.add_oversized_texts();
        params
    }

    /// The texts made from the drawn limits (nothing drawn).
    fn add_oversized_texts(&mut self) {
        // Over the limit in UTF-8 bytes, under it in characters: a client that counts
        // characters (or measures only the text) would send it.
        let length = self.number("oversized_length") as usize;
        let oversized = "é".repeat(length.div_ceil(2));
        self.values
            .insert("oversized_text", Value::String(oversized));
        // Under the limit as text, over it as a frame (type, payload, metadata around it).
        let limit = self.number("max_message_size") as usize;
        let frame_oversized = "y".repeat(limit - 16);
        self.values
            .insert("frame_oversized_text", Value::String(frame_oversized));
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    fn number(&self, name: &str) -> u64 {
        self.get(name).and_then(Value::as_u64).unwrap_or_default()
    }

    /// Every parameter, for reports (long texts shortened).
    pub fn shown(&self) -> BTreeMap<String, Value> {
        self.values
            .iter()
            .map(|(k, v)| {
                let shown = match v {
                    Value::String(s) if s.len() > 80 => {
                        Value::String(format!("{}… ({} characters)", &s[..20], s.len()))
                    }
                    other => other.clone(),
                };
                ((*k).to_owned(), shown)
            })
            .collect()
    }

    /// `value` with every `{name}` replaced; an unknown name is an error naming it. Returns
    /// the names used as well.
    pub fn substitute(&self, value: &Value, used: &mut Vec<String>) -> Result<Value, String> {
        Ok(match value {
            Value::String(text) => self.substitute_text(text, used)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.substitute(item, used))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, item) in map {
                    out.insert(key.clone(), self.substitute(item, used)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    fn substitute_text(&self, text: &str, used: &mut Vec<String>) -> Result<Value, String> {
        let lookup = |name: &str, used: &mut Vec<String>| {
            let value = self
                .get(name)
                .ok_or_else(|| format!("unknown parameter `{{{name}}}`"))?;
            if !used.iter().any(|u| u == name) {
                used.push(name.to_owned());
            }
            Ok::<_, String>(value.clone())
        };
        // A whole-string placeholder keeps the value's type.
        if let Some(name) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}'))
            && is_name(name)
        {
            return lookup(name, used);
        }
        let mut out = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) if is_name(&after[..close]) => {
                    match lookup(&after[..close], used)? {
                        Value::String(s) => out.push_str(&s),
                        other => out.push_str(&other.to_string()),
                    }
                    rest = &after[close + 1..];
                }
                _ => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        Ok(Value::String(out))
    }
}

/// The drawn values, by name, while they are drawn.
type Values = BTreeMap<&'static str, Value>;

fn text(v: &mut Values, name: &'static str, value: String) {
    v.insert(name, Value::String(value));
}

fn number(v: &mut Values, name: &'static str, value: u64) {
    v.insert(name, Value::from(value));
}

/// The agent's and the live agent's names; returns both.
fn draw_people(d: &mut Draw, v: &mut Values) -> (&'static str, &'static str) {
    let names = d.distinct(AGENT_NAMES, 1);
    text(v, "agent_name", names[0].to_owned());
    text(
        v,
        "agent_avatar_url",
        format!("https://cdn.example.test/{}.png", names[0].to_lowercase()),
    );
    let live = d.pick(LIVE_NAMES);
    let live_id = format!("agent_{}", d.within(100, 999));
    text(v, "live_agent_id", live_id);
    text(v, "live_agent_name", live.to_owned());
    text(
        v,
        "live_agent_avatar_url",
        format!("https://cdn.example.test/live/{}.png", live.to_lowercase()),
    );
    (names[0], live)
}

/// What the user and the agents say: the greeting, suggestions, questions and answers.
fn draw_conversation(d: &mut Draw, v: &mut Values, agent: &str, live: &str) {
    let things = d.distinct(THINGS, 8);
    let order = d.within(1000, 9999);
    let opener = d.pick(OPENERS);
    text(
        v,
        "greeting",
        format!("{opener}! I'm {agent}. How can I help today?"),
    );
    text(v, "suggestion_1", format!("Track a {}", things[6]));
    text(v, "suggestion_2", format!("Change a {}", things[7]));
    for (i, name) in ["question_1", "question_2", "question_3", "question_4"]
        .into_iter()
        .enumerate()
    {
        let ask = d.pick(ASKS);
        text(
            v,
            name,
            format!("{ask} {} {}?", things[i], order + i as u64),
        );
    }
    for (i, name) in ["answer_1", "answer_2", "answer_3", "answer_4"]
        .into_iter()
        .enumerate()
    {
        let state = d.pick(&["on its way", "confirmed", "updated", "being checked"]);
        text(
            v,
            name,
            format!("Your {} {} is {state}.", things[i], order + i as u64),
        );
    }
    text(
        v,
        "live_answer",
        format!("{live} here: I have your {} {} open.", things[4], order + 4),
    );
    text(
        v,
        "stream_text",
        format!(
            "Streaming the details of {} {} piece by piece for you.",
            things[5],
            order + 5
        ),
    );
    text(
        v,
        "story",
        format!(
            "Once the socket dropped, the rest of the {} {} story came back with the replay.",
            things[2],
            order + 2
        ),
    );
}

/// Languages, queues, the client handoff's reason and an undocumented event type.
fn draw_choices(d: &mut Draw, v: &mut Values) {
    let (language_1, language_2) = d.two(LANGUAGES);
    text(v, "language_1", language_1.to_owned());
    text(v, "language_2", language_2.to_owned());
    text(v, "queue_name", d.pick(QUEUES).to_owned());
    text(v, "client_handoff_reason", d.pick(REASONS).to_owned());
    text(v, "client_handoff_queue", d.pick(QUEUES).to_owned());
    text(
        v,
        "unknown_event_type",
        format!("EVENT_TYPE_FUTURE_{}", d.within(10, 99)),
    );
}

/// The queue, streaming, typing and heartbeat timings.
fn draw_timings(d: &mut Draw, v: &mut Values) {
    // Queue: not the docs' position 3 / 180 s.
    let position = [2, 4, 5, 6, 7, 8, 9][d.below(7) as usize];
    number(v, "queue_position", position);
    number(v, "queue_wait_seconds", 60 * d.within(2, 14) + 15);
    number(v, "queue_interval_ms", d.within(300, 450));
    // Streaming: chunk counts and timings.
    number(v, "stream_pieces", d.within(3, 8));
    number(v, "chunk_interval_ms", d.within(5, 40));
    let story_pieces = d.within(4, 8);
    number(v, "story_pieces", story_pieces);
    number(v, "story_drop_after", d.within(1, story_pieces - 2));
    number(v, "story_chunk_interval_ms", d.within(60, 120));
    // Typing indicators: a pause before thinking (a client that shows "typing" whenever a
    // message is unanswered shows it here), then the thinking itself.
    number(v, "pre_think_ms", d.within(400, 650));
    number(v, "think_ms", d.within(700, 1000));
    number(v, "live_typing_ms", d.within(600, 850));
    // Two heartbeat intervals (s), never 1 and never 30, far enough apart that no cadence
    // is within HB-2's tolerance of both: 2 s or 3 s, and 7 s or 6 s.
    let (heartbeat_a, other) = d.two(&[2u64, 3]);
    let heartbeat_b = other + 4;
    number(v, "heartbeat_a", heartbeat_a);
    number(v, "heartbeat_b", heartbeat_b);
    // Long enough for HB-1/HB-2 to tell a missing or wrong cadence: 2.5 intervals and a
    // second (their threshold), plus half a second of margin.
    number(v, "heartbeat_a_window_ms", heartbeat_a * 2_500 + 1_500);
    number(v, "heartbeat_b_window_ms", heartbeat_b * 2_500 + 1_500);
}

/// Reconnect attempts, history hold-backs, Retry-After and the frame limit.
fn draw_limits(d: &mut Draw, v: &mut Values) {
    // Two reconnect-attempt limits, never the documented 5: 1 or 2, and 4, so that one case
    // shows three growth steps of the backoff (1 s, 2 s, 4 s, 8 s).
    let (attempts_a, _) = d.two(&[1u64, 2]);
    let attempts_b = 4;
    number(v, "max_attempts_a", attempts_a);
    number(v, "max_attempts_b", attempts_b);
    // How long to wait for the client to give up: the backoff 1 s, 2 s, 4 s … plus margin.
    number(v, "give_up_a_ms", give_up_within(attempts_a));
    number(v, "give_up_b_ms", give_up_within(attempts_b));
    // History hold-backs: one short, one long, never a round 300 ms; further apart than
    // WS-2's tolerance for a join after the history, so no fixed join timer fits both.
    number(v, "hold_back_a", d.within(330, 640));
    number(v, "hold_back_b", d.within(2_300, 3_000));
    // Retry-After seconds of the two 429s: 1 and 5, or 2 and 4 (never the SDKs' default 5
    // for both), apart by more than AUTH-5's tolerance.
    let (retry, _) = d.two(&[2u64, 3]);
    let (retry_a, retry_b) = if retry == 2 { (1, 5) } else { (2, 4) };
    number(v, "retry_after_a", retry_a);
    number(v, "retry_after_b", retry_b);
    // A frame limit well under 128 KiB, and a message over it but under 128 KiB.
    let limit = 1024 * d.within(24, 96);
    number(v, "max_message_size", limit);
    number(v, "oversized_length", limit + d.within(2_000, 8_000));
}

/// Texts added after the rest: drawn last, so earlier draws are unchanged for every seed.
fn draw_late(d: &mut Draw, v: &mut Values) {
    let late = d.pick(THINGS);
    text(
        v,
        "after_end_text",
        format!("Hello? Is anyone still there about my {late}?"),
    );
    let (gap, thing) = (d.within(2, 9), d.pick(THINGS));
    let bye = d.pick(&[
        "Take care",
        "Have a good day",
        "Glad I could help",
        "All sorted",
    ]);
    text(
        v,
        "answer_5",
        format!("While you were away: your {thing} moves by {gap} days."),
    );
    let (extra_1, extra_2) = (d.pick(THINGS), d.pick(THINGS));
    text(v, "suggestion_3", format!("Ask about a {extra_1}"));
    text(v, "suggestion_4", format!("Cancel the {extra_2}"));
    text(
        v,
        "live_bye",
        format!("{bye}! Your {thing} is noted. Closing the chat now."),
    );
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A reference client gives up right after its last failed attempt: drop + 1 s + 2 s + … ;
/// this leaves 2.5 s of margin.
fn give_up_within(attempts: u64) -> u64 {
    (0..attempts).map(|i| 1_000u64 << i).sum::<u64>() + 2_500
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_parameters_and_draws_differ() {
        assert_eq!(Params::draw(7), Params::draw(7));
        assert_ne!(Params::draw(7), Params::draw(8));
        for seed in 0..200 {
            let p = Params::draw(seed);
            assert_ne!(p.number("heartbeat_a"), p.number("heartbeat_b"));
            assert_ne!(p.number("max_attempts_a"), p.number("max_attempts_b"));
            assert_ne!(p.number("retry_after_a"), p.number("retry_after_b"));
            assert_ne!(p.get("language_1"), p.get("language_2"));
            assert!(![1, 30].contains(&p.number("heartbeat_a")));
            assert_ne!(p.number("max_attempts_a"), 5);
            assert_ne!(p.number("queue_position"), 3);
            assert_ne!(p.number("queue_wait_seconds"), 180);
            assert!(p.number("oversized_length") > p.number("max_message_size"));
            assert!(p.number("oversized_length") + 200 < 131_072);
            let limit = p.number("max_message_size") as usize;
            let text = |name: &str| p.get(name).and_then(Value::as_str).expect(name).to_owned();
            let multibyte = text("oversized_text");
            assert!(multibyte.len() > limit && multibyte.chars().count() < limit);
            let frame = serde_json::json!({"type": "EVENT_TYPE_USER_MESSAGE", "payload": {"text": text("frame_oversized_text")}});
            assert!(text("frame_oversized_text").len() < limit && frame.to_string().len() > limit);
            assert!(p.number("story_drop_after") < p.number("story_pieces") - 1);
            let texts: Vec<&Value> = ["question_1", "question_2", "question_3", "question_4"]
                .iter()
                .filter_map(|n| p.get(n))
                .collect();
            for (i, t) in texts.iter().enumerate() {
                assert!(!texts[..i].contains(t), "seed {seed}: repeated {t}");
            }
        }
    }

    #[test]
    fn placeholders_keep_types_interpolate_and_unknown_names_are_errors() {
        let p = Params::draw(1);
        let mut used = Vec::new();
        let value = serde_json::json!({
            "n": "{heartbeat_a}",
            "s": "Hi {agent_name}, {heartbeat_a} s",
            "literal": "{not a name} {}",
        });
        let out = p.substitute(&value, &mut used).expect("known names");
        assert!(out["n"].is_u64());
        assert_eq!(
            out["s"],
            format!(
                "Hi {}, {} s",
                p.get("agent_name")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                p.number("heartbeat_a")
            )
        );
        assert_eq!(out["literal"], "{not a name} {}");
        assert_eq!(used, ["heartbeat_a", "agent_name"]);
        let error = p
            .substitute(&serde_json::json!("{nope}"), &mut used)
            .expect_err("unknown");
        assert!(error.contains("`{nope}`"), "{error}");
    }
}
