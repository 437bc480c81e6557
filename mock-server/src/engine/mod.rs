//! The session state machine, without I/O: `(state, input, now) -> actions`.
//!
//! A [`Session`] owns one conversation: its history, its phase (who is present), the validated
//! [`Script`] it consults, and a timeline of steps still to play. The shell (`ws`, `state`)
//! feeds it decoded client frames, connects and clock ticks, then carries out the returned
//! [`Action`]s. Time is always passed in as [`Now`], so tests drive it with a fake clock and no
//! sockets.
//!
//! - [`history`]: the replayable history, replay batching and cursor parsing.
//! - [`ids`]: seeded id minting (and the seeded chance behind probabilistic rules).
//! - `receive`: what a client's frame does (message, typing, join, heartbeat, error answers).
//! - `timeline`: the scheduled steps, in time order, scaled by pacing, played when due.
//! - `faults`: delivery, replay and handshake faults, on purpose.
//! - `fit`: whether pushed steps make sense in the phase they will play in.
//! - `config`: [`EngineConfig`], the §12 decisions a session consults.

mod config;
pub(crate) mod faults;
mod fit;
pub mod history;
pub mod ids;
mod receive;
mod timeline;

pub use config::EngineConfig;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::protocol::{
    Capabilities, ClientEvent, ClientFrame, ClientFrameRejection, Empty, LiveAgent,
    LiveAgentJoined, LiveAgentMessage, LiveAgentTyping, Metadata, PolyAgentJoined,
    PolyAgentMessage, PolyAgentMessageChunk, Sequence, ServerEnvelope, ServerEvent, SessionEnd,
    SessionEndReason, SessionStart, SystemMessage, SystemMessageLevel, Timestamp, UnknownEvent,
    UserMessageEcho, catalog, encode_server_frame,
};
use crate::scenario::script::{Chance, Stream};
use crate::scenario::{Audience, Fault, Memory, Reply, Script, Step};

use history::{History, ReplayRequest};
use ids::IdGen;

/// The current time, as the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time since an arbitrary origin; all deadlines are on this scale.
    pub elapsed: Duration,
    /// Wall-clock time for envelope timestamps and UUIDv7 ids.
    pub unix_millis: u64,
}

/// Identifies one WebSocket connection of a session.
pub type ConnId = u64;

/// Who receives a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    /// Every open connection of the session (spec §12 C5).
    All,
    /// One connection: replays, and errors caused by that connection's frame.
    Conn(ConnId),
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send {
        to: Recipient,
        frame: String,
    },
    Close {
        to: Recipient,
        code: u16,
        reason: &'static str,
    },
    /// Drop the TCP connection without a close frame (the client sees 1006).
    Drop {
        to: Recipient,
    },
    /// Nothing to send: something worth a journal entry happened.
    Note(Note),
}

/// Engine happenings the shell journals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A fault took effect (its debug form names it).
    Fault(String),
    /// A timer fired.
    Timer(&'static str),
}

/// Close code after `SESSION_END` (spec §12 D1).
pub const CLOSE_SESSION_ENDED: u16 = 1000;
/// Close code when the server forgets a session under an open socket (spec §12 D1).
pub const CLOSE_SESSION_UNKNOWN: u16 = 4001;

/// Who is in the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// New session: nobody has joined; a `USER_MESSAGE` is an error (spec §12 E1).
    AwaitingJoin,
    /// The join was requested; the agent's join steps are playing.
    Joining,
    PolyAgent,
    /// Accepted by the live-agent system, waiting in the queue (spec §12 E5).
    Queue,
    LiveAgent(LiveAgent),
    /// After a client-managed or failed handoff, or a live agent left (spec §12 E2, E3).
    NoAgent,
    Ended(SessionEndReason),
}

/// Whether the session still exists for handshakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Active,
    /// Ended but still replayable (spec §12 C8).
    Ended,
    /// Gone: handshakes get 404 (spec §12 C7).
    Expired,
}

/// A handshake the session refuses (scenario faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub body: &'static str,
}

impl Refusal {
    /// A refused handshake with `status`, and the catalogue's body for it.
    pub fn with_status(status: u16) -> Self {
        let body = match status {
            400 => catalog::INVALID_CONNECTION_PARAMETERS,
            401 => catalog::AUTHENTICATION_FAILED,
            404 => catalog::SESSION_NOT_FOUND,
            429 => catalog::CONNECTION_LIMIT_EXCEEDED,
            _ => "service unavailable",
        };
        Self { status, body }
    }
}

