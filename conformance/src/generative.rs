//! Generated sessions: what the agent says and does, what the user does, and the faults in
//! between, drawn from a seed across the coverage matrix, so a client meets paths no case
//! author wrote. A session is a list of beats (a user turn and what the server does around
//! it); it becomes an ordinary case file (checked on load like the catalogue's), is judged by
//! the same checks, and the conversation the client must end up showing is derived from the
//! beats, never taken from a client. A failing session shrinks to the fewest beats that still
//! break the same obligation ([`shrink`]); the report gives the seed and the beats kept.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::cases::{Case, CaseError};
use crate::obligations::ObligationId;
use crate::params::{ASKS, Draw, THINGS};

/// One turn of a generated session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beat {
    /// A question and its answer.
    Reply,
    /// A pause, then the agent thinks for a while before answering (the typing indicator).
    Think { pause_ms: u64, think_ms: u64 },
    /// A streamed answer in `pieces` chunks, the first two perhaps swapped on the way or sent
    /// (and sequenced) in the wrong order, extras on the first chunk and on an empty final one.
    Stream {
        pieces: u64,
        swapped: bool,
        second_first: bool,
    },
    /// The answer arrives twice.
    Duplicate,
    /// Two answers arrive in swapped order.
    Swap,
    /// The answer comes with `sequence: null`.
    NullSequence,
    /// The answer, then the whole history again in a live batch.
    HistoryAgain,
    /// The answer, then an older event again (`back` from the newest).
    ResendPrevious { back: u64 },
    /// An event of an undocumented type, then the answer.
    UnknownLive,
    /// The answer with undocumented fields.
    UnknownFields,
    /// An agent error instead of an answer.
    AgentError { kind: &'static str },
    /// Two language changes (perhaps swapped), then the answer.
    Languages { swapped: bool },
    /// An answer with two suggestions; the user taps one, which gets its own answer.
    Suggestions { tap: usize },
    /// The user types (started, stopped) before asking.
    UserTyping,
    /// Nothing happens for a while (heartbeats keep the connection alive).
    Quiet,
    /// The user tries a text over the advertised frame limit.
    Oversized,
    /// The question is lost on the way: no echo; the client must resend it.
    LostOnce,
    /// The answer, then the server closes the sockets (`None`: a drop); with `only_in_replay`
    /// a second answer while they are down; `replay` arms a fault of the next replay.
    Close {
        code: Option<u16>,
        only_in_replay: bool,
        replay: Option<&'static str>,
    },
    /// A streamed answer that the sockets drop in the middle of.
    MidStreamDrop { pieces: u64, drop_after: u64 },
    /// The question's echo only in the history, then a drop, and two answers while the
    /// sockets are down: the replay carries all three.
    EchoOnlyInReplay,
    /// The answer, a drop, and during it an undocumented event and a second answer: only the
    /// replay carries them, side by side.
    UnknownInReplay,
    /// The answer, then a drop and `refusals` refused handshakes before one succeeds.
    RefusedReconnects { refusals: u32 },
    /// The app restarts.
    Restart,
    /// A server-managed handoff to a live agent, then `turns` turns with the live agent.
    Handoff { queue: u32, turns: u32 },
    /// A client-managed handoff.
    ClientHandoff,
    /// A handoff that fails at once (`timeout`: accepted, queued, then timed out).
    HandoffFails { timeout: bool },
    /// Endings: the user leaves.
    UserEnds,
    /// The agent ends the conversation (during a drop: only the replay tells the client).
    NaturalEnd { during_drop: bool },
    /// The sockets drop into refusals for good: the client must give up.
    GiveUp,
    /// The token stops working and the sockets drop: a new token and session.
    TokenExpired,
    /// The server forgets the session: a new session.
    SessionExpired,
    /// The question is lost on every try: at most three resends, then failed (about 40 s).
    LostForever,
}

impl Beat {
    /// Whether later beats cannot follow (the conversation is over or has no agent).
    fn ends(&self) -> bool {
        matches!(
            self,
            Self::UserEnds
                | Self::NaturalEnd { .. }
                | Self::GiveUp
                | Self::TokenExpired
                | Self::SessionExpired
                | Self::LostForever
        )
    }

    /// A short name for reports.
    pub fn label(&self) -> String {
        format!("{self:?}")
    }
}

/// The session's settings, drawn with its beats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub streaming: bool,
    pub heartbeat_seconds: u64,
    pub max_attempts: u64,
    pub hold_back_ms: u64,
    /// A 429 on the access-token call with this `Retry-After`, and 500s on the sessions call.
    pub rest_failures: Option<(u64, u32)>,
    pub max_message_size: u64,
}

/// A generated session: its seed, settings and beats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub seed: u64,
    pub settings: Settings,
    pub beats: Vec<Beat>,
}

const ERRORS: &[&str] = &["high_load", "trouble_responding", "streaming_error"];
const ERROR_TEXTS: &[(&str, &str)] = &[
    (
        "high_load",
        "Our system is experiencing high load. Please try again in a moment.",
    ),
    (
        "trouble_responding",
        "Sorry, I'm having trouble responding right now. Please try again.",
    ),
    (
        "streaming_error",
        "Sorry, I encountered an error. Please try again.",
    ),
    (
        "handoff_could_not_connect",
        "Sorry, we could not connect you to an agent. Please try again.",
    ),
];
const REPLAY_FAULTS: &[&str] = &[
    "split_next_replay",
    "reverse_next_replay",
    "alternate_shape_next_replay",
    "drop_next_replay_after",
];

