//! Generated sessions: what the agent says and does, what the user does, and the faults in
//! between, drawn from a seed across the coverage matrix, so a client meets paths no case
//! author wrote. A session is a list of beats (a user turn and what the server does around
//! it); it becomes an ordinary case file (checked on load like the catalogue's), is judged by
//! the same checks, and the conversation the client must end up showing is derived from the
//! beats, never taken from a client. A failing session shrinks to the fewest beats that still
//! break the same obligation ([`shrink`]); the report gives the seed and the beats kept.

mod case;
mod draw;
mod shrinking;

pub use shrinking::{broken, shrink};

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
    /// Two language changes (perhaps swapped), then the answer; with `again`, the whole
    /// history once more in a live batch (the older change arrives again).
    Languages { swapped: bool, again: bool },
    /// An answer with two suggestions; the user taps one, which gets its own answer.
    Suggestions { tap: usize },
    /// The user types (started, stopped) before asking.
    UserTyping,
    /// Nothing happens for a while (heartbeats keep the connection alive).
    Quiet,
    /// The user tries a text over the advertised frame limit in UTF-8 bytes (not in
    /// characters); with `frame_only`, a text under the limit whose frame is over it.
    Oversized { frame_only: bool },
    /// The question is lost on the way: no echo; the client must resend it.
    LostOnce,
    /// The answer, then the server closes the sockets (`None`: a drop); with `only_in_replay`
    /// a second answer while they are down; `replay` arms a fault of the next replay; with
    /// `typed_while_down` the user sends a question while they are down.
    Close {
        code: Option<u16>,
        only_in_replay: bool,
        replay: Option<&'static str>,
        typed_while_down: bool,
    },
    /// A streamed answer that the sockets drop in the middle of.
    MidStreamDrop { pieces: u64, drop_after: u64 },
    /// The question's echo only in the history, then the sockets go (`cut`: a close code, or
    /// `None`, a drop), and two answers while they are down: the replay carries all three.
    EchoOnlyInReplay { cut: Option<u16> },
    /// The answer, the sockets go (`cut`), and meanwhile an undocumented event (with `error`,
    /// an agent error too) and a second answer: only the replay carries them, side by side.
    UnknownInReplay { cut: Option<u16>, error: bool },
    /// The answer, then a drop and `refusals` refused handshakes before one succeeds.
    RefusedReconnects { refusals: u32 },
    /// The app restarts, leaving `pending` behind.
    Restart { pending: Pending },
    /// A server-managed handoff to a live agent, then `turns` turns with the live agent; with
    /// `last_while_down`, the last one answered while the sockets are down (only the replay
    /// carries it).
    Handoff {
        queue: u32,
        turns: u32,
        last_while_down: bool,
    },
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

/// What a user message is doing when the app restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pending {
    /// No message waits.
    Nothing,
    /// A question waits for its echo, which only the history carries: the restarted app must
    /// take it from its replay, not send the question again.
    Unechoed,
    /// A question typed while the sockets were down never went out: the restarted app must
    /// send it.
    Unsent,
}

/// The session's settings, drawn with its beats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub streaming: bool,
    pub heartbeat_seconds: u64,
    pub max_attempts: u64,
    pub hold_back_ms: u64,
    /// A bad start: a 429 and 500s on the REST calls.
    pub rest_failures: Option<RestFailures>,
    pub max_message_size: u64,
    /// The server closes the socket with 1000 as soon as it sends `SESSION_END`.
    pub close_at_end: bool,
    /// The socket drops right after the join, before the agent's join and greeting reach the
    /// client: only the replay carries them.
    pub join_interrupted: bool,
}

/// A bad start: one call gets a 429 with `retry_after` seconds, then one call (the same or the
/// other) gets `server_errors` 500s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestFailures {
    pub retry_after: u64,
    pub server_errors: u32,
    /// The 429 on the sessions call, the 500s on the access-token call (else the other way).
    pub sessions_first: bool,
}

/// A generated session: its seed, settings and beats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub seed: u64,
    pub settings: Settings,
    pub beats: Vec<Beat>,
}

impl Session {
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

    /// The beats, one line each, for reports.
    pub fn describe(&self) -> String {
        let s = &self.settings;
        let beats: Vec<String> = self.beats.iter().map(Beat::label).collect();
        format!(
            "generated session {} (streaming {}, heartbeat {} s, {} reconnect attempts, history held {} ms{}{}{}): {}",
            self.seed,
            s.streaming,
            s.heartbeat_seconds,
            s.max_attempts,
            s.hold_back_ms,
            if s.join_interrupted {
                ", the join interrupted by a drop"
            } else {
                ""
            },
            if s.close_at_end {
                ", closed with 1000 at the end"
            } else {
                ""
            },
            s.rest_failures
                .map(|r| {
                    let (limited, failing) = if r.sessions_first {
                        ("sessions", "access-token")
                    } else {
                        ("access-token", "sessions")
                    };
                    format!(
                        ", a 429 on {limited} (Retry-After {} s) and {} 500(s) on {failing}",
                        r.retry_after, r.server_errors
                    )
                })
                .unwrap_or_default(),
            beats.join("; ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