/// An item of the timeline.
#[derive(Debug, Clone)]
enum Scheduled {
    Step(Step),
    Chunk(PolyAgentMessageChunk),
    /// A held `USER_MESSAGE` echo (the delayed-echo fault).
    Echo(UserMessageEcho, Option<Metadata>),
}

/// Modifiers of live delivery, armed by faults, consumed by the next event(s).
#[derive(Debug, Default)]
struct Delivery {
    duplicate: bool,
    omit: bool,
    unknown_fields: bool,
    null_sequence: bool,
    /// Armed swap, and the event held back until the next one is sent.
    swap: bool,
    held: Option<String>,
}

/// Modifiers of the next replay and of handshakes.
#[derive(Debug, Default)]
struct Pending {
    split_replay: Option<usize>,
    drop_replay_after: Option<usize>,
    reverse_replay: bool,
    alternate_shape: bool,
    delay_echo: Option<Duration>,
    /// User messages still to lose (no echo, no processing).
    drop_echo: u32,
    /// The next user message's echo goes into the history but not out live.
    omit_echo: bool,
    refuse: Option<(u32, u16)>,
    token_expired: bool,
}

/// One conversation.
#[derive(Debug)]
pub struct Session {
    config: Arc<EngineConfig>,
    script: Arc<Script>,
    streaming: bool,
    ids: IdGen,
    memory: Memory,
    history: History,
    phase: Phase,
    user_messages: u32,
    connections_seen: u32,
    timeline: VecDeque<(Duration, Scheduled)>,
    timeline_tail: Duration,
    last_activity: Duration,
    ended_at: Option<Duration>,
    expired: bool,
    frames_emitted: u64,
    delivery: Delivery,
    pending: Pending,
}