/// The beats that can come anywhere before a handoff or an ending, in the order sessions of
/// one run rotate through them (so a handful of sessions meets every kind).
fn middle_beat(kind: usize, d: &mut Draw, streaming: bool) -> Beat {
    match kind % MIDDLE_KINDS {
        0 => Beat::Quiet,
        1 => Beat::Think {
            pause_ms: d.within(300, 600),
            think_ms: d.within(600, 1_000),
        },
        2 if streaming => Beat::Stream {
            pieces: d.within(2, 6),
            swapped: d.one_in(2),
            second_first: d.one_in(2),
        },
        3 => Beat::Duplicate,
        4 => Beat::Swap,
        5 => Beat::NullSequence,
        6 => Beat::HistoryAgain,
        7 => Beat::ResendPrevious {
            back: d.within(1, 3),
        },
        8 => Beat::UnknownLive,
        9 => Beat::UnknownFields,
        10 => Beat::AgentError {
            kind: ERRORS[d.below(2) as usize],
        },
        11 => Beat::Languages {
            swapped: d.one_in(2),
        },
        12 => Beat::Suggestions {
            tap: d.below(2) as usize,
        },
        13 => Beat::UserTyping,
        14 => Beat::Oversized,
        15 => Beat::LostOnce,
        16 => Beat::Close {
            code: [None, Some(1001), Some(1011), Some(4002)][d.below(4) as usize],
            only_in_replay: d.one_in(2),
            replay: (!d.one_in(3)).then(|| REPLAY_FAULTS[d.below(4) as usize]),
        },
        17 if streaming => {
            let pieces = d.within(4, 7);
            Beat::MidStreamDrop {
                pieces,
                drop_after: d.within(1, pieces - 2),
            }
        }
        18 => Beat::EchoOnlyInReplay,
        19 => Beat::UnknownInReplay,
        20 => Beat::RefusedReconnects {
            refusals: d.within(1, 2) as u32,
        },
        _ => Beat::Reply,
    }
}

/// How many kinds of middle beat there are.
const MIDDLE_KINDS: usize = 22;

impl Session {
    /// The `index`-th session of a run with `run_seed`: its seed carries the index in its low
    /// byte, so consecutive sessions start from different beats, and the seed alone
    /// reproduces the session.
    pub fn generate(run_seed: u64, index: u64) -> Self {
        let mixed = run_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 24;
        Self::from_seed((mixed << 8) | (index & 0xFF))
    }

    /// The session of `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let rotation = seed & 0xFF;
        let mut d = Draw::from_seed(seed ^ 0x6E4E_5A71_7E5E_5510);
        let streaming = d.one_in(2);
        let mut beats = Vec::new();
        let start = (rotation as usize * 5) % MIDDLE_KINDS;
        let count = d.within(4, 6) as usize;
        for k in 0..count {
            beats.push(middle_beat(start + k, &mut d, streaming));
        }
        beats.push(middle_beat(
            d.below(MIDDLE_KINDS as u64) as usize,
            &mut d,
            streaming,
        ));
        // Heartbeats are judged on connections that stay up a few intervals.
        if !beats.contains(&Beat::Quiet) && d.one_in(2) {
            beats.insert(d.below(beats.len() as u64) as usize, Beat::Quiet);
        }
        if d.one_in(3) {
            beats.push(Beat::Restart);
        }
        let phase = match d.below(6) {
            0 => Some(Beat::Handoff {
                queue: d.within(1, 3) as u32,
                turns: d.within(1, 2) as u32,
            }),
            1 => Some(Beat::ClientHandoff),
            2 => Some(Beat::HandoffFails {
                timeout: d.one_in(2),
            }),
            _ => None,
        };
        let ending = match (rotation + d.below(2)) % 7 {
            0 => Beat::UserEnds,
            1 => Beat::NaturalEnd { during_drop: false },
            2 => Beat::NaturalEnd { during_drop: true },
            3 => Beat::GiveUp,
            4 => Beat::TokenExpired,
            5 => Beat::SessionExpired,
            _ => Beat::LostForever,
        };
        // Without an agent only the user can end it.
        let ending = match (&phase, &ending) {
            (Some(Beat::ClientHandoff | Beat::HandoffFails { .. }), _) => Beat::UserEnds,
            (Some(Beat::Handoff { .. }), Beat::NaturalEnd { .. } | Beat::UserEnds) => ending,
            (Some(Beat::Handoff { .. }), _) => Beat::NaturalEnd { during_drop: false },
            _ => ending,
        };
        beats.extend(phase);
        beats.push(ending);
        let settings = Settings {
            streaming,
            heartbeat_seconds: d.within(2, 6),
            max_attempts: d.within(3, 4),
            hold_back_ms: if d.one_in(2) { 0 } else { d.within(300, 2_500) },
            rest_failures: d.one_in(3).then(|| (d.within(1, 4), d.within(0, 2) as u32)),
            max_message_size: 1024 * d.within(24, 96),
        };
        Self {
            seed,
            settings,
            beats,
        }
    }

    /// The same session with only the beats at `keep` (indices into [`Session::beats`]).
    pub fn only(&self, keep: &[usize]) -> Self {
        Self {
            beats: self
                .beats
                .iter()
                .enumerate()
                .filter(|(i, _)| keep.contains(i))
                .map(|(_, b)| b.clone())
                .collect(),
            ..self.clone()
        }
    }

    /// The case id: the seed, and the beats kept when not all are (`generated-<seed>` or
    /// `generated-<seed>-beats-0.2.5`).
    pub fn id(&self) -> String {
        let all = Self::from_seed(self.seed);
        if all.beats == self.beats {
            return format!("generated-{}", self.seed);
        }
        let mut kept = Vec::new();
        let mut from = 0;
        for beat in &self.beats {
            if let Some(at) = all.beats[from..].iter().position(|b| b == beat) {
                kept.push((from + at).to_string());
                from += at + 1;
            }
        }
        format!("generated-{}-beats-{}", self.seed, kept.join("."))
    }

    /// The session a case id names (`generated-<seed>[-beats-…]`).
    pub fn from_id(id: &str) -> Option<Self> {
        let rest = id.strip_prefix("generated-")?;
        let (seed, beats) = match rest.split_once("-beats-") {
            Some((seed, beats)) => (seed, Some(beats)),
            None => (rest, None),
        };
        let session = Self::from_seed(seed.parse().ok()?);
        match beats {
            None => Some(session),
            Some(list) => {
                let keep: Vec<usize> = list
                    .split('.')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .ok()?;
                Some(session.only(&keep))
            }
        }
    }

    /// The session as a case, through the same loading and checks as a case file.
    pub fn case(&self) -> Result<Case, CaseError> {
        let file = Builder::new(self).file();
        let id = self.id();
        Case::parse(
            &format!("generated/{id}.json"),
            &serde_json::to_string(&file).unwrap_or_default(),
        )
    }

    /// The beats, one line each, for reports.
    pub fn describe(&self) -> String {
        let s = &self.settings;
        let beats: Vec<String> = self.beats.iter().map(Beat::label).collect();
        format!(
            "generated session {} (streaming {}, heartbeat {} s, {} reconnect attempts, history held {} ms{}): {}",
            self.seed,
            s.streaming,
            s.heartbeat_seconds,
            s.max_attempts,
            s.hold_back_ms,
            s.rest_failures
                .map(|(retry, fails)| format!(
                    ", a 429 (Retry-After {retry} s) then {fails} 500(s) before the session"
                ))
                .unwrap_or_default(),
            beats.join("; ")
        )
    }
}

