//! A validated scenario: what the agents do, as data. The engine asks the [`Script`] what to do
//! at each conversational moment and plays the [`Step`]s it answers with, in order.

use std::time::Duration;

use regex::Regex;

use crate::protocol::{
    Attachment, ClientHandoffReason, HandoffQueueStatus, LiveAgent, ResponseSuggestion,
    SessionEndReason, SystemMessageLevel, TypingState,
};

/// One thing the scripted side does. Steps run in order; [`Step::Pause`] spaces them in time.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Wait before the next step.
    Pause(Duration),
    /// `POLY_AGENT_JOINED` with the persona; the PolyAI agent is now present.
    Join,
    /// `POLY_AGENT_THINKING` (transient).
    Think,
    /// A PolyAI agent message: one `POLY_AGENT_MESSAGE`, or chunks split by the pacing rules
    /// when the session streams.
    Say(Reply),
    /// A message with explicit chunks (spec §7). Without streaming: one whole message.
    Stream(Stream),
    /// `POLY_AGENT_TRIGGERED_HANDOFF`.
    TriggerHandoff,
    /// `POLY_AGENT_LEFT`; the PolyAI agent is gone.
    AgentLeft,
    /// `HANDOFF_ACCEPTED`; the user is queued for a human.
    HandoffAccepted,
    /// `HANDOFF_QUEUE_STATUS` (transient).
    QueueStatus(HandoffQueueStatus),
    /// `LIVE_AGENT_JOINED`; the human is present.
    LiveAgentJoined(LiveAgent),
    /// `LIVE_AGENT_TYPING` (transient).
    LiveAgentTyping(TypingState),
    /// `LIVE_AGENT_MESSAGE` from the present human (never chunked).
    LiveAgentSays(Reply),
    /// `LIVE_AGENT_LEFT`; nobody is present.
    LiveAgentLeft,
    /// `CLIENT_HANDOFF_REQUIRED`: the client must route the user.
    ClientHandoffRequired {
        reason: ClientHandoffReason,
        queue_name: String,
    },
    /// `HANDOFF_FAILED`; nobody is present.
    HandoffFailed,
    /// `HANDOFF_TIMEOUT`; nobody is present.
    HandoffTimeout,
    /// `LANGUAGE_CHANGED` (journaled).
    LanguageChanged(String),
    /// A journaled `SYSTEM_MESSAGE`: agent, session or handoff notices (spec §10.7–10.8).
    Notice {
        level: SystemMessageLevel,
        message: String,
    },
    /// `SESSION_END`, then every socket is closed with 1000. The reason may be one the docs do
    /// not list (a tolerance test, spec §12 D5).
    End(SessionEndReason),
    /// Something the real service does on a bad day.
    Fault(Fault),
}

/// The content of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub attachments: Vec<Attachment>,
    pub suggestions: Vec<String>,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    pub fn suggestions(&self) -> Vec<ResponseSuggestion> {
        to_suggestions(&self.suggestions)
    }
}

pub fn to_suggestions(texts: &[String]) -> Vec<ResponseSuggestion> {
    texts
        .iter()
        .map(|s| ResponseSuggestion {
            message_text: s.clone(),
        })
        .collect()
}

/// Explicit chunks of one streamed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub chunks: Vec<Reply>,
    /// Between chunks; the scenario's pacing when `None`.
    pub interval: Option<Duration>,
    /// Stop after this many chunks and send the streaming error instead of the rest
    /// (spec §12 E8).
    pub interrupt_after: Option<usize>,
    /// Drop every socket right after this many chunks; the rest still goes to the history.
    pub drop_after: Option<usize>,
    /// Chunk 2 is sent (and journaled) before chunk 1.
    pub second_chunk_first: bool,
}

/// Faults (spec §12 D1 and the fault list). Delivery faults act on the next event(s)
/// sent live; history stays correct, so a replay shows the truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Drop every socket without a close frame: clients see 1006.
    Drop,
    /// Close every socket with this code (1001, 1011, 4001, 4002, ...).
    Close(u16),
    /// Send the next event twice (same id).
    DuplicateNext,
    /// Send an already journaled event again, live.
    Resend(u64),
    /// Deliver the next two events in swapped order.
    SwapNext,
    /// Journal the next event but do not deliver it live.
    OmitNext,
    /// Split the next replay into batches of this many events.
    SplitNextReplay(usize),
    /// Drop the socket of the next replay after this many batches.
    DropNextReplayAfter(usize),
    /// Send the next replay's events (after `SESSION_START`) in reverse order.
    ReverseNextReplay,
    /// Send the whole history again as a live batch.
    ResendHistory,
    /// Hold the next `USER_MESSAGE` echo this long.
    DelayNextEcho(Duration),
    /// Never send the echo of the next this many `USER_MESSAGE`s (nor process them).
    DropEchoes(u32),
    /// Send the journaled event this many back again, live (1 = the newest).
    ResendPrevious(u64),
    /// Refuse the next handshakes of this session with this status.
    RefuseHandshakes { count: u32, status: u16 },
    /// The server forgets the session: sockets closed with 4001, handshakes get 404.
    ExpireSession,
    /// The session's access token stops working: handshakes get 401.
    ExpireToken,
    /// Journal the next user message's echo without sending it live.
    OmitNextEcho,
    /// Emit an event of this type, which the docs do not list.
    UnknownEvent(String),
    /// Add unknown fields to the next event's envelope and payload.
    UnknownFieldsNext,
    /// The next replay puts payloads under the alternate key of spec Appendix A.
    AlternateShapeNextReplay,
    /// Send the next event with `sequence: null` (it is then not journaled).
    NullSequenceNext,
}