impl Chance for IdGen {
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Session {
    /// A new session; journals `SESSION_START` as sequence 1.
    pub fn new(
        config: Arc<EngineConfig>,
        script: Arc<Script>,
        streaming: bool,
        seed: u64,
        now: Now,
    ) -> Self {
        let overrides = &script.capabilities;
        let capabilities = Capabilities {
            streaming: Some(streaming),
            max_message_size_bytes: overrides
                .max_message_size_bytes
                .or(config.capabilities.max_message_size_bytes),
            max_reconnect_attempts: overrides
                .max_reconnect_attempts
                .or(config.capabilities.max_reconnect_attempts),
            heartbeat_interval_seconds: overrides
                .heartbeat_interval_seconds
                .or(config.capabilities.heartbeat_interval_seconds),
        };
        let start = ServerEvent::SessionStart(SessionStart {
            capabilities,
            context_id: config.context_id.clone(),
        });
        let mut session = Self {
            config,
            script,
            streaming,
            ids: IdGen::from_seed(seed),
            memory: Memory::default(),
            history: History::default(),
            phase: Phase::AwaitingJoin,
            user_messages: 0,
            connections_seen: 0,
            timeline: VecDeque::new(),
            timeline_tail: now.elapsed,
            last_activity: now.elapsed,
            ended_at: None,
            expired: false,
            frames_emitted: 0,
            delivery: Delivery::default(),
            pending: Pending::default(),
        };
        let mut discard = Vec::new();
        session.emit(&mut discard, Recipient::All, start, None, true, now);
        session
    }

    pub fn streaming(&self) -> bool {
        self.streaming
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn script(&self) -> &Script {
        &self.script
    }

    pub fn status(&self) -> SessionStatus {
        match (&self.phase, self.expired) {
            (_, true) => SessionStatus::Expired,
            (Phase::Ended(_), false) => SessionStatus::Ended,
            _ => SessionStatus::Active,
        }
    }

    /// When [`Session::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Duration> {
        if self.expired {
            return None;
        }
        if let Some(ended_at) = self.ended_at {
            return Some(ended_at + self.config.retention);
        }
        let idle = self.last_activity + self.config.idle_timeout;
        Some(match self.timeline.front() {
            Some((due, _)) => idle.min(*due),
            None => idle,
        })
    }

    /// Whether a handshake may proceed, given the scenario's handshake faults. A refusal
    /// counts against the armed number.
    pub fn admit_handshake(&mut self) -> Result<(), Refusal> {
        let refusal = self.refusal();
        if refusal.is_some()
            && !self.pending.token_expired
            && let Some((count, status)) = self.pending.refuse.take()
            && count > 1
        {
            self.pending.refuse = Some((count - 1, status));
        }
        refusal.map_or(Ok(()), Err)
    }

    /// The refusal the next handshake would get, without counting it: what a plain `GET /ws`
    /// (no upgrade) is answered with, so a browser-side client can learn why its socket did
    /// not open.
    pub fn refusal(&self) -> Option<Refusal> {
        if self.pending.token_expired {
            return Some(Refusal {
                status: 401,
                body: catalog::AUTHENTICATION_FAILED,
            });
        }
        let (_, status) = self.pending.refuse?;
        Some(Refusal::with_status(status))
    }

    /// A connection opened with `cursor`: its replay, a close if the session has ended
    /// (spec §12 C8), and whatever the script does on a reconnect. The caller registers the
    /// connection before carrying these out.
    pub fn connect(&mut self, conn: ConnId, cursor: u64, now: Now) -> Vec<Action> {
        let request = ReplayRequest {
            cursor,
            strict_cursor: self.config.strict_cursor,
            batch_size: self
                .pending
                .split_replay
                .take()
                .unwrap_or(self.config.replay_batch_size),
            max_frame_bytes: self.max_frame_bytes(),
            reversed: std::mem::take(&mut self.pending.reverse_replay),
        };
        let stamp = self.stamp(now);
        let mut batches = self.history.replay_batches(&request, &mut self.ids, stamp);
        if std::mem::take(&mut self.pending.alternate_shape) {
            batches = batches.iter().map(|b| faults::alternate_shape(b)).collect();
        }
        let drop_after = self.pending.drop_replay_after.take();
        if let Some(keep) = drop_after {
            batches.truncate(keep);
        }
        let mut out: Vec<Action> = batches
            .into_iter()
            .map(|frame| Action::Send {
                to: Recipient::Conn(conn),
                frame,
            })
            .collect();
        if drop_after.is_some() {
            self.connections_seen += 1;
            out.push(Action::Drop {
                to: Recipient::Conn(conn),
            });
            return out;
        }
        self.connections_seen += 1;
        if matches!(self.phase, Phase::Ended(_)) {
            out.push(Action::Close {
                to: Recipient::Conn(conn),
                code: CLOSE_SESSION_ENDED,
                reason: "session ended",
            });
            return out;
        }
        if self.connections_seen > 1 {
            let steps = self.script.on_reconnect(&mut self.memory, &mut self.ids);
            self.schedule(steps, now);
            self.run_due(&mut out, now);
        }
        out
    }

    /// Steps pushed from outside (the control API), played as if the script had said them.
    /// Refused, with nothing changed, when they do not fit the conversation: e.g. a live-agent
    /// message with no live agent present.
    pub fn push_steps(&mut self, steps: Vec<Step>, now: Now) -> Result<Vec<Action>, String> {
        self.check_fits(&steps)?;
        let mut out = Vec::new();
        self.run_due(&mut out, now);
        self.schedule(steps, now);
        self.run_due(&mut out, now);
        Ok(out)
    }

    /// The server drops the session (control-API reset): sockets closed with 1001.
    pub fn forget(&mut self) -> Vec<Action> {
        self.expired = true;
        self.timeline.clear();
        vec![Action::Close {
            to: Recipient::All,
            code: 1001,
            reason: "mock reset",
        }]
    }

    fn max_frame_bytes(&self) -> usize {
        self.config
            .capabilities
            .max_message_size_bytes
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(131_072)
    }

    /// A frame arrived on `conn`, decoded (or rejected) by the shell.
    pub fn receive(
        &mut self,
        conn: ConnId,
        decoded: Result<ClientFrame, ClientFrameRejection>,
        now: Now,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(self.phase, Phase::Ended(_)) || self.expired {
            // The socket is closing; frames racing the close are discarded (spec §12 D2).
            return out;
        }
        self.last_activity = now.elapsed;
        self.run_due(&mut out, now);
        match decoded {
            Err(rejection) => {
                let message = rejection.error.system_message().into_owned();
                self.reply_error(&mut out, conn, message, rejection.metadata, now);
            }
            Ok(frame) => self.handle(&mut out, conn, frame, now),
        }
        self.run_due(&mut out, now);
        out
    }

    /// When the session ended, if it has.
    pub fn ended_at(&self) -> Option<Duration> {
        self.ended_at
    }

    /// Forgets an ended session before its retention is over (the server is at its session
    /// cap). Does nothing to a session that has not ended.
    pub fn retire(&mut self) -> Vec<Action> {
        if self.ended_at.is_none() || self.expired {
            return Vec::new();
        }
        self.expired = true;
        vec![Action::Note(Note::Timer(
            "session cap reached: ended session forgotten before its retention",
        ))]
    }

    /// The clock moved: play due steps, end idle sessions, forget ended ones after retention.
    pub fn tick(&mut self, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        self.run_due(&mut out, now);
        if self.expired {
            return out;
        }
        match self.ended_at {
            Some(ended_at) => {
                if now.elapsed >= ended_at + self.config.retention {
                    out.push(Action::Note(Note::Timer(
                        "retention elapsed: session forgotten",
                    )));
                    self.expired = true;
                }
            }
            None => {
                if now.elapsed >= self.last_activity + self.config.idle_timeout {
                    out.push(Action::Note(Note::Timer(
                        "inactivity timeout: session abandoned",
                    )));
                    self.end(&mut out, SessionEndReason::UserAbandoned, now);
                    self.expired = true;
                }
            }
        }
        out
    }

    /// Sends `event` to every connection, journaled unless its type is transient.
    fn emit_event(
        &mut self,
        out: &mut Vec<Action>,
        event: ServerEvent,
        metadata: Option<Metadata>,
        now: Now,
    ) {
        let journaled = !self.config.is_transient(event.event_type());
        self.emit(out, Recipient::All, event, metadata, journaled, now);
    }

    /// The Unix milliseconds for the next frame: the wall clock, or the logical one.
    fn stamp(&mut self, now: Now) -> u64 {
        self.frames_emitted += 1;
        match self.config.logical_clock_epoch {
            Some(epoch) => epoch + self.frames_emitted,
            None => now.unix_millis,
        }
    }

    fn emit(
        &mut self,
        out: &mut Vec<Action>,
        to: Recipient,
        event: ServerEvent,
        metadata: Option<Metadata>,
        journaled: bool,
        now: Now,
    ) {
        let live = to == Recipient::All;
        let null_sequence = live && std::mem::take(&mut self.delivery.null_sequence);
        let journaled = journaled && !null_sequence;
        let sequence = journaled.then(|| self.history.next_sequence());
        let stamp = self.stamp(now);
        let envelope = ServerEnvelope {
            id: self.ids.event_id(stamp),
            sequence,
            timestamp: Timestamp::from_unix_millis(stamp),
            event,
            metadata,
        };
        let mut frame = encode_server_frame(&envelope);
        if let Some(sequence) = sequence {
            self.history.push(sequence, &frame);
        }
        if !live {
            out.push(Action::Send { to, frame });
            return;
        }
        if std::mem::take(&mut self.delivery.unknown_fields) {
            frame = faults::with_unknown_fields(&frame);
        }
        self.deliver(out, frame);
    }

    /// Live delivery of one frame through the armed delivery faults.
    fn deliver(&mut self, out: &mut Vec<Action>, frame: String) {
        let to = Recipient::All;
        if std::mem::take(&mut self.delivery.omit) {
            return;
        }
        if std::mem::take(&mut self.delivery.swap) {
            self.delivery.held = Some(frame);
            return;
        }
        if std::mem::take(&mut self.delivery.duplicate) {
            out.push(Action::Send {
                to,
                frame: frame.clone(),
            });
        }
        out.push(Action::Send { to, frame });
        if let Some(held) = self.delivery.held.take() {
            out.push(Action::Send { to, frame: held });
        }
    }

    fn end(&mut self, out: &mut Vec<Action>, reason: SessionEndReason, now: Now) {
        if let Some(held) = self.delivery.held.take() {
            out.push(Action::Send {
                to: Recipient::All,
                frame: held,
            });
        }
        self.emit_event(
            out,
            ServerEvent::SessionEnd(SessionEnd {
                reason: reason.clone(),
            }),
            None,
            now,
        );
        out.push(Action::Close {
            to: Recipient::All,
            code: CLOSE_SESSION_ENDED,
            reason: "session ended",
        });
        self.phase = Phase::Ended(reason);
        self.ended_at = Some(now.elapsed);
        self.timeline.clear();
    }

    fn live_agent_id(&self) -> Option<String> {
        match &self.phase {
            Phase::LiveAgent(agent) => Some(agent.id.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