/// Turns beats into a case file: rules, user steps, the expected conversation, the checks.
struct Builder<'s> {
    session: &'s Session,
    texts: u64,
    d: Draw,
    rules: Vec<Value>,
    /// Steps of the join rule (the greeting); faults a beat arms for the next user message go
    /// onto the previous rule.
    join: Vec<Value>,
    steps: Vec<Value>,
    conversation: Vec<Value>,
    checks: BTreeSet<ObligationId>,
    live_agent: bool,
}

fn send(text: &str) -> Value {
    json!({ "send": text })
}

fn expect(shows: Value, serves: ObligationId, within_ms: u64) -> Value {
    let mut value = shows;
    value["serves"] = json!(serves.as_str());
    value["within_ms"] = json!(within_ms);
    json!({ "expect": value })
}

fn shows_message(from: &str, text: &str) -> Value {
    json!({ "message": { "from": from, "text": text } })
}

fn said(from: &str, text: &str) -> Value {
    json!({ "from": from, "text": text })
}

fn error_text(kind: &str) -> &'static str {
    ERROR_TEXTS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("", |(_, text)| text)
}

impl<'s> Builder<'s> {
    fn new(session: &'s Session) -> Self {
        Self {
            session,
            texts: 0,
            d: Draw::from_seed(session.seed ^ 0x7E47_5EED),
            rules: Vec::new(),
            join: vec![json!("join"), json!({ "think_ms": 5 })],
            steps: Vec::new(),
            conversation: Vec::new(),
            checks: BTreeSet::new(),
            live_agent: false,
        }
    }

    /// A fresh question (unique in the session).
    fn question(&mut self) -> String {
        self.texts += 1;
        let ask = self.d.pick(ASKS);
        let thing = self.d.pick(THINGS);
        format!("{ask} {thing} {}?", 100 + self.texts)
    }

    /// A fresh answer.
    fn answer(&mut self) -> String {
        self.texts += 1;
        let thing = self.d.pick(THINGS);
        let state = self
            .d
            .pick(&["on its way", "confirmed", "updated", "being checked"]);
        format!("Your {thing} {} is {state}.", 100 + self.texts)
    }

    /// Faults for the next user message go at the end of the rule that fired last.
    fn arm(&mut self, fault: Value) {
        let step = json!({ "fault": fault });
        match self.rules.last_mut() {
            Some(rule) => {
                if let Some(steps) = rule["steps"].as_array_mut() {
                    steps.push(step);
                }
            }
            None => self.join.push(step),
        }
    }

    fn rule(&mut self, question: &str, steps: Vec<Value>) {
        let mut when = json!({ "message": { "equals": question } });
        if self.live_agent {
            when["message"]["to"] = json!("live_agent");
        }
        self.rules.push(json!({ "when": when, "steps": steps }));
    }