/// The PolyAI agent's persona (`POLY_AGENT_JOINED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persona {
    pub name: String,
    pub avatar_url: String,
}

/// Who a user message reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The PolyAI agent is present (or joining).
    PolyAgent,
    /// Queued for a human (after `HANDOFF_ACCEPTED`, before `LIVE_AGENT_JOINED`).
    Queue,
    /// A human is present.
    LiveAgent,
    /// Nobody (after a client-managed or failed handoff, spec §12 E2).
    Nobody,
}

/// What a user message must look like for a rule to fire.
#[derive(Debug, Clone)]
pub enum TextMatch {
    Any,
    Equals(String),
    Contains(String),
    Regex(Regex),
}

/// When a rule fires.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// The join request of a new session (or a rejoin).
    Join,
    /// A user message matching `text`, heard by `audience` (any when `None`).
    Message {
        text: TextMatch,
        audience: Option<Audience>,
    },
    /// The n-th user message (1-based).
    NthMessage(u32),
    /// This long after the join.
    After(Duration),
    /// A connection opens after the session's first one.
    Reconnect,
}

/// A trigger and what it does.
#[derive(Debug, Clone)]
pub struct Rule {
    pub trigger: Trigger,
    pub steps: Vec<TemplateStep>,
    /// Fire at most once per session.
    pub once: bool,
    /// Fire with this probability (seeded).
    pub probability: Option<f64>,
}

/// A step whose strings may refer to the message that fired it: `$0` (the whole text),
/// `$1`…`$9` (regex captures).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateStep(pub Step);

/// Pacing used where a scenario does not give explicit times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pacing {
    pub chunk_interval: Duration,
    pub words_per_chunk: usize,
}

/// Capabilities a scenario advertises instead of the server's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilityOverrides {
    pub max_message_size_bytes: Option<u64>,
    pub max_reconnect_attempts: Option<u32>,
    pub heartbeat_interval_seconds: Option<u32>,
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Script {
    pub name: String,
    pub description: String,
    pub persona: Persona,
    pub capabilities: CapabilityOverrides,
    pub pacing: Pacing,
    pub seed: Option<u64>,
    pub rules: Vec<Rule>,
    /// What a message no rule matched gets, per audience.
    pub fallback_agent: Vec<TemplateStep>,
    pub fallback_live_agent: Vec<TemplateStep>,
    /// The pacing's thinking time.
    pub think: Duration,
}

/// Per-session memory the script's choices depend on.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    fired: Vec<usize>,
}

/// Draws uniform numbers in [0, 1); the engine passes its seeded generator.
pub trait Chance {
    fn next_unit(&mut self) -> f64;
}

impl Script {
    fn fire(
        &self,
        memory: &mut Memory,
        chance: &mut dyn Chance,
        matches: impl Fn(&Trigger) -> Option<Vec<String>>,
    ) -> Option<Vec<Step>> {
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.once && memory.fired.contains(&index) {
                continue;
            }
            let Some(captures) = matches(&rule.trigger) else {
                continue;
            };
            if let Some(p) = rule.probability
                && chance.next_unit() >= p
            {
                continue;
            }
            memory.fired.push(index);
            return Some(instantiate(&rule.steps, &captures));
        }
        None
    }

    /// The join: the matching rule, or `Join`, `Think` and nothing else.
    pub fn on_join(&self, memory: &mut Memory, chance: &mut dyn Chance) -> Vec<Step> {
        self.fire(memory, chance, |t| {
            matches!(t, Trigger::Join).then(Vec::new)
        })
        .unwrap_or_else(|| vec![Step::Join])
    }

    /// The `n`-th user message, heard by `audience`.
    pub fn on_user_message(
        &self,
        audience: Audience,
        text: &str,
        n: u32,
        memory: &mut Memory,
        chance: &mut dyn Chance,
    ) -> Vec<Step> {
        let fired = self.fire(memory, chance, |trigger| match trigger {
            Trigger::Message {
                text: pattern,
                audience: wanted,
            } if wanted.is_none_or(|a| a == audience) => match_text(pattern, text),
            Trigger::NthMessage(k) if *k == n => Some(vec![text.to_owned()]),
            _ => None,
        });
        if let Some(steps) = fired {
            return steps;
        }
        let fallback = match audience {
            Audience::PolyAgent => &self.fallback_agent,
            Audience::LiveAgent => &self.fallback_live_agent,
            Audience::Queue | Audience::Nobody => return Vec::new(),
        };
        instantiate(fallback, &[text.to_owned()])
    }

    /// A connection after the first one opened.
    pub fn on_reconnect(&self, memory: &mut Memory, chance: &mut dyn Chance) -> Vec<Step> {
        self.fire(memory, chance, |t| {
            matches!(t, Trigger::Reconnect).then(Vec::new)
        })
        .unwrap_or_default()
    }

    /// Rules that fire a fixed time after the join, with their delays.
    pub fn timed(&self) -> Vec<(Duration, Vec<Step>)> {
        self.rules
            .iter()
            .filter_map(|rule| match rule.trigger {
                Trigger::After(delay) => Some((delay, instantiate(&rule.steps, &[]))),
                _ => None,
            })
            .collect()
    }

    /// How to cut `text` into streamed chunks.
    pub fn chunk_texts(&self, text: &str) -> Vec<String> {
        split_words(text, self.pacing.words_per_chunk)
    }
}