    fn check(&mut self, ids: &[ObligationId]) {
        self.checks.extend(ids.iter().copied());
    }

    /// A turn: the user asks, the rule plays `steps`, the user waits for `shown` (serving
    /// `serves`); the conversation gains the question and `said`.
    fn turn(
        &mut self,
        steps: Vec<Value>,
        said_after: Vec<Value>,
        wait: Vec<Value>,
        checks: &[ObligationId],
    ) -> String {
        let question = self.question();
        self.rule(&question, steps);
        self.steps.push(send(&question));
        self.steps.extend(wait);
        self.conversation.push(said("user", &question));
        self.conversation.extend(said_after);
        self.check(checks);
        question
    }

    /// How long to wait for what comes after a reconnect: the backoff, a replay dropped once,
    /// and the history held back each time.
    fn reconnect_wait(&self) -> u64 {
        10_000 + 3 * self.session.settings.hold_back_ms
    }

    fn reconnect_checks(&mut self) {
        use ObligationId::*;
        self.check(&[Rc1, Rc2, Rc3, Ws4, Msg5]);
    }

    fn beat(&mut self, beat: &Beat) {
        use ObligationId::*;
        // Faults for this beat's question go on the rule that fired before it.
        match beat {
            Beat::LostOnce => self.arm(json!("drop_next_echo")),
            Beat::LostForever => self.arm(json!({ "drop_echoes": 20 })),
            Beat::EchoOnlyInReplay => self.arm(json!("omit_next_echo")),
            _ => {}
        }
        let quick = 10_000;
        match beat {
            Beat::Reply | Beat::LostOnce => {
                let a = self.answer();
                if *beat == Beat::LostOnce {
                    self.check(&[Msg5]);
                }
                // A lost question is answered once the client resends it, about 5 s later.
                let wait = vec![expect(shows_message("agent", &a), Msg3, 16_000)];
                self.turn(
                    vec![json!({ "think_ms": 5 }), json!({ "reply": { "text": a } })],
                    vec![said("agent", &a)],
                    wait,
                    &[Msg3],
                );
            }
            Beat::Think { pause_ms, think_ms } => {
                let a = self.answer();
                self.turn(
                    vec![
                        json!({ "pause_ms": pause_ms }),
                        json!({ "think_ms": think_ms }),
                        json!({ "reply": { "text": a } }),
                    ],
                    vec![said("agent", &a)],
                    vec![expect(shows_message("agent", &a), Ux1, quick)],
                    &[Ux1, Msg3],
                );
            }
            Beat::Stream {
                pieces,
                swapped,
                second_first,
            } => {
                let words: Vec<String> = (0..*pieces).map(|_| self.answer()).collect();
                let mut chunks: Vec<Value> = words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let text = if i == 0 { w.clone() } else { format!(" {w}") };
                        if i == 0 {
                            json!({ "text": text, "suggestions": [format!("More about {}", 100 + self.texts)] })
                        } else {
                            json!({ "text": text })
                        }
                    })
                    .collect();
                chunks.push(json!({ "text": "", "attachments": [{ "title": "Details", "preview_image_url": "https://cdn.example.test/p.png", "content_url": "https://cdn.example.test/d", "content_type": "ATTACHMENT_CONTENT_TYPE_URL", "call_to_action_text": "Open" }] }));
                let whole: String = words.join(" ");
                let mut steps = vec![json!({ "think_ms": 5 })];
                if *swapped {
                    steps.push(json!({ "fault": "swap_next" }));
                }
                steps.push(json!({ "stream": { "chunks": chunks, "chunk_interval_ms": 20, "second_chunk_first": second_first } }));
                self.turn(
                    steps,
                    vec![said("agent", &whole)],
                    vec![expect(shows_message("agent", &whole), Msg4, quick)],
                    &[Msg4, Msg3],
                );
            }
            Beat::Duplicate | Beat::NullSequence | Beat::UnknownFields => {
                let a = self.answer();
                let (fault, check) = match beat {
                    Beat::Duplicate => ("duplicate_next", Msg2),
                    Beat::NullSequence => ("null_sequence_next", Msg3),
                    _ => ("unknown_fields_next", Err2),
                };
                self.turn(
                    vec![
                        json!({ "think_ms": 5 }),
                        json!({ "fault": fault }),
                        json!({ "reply": { "text": a } }),
                    ],
                    vec![said("agent", &a)],
                    vec![expect(shows_message("agent", &a), check, quick)],
                    &[check, Msg3],
                );
            }
            Beat::Swap => {
                let (a1, a2) = (self.answer(), self.answer());
                self.turn(
                    vec![
                        json!({ "think_ms": 5 }),
                        json!({ "fault": "swap_next" }),
                        json!({ "reply": { "text": a1 } }),
                        json!({ "reply": { "text": a2 } }),
                    ],
                    vec![said("agent", &a1), said("agent", &a2)],
                    vec![expect(shows_message("agent", &a1), Msg3, quick)],
                    &[Msg3],
                );
            }
            Beat::HistoryAgain | Beat::ResendPrevious { .. } => {
                let a = self.answer();
                let fault = match beat {
                    Beat::ResendPrevious { back } => json!({ "resend_previous": back }),
                    _ => json!("resend_history"),
                };
                self.turn(
                    vec![
                        json!({ "think_ms": 5 }),
                        json!({ "reply": { "text": a } }),
                        json!({ "pause_ms": 30 }),
                        json!({ "fault": fault }),
                    ],
                    vec![said("agent", &a)],
                    vec![
                        expect(shows_message("agent", &a), Msg3, quick),
                        json!({ "hold_ms": 150 }),
                    ],
                    &[Msg2, Msg3],
                );
            }
            Beat::UnknownLive => {
                let a = self.answer();
                let kind = format!("EVENT_TYPE_FUTURE_{}", 10 + self.d.below(80));
                self.turn(
                    vec![
                        json!({ "think_ms": 5 }),
                        json!({ "fault": "null_sequence_next" }),
                        json!({ "fault": { "unknown_event_type": kind } }),
                        json!({ "reply": { "text": a } }),
                    ],
                    vec![said("agent", &a)],
                    vec![expect(shows_message("agent", &a), Err2, quick)],
                    &[Err2, Msg3],
                );
            }
            Beat::AgentError { kind } => {
                self.turn(
                    vec![json!({ "think_ms": 5 }), json!({ "error": kind })],
                    vec![said("system", error_text(kind))],
                    vec![json!({ "hold_ms": 300 })],
                    &[Err1, Msg3],
                );
            }
            Beat::Languages { swapped } => {
                let a = self.answer();
                let languages = ["de-DE", "es-MX", "ja-JP", "pt-BR", "it-IT", "nl-NL"];
                let first = self.d.below(6) as usize;
                let second = (first + 1 + self.d.below(5) as usize) % 6;
                let mut steps = vec![json!({ "think_ms": 5 })];
                if *swapped {
                    steps.push(json!({ "fault": "swap_next" }));
                }
                steps.push(json!({ "language": languages[first] }));
                steps.push(json!({ "language": languages[second] }));
                steps.push(json!({ "reply": { "text": a } }));
                self.turn(
                    steps,
                    vec![said("agent", &a)],
                    vec![
                        expect(json!({ "language": languages[second] }), Ux6, quick),
                        expect(shows_message("agent", &a), Msg3, quick),
                    ],
                    &[Ux6, Msg3],
                );
            }
            Beat::Suggestions { tap } => {
                let a = self.answer();
                let options = [
                    format!("Track item {}", 100 + self.texts),
                    format!("Change item {}", 100 + self.texts),
                ];
                let chosen = options[*tap].clone();
                self.turn(
                    vec![
                        json!({ "think_ms": 5 }),
                        json!({ "reply": { "text": a, "suggestions": options } }),
                    ],
                    vec![said("agent", &a)],
                    vec![expect(shows_message("agent", &a), Msg3, quick)],
                    &[Ux2, Msg3],
                );
                let followed = self.answer();
                self.rule(
                    &chosen,
                    vec![
                        json!({ "think_ms": 5 }),
                        json!({ "reply": { "text": followed } }),
                    ],
                );
                self.steps.push(json!({ "tap_suggestion": chosen }));
                self.steps
                    .push(expect(shows_message("agent", &followed), Ux2, quick));
                self.conversation.push(said("user", &chosen));
                self.conversation.push(said("agent", &followed));
            }
            Beat::Quiet => {
                let window = self.session.settings.heartbeat_seconds * 2_500 + 1_500;
                self.steps.push(json!({ "hold_ms": window }));
                self.check(&[Hb1, Hb2]);
            }
            Beat::UserTyping => {
                let a = self.answer();
                self.steps.push(json!({ "typing": "started" }));
                self.steps.push(json!({ "hold_ms": 600 }));
                self.steps.push(json!({ "typing": "stopped" }));
                self.turn(
                    vec![json!({ "think_ms": 5 }), json!({ "reply": { "text": a } })],
                    vec![said("agent", &a)],
                    vec![expect(shows_message("agent", &a), Msg3, quick)],
                    &[Ws6, Msg3],
                );
            }
            Beat::Oversized => {
                let limit = self.session.settings.max_message_size as usize;
                let text = "é".repeat((limit + 3_000).div_ceil(2));
                self.steps.push(send(&text));
                self.steps.push(json!({ "hold_ms": 200 }));
                self.check(&[Ws7]);
            }
            Beat::Close {
                code,
                only_in_replay,
                replay,
            } => {
                let a = self.answer();
                let mut steps = vec![json!({ "think_ms": 5 }), json!({ "reply": { "text": a } })];
                let mut after = vec![said("agent", &a)];
                let mut wait = vec![expect(shows_message("agent", &a), Msg3, quick)];
                steps.push(json!({ "pause_ms": 100 }));
                match replay {
                    Some("split_next_replay") => {
                        steps.push(json!({ "fault": { "split_next_replay": 1 } }));
                    }
                    Some("drop_next_replay_after") => {
                        steps.push(json!({ "fault": { "drop_next_replay_after": 1 } }));
                    }
                    Some(other) => steps.push(json!({ "fault": other })),
                    None => {}
                }
                steps.push(match code {
                    Some(code) => json!({ "fault": { "close": code } }),
                    None => json!({ "fault": "drop" }),
                });
                // Said while the sockets are down (the history is all a replay can carry:
                // a later sequence delivered live would put it behind the cursor).
                if *only_in_replay {
                    let hidden = self.answer();
                    steps.push(json!({ "pause_ms": 100 }));
                    steps.push(json!({ "reply": { "text": hidden } }));
                    after.push(said("agent", &hidden));
                    wait.push(expect(
                        shows_message("agent", &hidden),
                        Msg1,
                        self.reconnect_wait(),
                    ));
                    self.check(&[Msg1]);
                }
                wait.push(json!({ "hold_ms": 200 }));
                wait.push(expect(
                    json!({ "connection": "open" }),
                    Rc1,
                    self.reconnect_wait(),
                ));
                self.turn(steps, after, wait, &[Msg3]);
                self.reconnect_checks();
            }
            Beat::MidStreamDrop { pieces, drop_after } => {
                let text: String = (0..*pieces)
                    .map(|_| self.answer())
                    .collect::<Vec<_>>()
                    .join(" ");
                self.turn(
                    vec![
                        json!({ "think_ms": 5 }),
                        json!({ "stream": { "text": text, "pieces": pieces, "chunk_interval_ms": 80, "drop_after": drop_after } }),
                    ],
                    vec![said("agent", &text)],
                    vec![
                        expect(shows_message("agent", &text), Msg4, self.reconnect_wait()),
                        expect(json!({ "connection": "open" }), Rc1, self.reconnect_wait()),
                    ],
                    &[Msg4, Msg1, Msg3],
                );
                self.reconnect_checks();
            }
            Beat::EchoOnlyInReplay => {
                let (a1, a2) = (self.answer(), self.answer());
                self.turn(
                    vec![
                        json!({ "pause_ms": 50 }),
                        json!({ "fault": "drop" }),
                        json!({ "pause_ms": 100 }),
                        json!({ "reply": { "text": a1 } }),
                        json!({ "reply": { "text": a2 } }),
                    ],
                    vec![said("agent", &a1), said("agent", &a2)],
                    vec![
                        expect(shows_message("agent", &a2), Msg1, self.reconnect_wait()),
                        expect(json!({ "connection": "open" }), Rc1, self.reconnect_wait()),
                    ],
                    &[Msg1, Msg3],
                );
                self.reconnect_checks();
            }
            Beat::UnknownInReplay => {
                let (a, hidden) = (self.answer(), self.answer());
                let kind = format!("EVENT_TYPE_FUTURE_{}", 10 + self.d.below(80));
                self.turn(
                    vec![
                        json!({ "think_ms": 5 }),
                        json!({ "reply": { "text": a } }),
                        json!({ "pause_ms": 50 }),
                        json!({ "fault": "drop" }),
                        json!({ "pause_ms": 100 }),
                        json!({ "fault": { "unknown_event_type": kind } }),
                        json!({ "reply": { "text": hidden } }),
                    ],
                    vec![said("agent", &a), said("agent", &hidden)],
                    vec![
                        expect(shows_message("agent", &a), Msg3, quick),
                        expect(shows_message("agent", &hidden), Err2, self.reconnect_wait()),
                    ],
                    &[Err2, Msg3],
                );
                self.reconnect_checks();
            }
            Beat::RefusedReconnects { refusals } => {
                let a = self.answer();
                self.turn(
                    vec![
                        json!({ "think_ms": 5 }),
                        json!({ "reply": { "text": a } }),
                        json!({ "pause_ms": 50 }),
                        json!({ "fault": { "refuse_handshakes": { "count": refusals, "status": 503 } } }),
                        json!({ "fault": "drop" }),
                    ],
                    vec![said("agent", &a)],
                    vec![
                        expect(shows_message("agent", &a), Msg3, quick),
                        json!({ "hold_ms": 200 }),
                        expect(json!({ "connection": "open" }), Rc1, 12_000),
                    ],
                    &[Msg3],
                );
                self.reconnect_checks();
            }
            Beat::Restart => {
                self.steps.push(json!("restart"));
                self.steps
                    .push(expect(json!({ "connection": "open" }), Ws4, quick));
                self.check(&[Ws4, Rc2]);
            }
            Beat::Handoff { queue, turns } => {
                let live = json!({ "id": "agent_77", "name": "{live_agent_name}", "avatar_url": "{live_agent_avatar_url}" });
                self.turn(
                    vec![
                        json!({ "think_ms": 5 }),
                        json!("trigger_handoff"),
                        json!({ "pause_ms": 150 }),
                        json!("agent_left"),
                        json!("handoff_accepted"),
                        json!({ "queue_status": { "queue_name": "{queue_name}", "position_in_queue": queue + 1, "repeat": queue, "interval_ms": 300 } }),
                        json!({ "pause_ms": 300 }),
                        json!({ "live_agent_join": live }),
                    ],
                    Vec::new(),
                    vec![expect(json!({ "handoff": "live" }), Ux3, quick)],
                    &[Ux3, Msg3],
                );
                self.live_agent = true;
                for _ in 0..*turns {
                    let l = self.answer();
                    self.turn(
                        vec![
                            json!({ "live_agent_typing": "TYPING_STATE_STARTED" }),
                            json!({ "pause_ms": 600 }),
                            json!({ "live_agent_message": { "text": l } }),
                        ],
                        vec![said("live_agent", &l)],
                        vec![expect(shows_message("live_agent", &l), Msg3, quick)],
                        &[Ux1, Msg3],
                    );
                }
            }
            Beat::ClientHandoff => {
                self.turn(
                    vec![
                        json!({ "think_ms": 5 }),
                        json!("trigger_handoff"),
                        json!({ "client_handoff": { "reason": "{client_handoff_reason}", "queue_name": "{client_handoff_queue}" } }),
                        json!("agent_left"),
                    ],
                    Vec::new(),
                    vec![expect(json!({ "handoff": "client_required" }), Ux5, quick)],
                    &[Ux5, Msg3],
                );
            }
            Beat::HandoffFails { timeout } => {
                let mut steps = vec![json!({ "think_ms": 5 }), json!("trigger_handoff")];
                let mut after = Vec::new();
                if *timeout {
                    steps.push(json!("handoff_accepted"));
                    steps.push(json!({ "queue_status": { "queue_name": "{queue_name}", "position_in_queue": 2 } }));
                    steps.push(json!({ "pause_ms": 400 }));
                    steps.push(json!("handoff_timeout"));
                } else {
                    steps.push(json!({ "pause_ms": 150 }));
                    steps.push(json!("handoff_failed"));
                    steps.push(json!({ "error": "handoff_could_not_connect" }));
                    after.push(said("system", error_text("handoff_could_not_connect")));
                    self.check(&[Err1]);
                }
                let state = if *timeout { "timeout" } else { "failed" };
                self.turn(
                    steps,
                    after,
                    vec![expect(json!({ "handoff": state }), Ux3, quick)],
                    &[Ux3, Msg3],
                );
            }
            Beat::UserEnds => {
                self.check(&[Ux4]);
                self.steps.push(json!("end"));
                self.steps
                    .push(expect(json!({ "ended": "REASON_USER_END" }), Ux4, quick));
                self.after_end();
            }
            Beat::NaturalEnd { during_drop } => {
                let mut steps = Vec::new();
                let mut after = Vec::new();
                let mut wait = Vec::new();
                if self.live_agent {
                    steps.push(json!("live_agent_left"));
                } else {
                    let a = self.answer();
                    steps.push(json!({ "think_ms": 5 }));
                    steps.push(json!({ "reply": { "text": a } }));
                    after.push(said("agent", &a));
                    wait.push(expect(shows_message("agent", &a), Msg3, quick));
                }
                if *during_drop {
                    steps.push(json!({ "pause_ms": 50 }));
                    steps.push(json!({ "fault": "drop" }));
                    steps.push(json!({ "pause_ms": 100 }));
                    self.check(&[Msg1, Rc1]);
                }
                steps.push(json!({ "end": "REASON_NATURAL_END" }));
                wait.push(expect(
                    json!({ "ended": "REASON_NATURAL_END" }),
                    Ux4,
                    self.reconnect_wait(),
                ));
                self.turn(steps, after, wait, &[Ux4, Msg3]);
                self.after_end();
            }
            Beat::GiveUp => {
                let a = self.answer();
                let attempts = self.session.settings.max_attempts;
                let give_up: u64 = (0..attempts).map(|i| 1_000u64 << i).sum::<u64>() + 3_000;
                self.turn(
                    vec![
                        json!({ "think_ms": 5 }),
                        json!({ "reply": { "text": a } }),
                        json!({ "pause_ms": 50 }),
                        json!({ "fault": { "refuse_handshakes": { "count": 60, "status": 503 } } }),
                        json!({ "fault": "drop" }),
                    ],
                    vec![said("agent", &a)],
                    vec![
                        expect(shows_message("agent", &a), Msg3, quick),
                        json!({ "hold_ms": 300 }),
                        expect(json!({ "connection": "closed" }), Rc4, give_up),
                        json!({ "hold_ms": 1500 }),
                    ],
                    &[Rc1, Rc3, Rc4, Msg3],
                );
            }
            Beat::TokenExpired | Beat::SessionExpired => {
                let a = self.answer();
                let fault = if *beat == Beat::TokenExpired {
                    vec![
                        json!({ "fault": "expire_token" }),
                        json!({ "fault": "drop" }),
                    ]
                } else {
                    vec![json!({ "fault": "expire_session" })]
                };
                let mut steps = vec![
                    json!({ "think_ms": 5 }),
                    json!({ "reply": { "text": a } }),
                    json!({ "pause_ms": 50 }),
                ];
                steps.extend(fault);
                self.turn(
                    steps,
                    vec![said("agent", &a)],
                    vec![
                        expect(shows_message("agent", &a), Msg3, quick),
                        expect(json!({ "another_session": true }), Rc5, 8_000),
                        expect(shows_message("agent", "{greeting}"), Ws3, quick),
                        json!({ "hold_ms": 500 }),
                    ],
                    &[Rc5, Auth3, Rc1, Msg3],
                );
            }
            Beat::LostForever => {
                let q = self.question();
                self.steps.push(send(&q));
                self.steps.push(expect(
                    json!({ "message": { "from": "user", "text": q, "status": "failed" } }),
                    Msg5,
                    43_000,
                ));
                self.check(&[Msg5, Hb1, Hb2]);
            }
        }
    }

    /// After an end: a message the user tries must be refused, and the client stays away.
    fn after_end(&mut self) {
        let late = self.question();
        self.steps.push(send(&late));
        self.steps.push(json!({ "hold_ms": 1700 }));
    }

    fn file(mut self) -> Value {
        use ObligationId::*;
        let session = self.session;
        let beats = session.beats.clone();
        self.steps.push(json!("start"));
        let greeting = "{greeting}";
        self.steps
            .push(expect(shows_message("agent", greeting), Ws3, 20_000));
        self.conversation.push(said("agent", greeting));
        self.check(&[Ws3, Msg3, Hb1, Hb2]);
        for beat in &beats {
            self.beat(beat);
            if beat.ends() {
                break;
            }
        }
        if !beats.last().is_some_and(Beat::ends) {
            self.steps.push(json!({ "hold_ms": 500 }));
        }
        let s = &session.settings;
        let mut mock = json!({
            "heartbeat_interval_seconds": s.heartbeat_seconds,
            "max_reconnect_attempts": s.max_attempts,
        });
        if s.hold_back_ms > 0 {
            mock["replay_delay_ms"] = json!(s.hold_back_ms);
            self.check(&[Ws2]);
        }
        if beats.contains(&Beat::Oversized) {
            mock["max_message_size_bytes"] = json!(s.max_message_size);
        }
        if let Some((retry, fails)) = s.rest_failures {
            mock["http_failures"] = json!({
                "access_token_429": { "count": 1, "retry_after_seconds": retry },
                "sessions": fails,
            });
            self.check(&[Auth5]);
        }
        let mut join = self.join.clone();
        join.insert(2, json!({ "reply": { "text": greeting } }));
        let mut rules = vec![json!({ "when": "join", "steps": join })];
        rules.extend(self.rules);
        json!({
            "id": session.id(),
            "description": session.describe(),
            "tier": "full",
            "streaming": s.streaming,
            "mock": mock,
            "scenario": {
                "description": "A generated session.",
                "persona": { "name": "{agent_name}", "avatar_url": "{agent_avatar_url}" },
                "rules": rules,
            },
            "steps": self.steps,
            "settle_ms": 500,
            "conversation": self.conversation,
            "checks": self.checks.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        })
    }
}

/// What a failure is, for shrinking: the obligations a result broke.
pub fn broken(result: &crate::runner::CaseResult) -> BTreeSet<ObligationId> {
    result
        .findings
        .iter()
        .filter(|f| f.verdict.is_broken())
        .map(|f| f.obligation)
        .collect()
}

/// Shrinks a failing session: drops beats one at a time (never the last, its ending) while
/// `still_fails` holds for what is left, until no single beat can go. Returns the beats kept
/// (indices into `session.beats`), at most `budget` runs spent.
pub async fn shrink<F, Fut>(session: &Session, budget: usize, still_fails: F) -> Vec<usize>
where
    F: Fn(Session) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut keep: Vec<usize> = (0..session.beats.len()).collect();
    let mut spent = 0;
    let mut changed = true;
    while changed && spent < budget {
        changed = false;
        let mut at = 0;
        while at + 1 < keep.len() && spent < budget {
            let mut fewer = keep.clone();
            fewer.remove(at);
            spent += 1;
            if still_fails(session.only(&fewer)).await {
                keep = fewer;
                changed = true;
            } else {
                at += 1;
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;

    #[test]
    fn every_generated_session_loads_as_a_case_and_a_few_sessions_meet_every_beat_kind() {
        let mut kinds = std::collections::HashSet::new();
        for index in 0..40 {
            let session = Session::generate(7, index);
            let case = session
                .case()
                .unwrap_or_else(|e| panic!("{e}\n{session:?}"));
            case.instantiate(&Params::draw(index))
                .unwrap_or_else(|e| panic!("{e}"));
            for beat in &session.beats {
                kinds.insert(std::mem::discriminant(beat));
            }
            assert!(session.beats.last().is_some_and(Beat::ends), "{session:?}");
        }
        // Every middle beat, a phase beat of each kind, and every ending.
        assert!(
            kinds.len() >= 29,
            "{} kinds of beat in 40 sessions",
            kinds.len()
        );
    }

    #[test]
    fn the_same_seed_generates_the_same_session_and_another_seed_another() {
        assert_eq!(Session::generate(3, 1), Session::generate(3, 1));
        assert_ne!(Session::generate(3, 1), Session::generate(3, 2));
        assert_ne!(Session::generate(3, 1), Session::generate(4, 1));
        let session = Session::generate(3, 1);
        assert_eq!(Session::from_id(&session.id()), Some(session.clone()));
        let shrunk = session.only(&[1, session.beats.len() - 1]);
        assert!(shrunk.id().contains("-beats-1."), "{}", shrunk.id());
        assert_eq!(Session::from_id(&shrunk.id()), Some(shrunk));
        assert_eq!(Session::from_id("generated-x"), None);
    }

    #[tokio::test]
    async fn shrinking_keeps_exactly_the_beats_a_failure_needs() {
        let session = Session::generate(11, 0);
        let needed = session.beats.len() / 2;
        let kept = shrink(&session, 100, |s| {
            let needs = session.beats[needed].clone();
            async move { s.beats.contains(&needs) }
        })
        .await;
        let last = session.beats.len() - 1;
        let wanted: Vec<usize> = if needed == last {
            vec![last]
        } else {
            vec![needed, last]
        };
        // A beat equal to the needed one may stand in for it.
        assert!(kept.len() == wanted.len(), "{kept:?} vs {wanted:?}");
        assert!(kept.contains(&last));
    }
}