fn match_text(pattern: &TextMatch, text: &str) -> Option<Vec<String>> {
    let whole = || vec![text.to_owned()];
    match pattern {
        TextMatch::Any => Some(whole()),
        TextMatch::Equals(expected) => (text == expected).then(whole),
        TextMatch::Contains(needle) => text.contains(needle.as_str()).then(whole),
        TextMatch::Regex(regex) => regex.captures(text).map(|captures| {
            let mut out = vec![text.to_owned()];
            out.extend(
                captures
                    .iter()
                    .skip(1)
                    .map(|c| c.map_or_else(String::new, |m| m.as_str().to_owned())),
            );
            out
        }),
    }
}

/// Replaces `$0`…`$9` in the steps' strings with `captures`.
fn instantiate(steps: &[TemplateStep], captures: &[String]) -> Vec<Step> {
    let fill = |s: &str| -> String {
        if !s.contains('$') {
            return s.to_owned();
        }
        let mut out = String::with_capacity(s.len());
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '$'
                && let Some(d) = chars.peek().and_then(|d| d.to_digit(10))
            {
                chars.next();
                out.push_str(captures.get(d as usize).map_or("", String::as_str));
                continue;
            }
            out.push(c);
        }
        out
    };
    let fill_reply = |r: &Reply| Reply {
        text: fill(&r.text),
        attachments: r.attachments.clone(),
        suggestions: r.suggestions.iter().map(|s| fill(s)).collect(),
    };
    steps
        .iter()
        .map(|TemplateStep(step)| match step {
            Step::Say(reply) => Step::Say(fill_reply(reply)),
            Step::LiveAgentSays(reply) => Step::LiveAgentSays(fill_reply(reply)),
            Step::LanguageChanged(code) => Step::LanguageChanged(fill(code)),
            Step::Notice { level, message } => Step::Notice {
                level: level.clone(),
                message: fill(message),
            },
            Step::Stream(stream) => Step::Stream(Stream {
                chunks: stream.chunks.iter().map(fill_reply).collect(),
                ..stream.clone()
            }),
            other => other.clone(),
        })
        .collect()
}

/// Splits `text` into pieces of `words` words, keeping every character (the pieces concatenate
/// back to `text`). An empty text gives one empty piece.
pub fn split_words(text: &str, words: usize) -> Vec<String> {
    let words = words.max(1);
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut seen = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                seen += 1;
                in_word = false;
            }
        } else {
            if !in_word && seen == words {
                pieces.push(text[start..i].to_owned());
                start = i;
                seen = 0;
            }
            in_word = true;
        }
    }
    pieces.push(text[start..].to_owned());
    pieces
}

/// Splits `text` into `pieces` parts of about equal length (by characters), keeping every
/// character; never more parts than characters, always at least one.
pub fn split_pieces(text: &str, pieces: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let pieces = pieces.clamp(1, chars.len().max(1));
    (0..pieces)
        .map(|i| {
            let start = i * chars.len() / pieces;
            let end = (i + 1) * chars.len() / pieces;
            chars[start..end].iter().collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_pieces_makes_n_parts_that_concatenate_back() {
        let text = "héllo wörld";
        for n in 1..=11 {
            let parts = split_pieces(text, n);
            assert_eq!(parts.len(), n);
            assert_eq!(parts.concat(), text);
        }
        assert_eq!(split_pieces("ab", 5), ["a", "b"]);
        assert_eq!(split_pieces("", 3), [""]);
    }

    #[test]
    fn split_words_keeps_every_character() {
        let text = "I'd be happy to help you with your booking!";
        let pieces = split_words(text, 3);
        assert_eq!(
            pieces,
            ["I'd be happy ", "to help you ", "with your booking!"]
        );
        assert_eq!(pieces.concat(), text);
        assert_eq!(split_words("", 3), [""]);
        assert_eq!(split_words("one", 3), ["one"]);
        assert_eq!(split_words("  a  b ", 1), ["  a  ", "b "]);
    }

    #[test]
    fn templates_fill_captures() {
        let steps = [TemplateStep(Step::Say(Reply::text(
            "You said: $0 / $1 / $9 / $x",
        )))];
        let filled = instantiate(&steps, &["hello fr".into(), "fr".into()]);
        assert_eq!(
            filled,
            [Step::Say(Reply::text("You said: hello fr / fr /  / $x"))]
        );
    }
}
