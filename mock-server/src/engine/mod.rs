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

pub mod history;
pub mod ids;

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

/// Server-wide settings the engine consults (spec §12, the configurable parts).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Advertised in `SESSION_START`; `streaming` is filled per session, and a scenario may
    /// override the rest.
    pub capabilities: Capabilities,
    /// `SESSION_START.context_id`, omitted when `None` (spec §12 B12).
    pub context_id: Option<String>,
    /// Session inactivity before `REASON_USER_ABANDONED` (spec §12 C7).
    pub idle_timeout: Duration,
    /// How long an ended session still replays before it is gone (spec §12 C8).
    pub retention: Duration,
    /// Maximum events per replay batch (spec §12 C3).
    pub replay_batch_size: usize,
    /// Replay strictly `sequence > cursor`, without the leading `SESSION_START` (spec §12 C2).
    pub strict_cursor: bool,
    /// Whether a join after a client-managed or failed handoff brings the agent back (§12 E2).
    pub rejoin_after_handoff: bool,
    /// Whether `LANGUAGE_CHANGED` exists in the served revision; without it a language step
    /// sends nothing (profile 2026-05).
    pub language_changed: bool,
    /// Event types sent with `sequence: null` and not journaled (spec §12 B1).
    pub transient_types: Vec<String>,
    /// Scenario delays are divided by this (100 = a hundred times faster).
    pub time_scale: f64,
    /// When set, timestamps and ids come from a logical clock starting here (Unix ms) and
    /// advancing 1 ms per frame: same seed, same inputs, byte-identical frames.
    pub logical_clock_epoch: Option<u64>,
}

impl EngineConfig {
    /// The transient types of spec §12 B1.
    pub fn default_transient_types() -> Vec<String> {
        [
            "EVENT_TYPE_LIVE_AGENT_TYPING",
            "EVENT_TYPE_POLY_AGENT_THINKING",
            "EVENT_TYPE_HANDOFF_QUEUE_STATUS",
            "EVENT_TYPE_HEARTBEAT",
        ]
        .map(String::from)
        .to_vec()
    }

    fn is_transient(&self, event_type: &str) -> bool {
        self.transient_types.iter().any(|t| t == event_type)
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            capabilities: Capabilities {
                streaming: None,
                max_message_size_bytes: Some(131_072),
                max_reconnect_attempts: Some(5),
                heartbeat_interval_seconds: Some(30),
            },
            context_id: None,
            idle_timeout: Duration::from_secs(600),
            retention: Duration::from_secs(600),
            replay_batch_size: 50,
            strict_cursor: false,
            rejoin_after_handoff: true,
            language_changed: true,
            transient_types: Self::default_transient_types(),
            time_scale: 1.0,
            logical_clock_epoch: None,
        }
    }
}

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
        let body = match status {
            400 => catalog::INVALID_CONNECTION_PARAMETERS,
            401 => catalog::AUTHENTICATION_FAILED,
            404 => catalog::SESSION_NOT_FOUND,
            429 => catalog::CONNECTION_LIMIT_EXCEEDED,
            _ => "service unavailable",
        };
        Some(Refusal { status, body })
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
            batches = batches.iter().map(|b| alternate_shape(b)).collect();
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

    /// Walks `steps` through the phases they would cause, refusing the first that does not fit.
    fn check_fits(&self, steps: &[Step]) -> Result<(), String> {
        #[derive(PartialEq)]
        enum P {
            None,
            Agent,
            Queue,
            Live,
            Ended,
        }
        let mut phase = match &self.phase {
            _ if self.expired => return Err("the session has expired".into()),
            Phase::Ended(_) => return Err("the session has ended".into()),
            Phase::AwaitingJoin | Phase::NoAgent => P::None,
            Phase::Joining | Phase::PolyAgent => P::Agent,
            Phase::Queue => P::Queue,
            Phase::LiveAgent(_) => P::Live,
        };
        for (i, step) in steps.iter().enumerate() {
            let need = |ok: bool, why: &str| {
                if ok {
                    Ok(())
                } else {
                    Err(format!("step {i}: {why}"))
                }
            };
            if phase == P::Ended {
                return Err(format!("step {i}: the session ends before it"));
            }
            match step {
                Step::Join => {
                    need(
                        phase == P::None,
                        "the PolyAI agent is already in the conversation",
                    )?;
                    phase = P::Agent;
                }
                Step::Think | Step::Say(_) | Step::Stream(_) | Step::TriggerHandoff => {
                    need(
                        phase == P::Agent,
                        "the PolyAI agent is not in the conversation",
                    )?;
                }
                Step::AgentLeft => {
                    need(
                        phase == P::Agent,
                        "the PolyAI agent is not in the conversation",
                    )?;
                    phase = P::None;
                }
                Step::HandoffAccepted => {
                    need(phase != P::Live, "a live agent is already present")?;
                    phase = P::Queue;
                }
                Step::QueueStatus(_) => need(phase == P::Queue, "no handoff is queued")?,
                Step::LiveAgentJoined(_) => {
                    need(phase != P::Live, "a live agent is already present")?;
                    phase = P::Live;
                }
                Step::LiveAgentTyping(_) | Step::LiveAgentSays(_) => {
                    need(phase == P::Live, "no live agent is present")?;
                }
                Step::LiveAgentLeft => {
                    need(phase == P::Live, "no live agent is present")?;
                    phase = P::None;
                }
                Step::HandoffFailed | Step::HandoffTimeout => phase = P::None,
                Step::End(_) => phase = P::Ended,
                Step::Pause(_)
                | Step::ClientHandoffRequired { .. }
                | Step::LanguageChanged(_)
                | Step::Notice { .. }
                | Step::Fault(_) => {}
            }
        }
        Ok(())
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

    fn handle(&mut self, out: &mut Vec<Action>, conn: ConnId, frame: ClientFrame, now: Now) {
        let ClientFrame {
            event, metadata, ..
        } = frame;
        match event {
            ClientEvent::Heartbeat => {
                self.emit_event(out, ServerEvent::Heartbeat(Empty {}), metadata, now);
            }
            // Not echoed, not journaled (spec §12 E6).
            ClientEvent::UserTyping(_) => {}
            ClientEvent::RequestPolyAgentJoin => match self.phase {
                Phase::AwaitingJoin => self.join(out, metadata, now),
                Phase::NoAgent if self.config.rejoin_after_handoff => self.join(out, metadata, now),
                Phase::NoAgent => self.reply_error(
                    out,
                    conn,
                    catalog::ERROR_CONVERSATION_NOT_FOUND.into(),
                    metadata,
                    now,
                ),
                // Already present or joining: echo only (spec §12 E4).
                _ => self.emit_event(
                    out,
                    ServerEvent::RequestPolyAgentJoin(Empty {}),
                    metadata,
                    now,
                ),
            },
            ClientEvent::UserMessage(message) => {
                let audience = match &self.phase {
                    Phase::AwaitingJoin => {
                        // No conversation yet (spec §12 E1): no echo.
                        let text = catalog::ERROR_CONVERSATION_NOT_FOUND.into();
                        return self.reply_error(out, conn, text, metadata, now);
                    }
                    Phase::Joining | Phase::PolyAgent => Audience::PolyAgent,
                    Phase::Queue => Audience::Queue,
                    Phase::LiveAgent(_) => Audience::LiveAgent,
                    Phase::NoAgent | Phase::Ended(_) => Audience::Nobody,
                };
                if self.pending.drop_echo > 0 {
                    self.pending.drop_echo -= 1;
                    // Lost on the way: never processed, so the client's resend is the first.
                    return;
                }
                let echo = UserMessageEcho {
                    text: message.text,
                    message_id: self.ids.message_id(),
                };
                let text = echo.text.clone();
                match self.pending.delay_echo.take() {
                    Some(delay) => {
                        let at = now.elapsed + self.scaled(delay);
                        self.timeline_tail = self.timeline_tail.max(at);
                        self.insert_at(at, Scheduled::Echo(echo, metadata));
                    }
                    None => {
                        // Armed here rather than as the next delivery fault: a heartbeat's echo
                        // would take that.
                        self.delivery.omit |= std::mem::take(&mut self.pending.omit_echo);
                        self.emit_event(out, ServerEvent::UserMessage(echo), metadata, now);
                    }
                }
                self.user_messages += 1;
                let steps = self.script.on_user_message(
                    audience,
                    &text,
                    self.user_messages,
                    &mut self.memory,
                    &mut self.ids,
                );
                self.schedule(steps, now);
            }
            ClientEvent::UserEndSession => {
                self.emit_event(out, ServerEvent::UserEndSession(Empty {}), metadata, now);
                if matches!(self.phase, Phase::LiveAgent(_)) {
                    self.emit_event(out, ServerEvent::LiveAgentLeft(Empty {}), None, now);
                }
                self.end(out, SessionEndReason::UserEnd, now);
            }
        }
    }

    fn join(&mut self, out: &mut Vec<Action>, metadata: Option<Metadata>, now: Now) {
        self.emit_event(
            out,
            ServerEvent::RequestPolyAgentJoin(Empty {}),
            metadata,
            now,
        );
        self.phase = Phase::Joining;
        let steps = self.script.on_join(&mut self.memory, &mut self.ids);
        self.schedule(steps, now);
        for (delay, steps) in self.script.timed() {
            let mut at = now.elapsed + self.scaled(delay);
            for step in steps {
                match step {
                    Step::Pause(pause) => at += self.scaled(pause),
                    other => self.insert_at(at, Scheduled::Step(other)),
                }
            }
        }
    }

    /// An error caused by one connection's frame: transient, to that connection only, with the
    /// frame's metadata (spec §12 B1, B7, C5).
    fn reply_error(
        &mut self,
        out: &mut Vec<Action>,
        conn: ConnId,
        message: String,
        metadata: Option<Metadata>,
        now: Now,
    ) {
        let event = ServerEvent::SystemMessage(SystemMessage {
            level: SystemMessageLevel::Error,
            message,
        });
        self.emit(out, Recipient::Conn(conn), event, metadata, false, now);
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
            frame = with_unknown_fields(&frame);
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

    fn scaled(&self, delay: Duration) -> Duration {
        if self.config.time_scale > 0.0 && self.config.time_scale.is_finite() {
            // Saturating: a scenario pause of days at a tiny scale must not overflow.
            Duration::try_from_secs_f64(delay.as_secs_f64() / self.config.time_scale)
                .unwrap_or(Duration::from_secs(100 * 365 * 24 * 3600))
        } else {
            delay
        }
    }

    /// Inserts an item at an absolute time, after items due at the same time.
    fn insert_at(&mut self, at: Duration, item: Scheduled) {
        let index = self.timeline.partition_point(|(due, _)| *due <= at);
        self.timeline.insert(index, (at, item));
    }

    /// Appends `steps` to the timeline, after whatever is still playing. Steps due now play at
    /// the end of the current input, in the same batch of actions.
    fn schedule(&mut self, steps: Vec<Step>, now: Now) {
        let mut at = self.timeline_tail.max(now.elapsed);
        for step in steps {
            match step {
                Step::Pause(pause) => at += self.scaled(pause),
                Step::Say(reply) if self.streaming => {
                    let chunks = self
                        .script
                        .chunk_texts(&reply.text)
                        .into_iter()
                        .map(Reply::text)
                        .collect::<Vec<_>>();
                    let stream = Stream {
                        chunks: with_final_extras(chunks, reply.attachments, reply.suggestions),
                        interval: None,
                        interrupt_after: None,
                        drop_after: None,
                        second_chunk_first: false,
                    };
                    at = self.schedule_stream(stream, at);
                }
                Step::Stream(stream) if self.streaming => at = self.schedule_stream(stream, at),
                Step::Stream(stream) => {
                    let step = match stream.interrupt_after {
                        Some(_) => Step::Notice {
                            level: SystemMessageLevel::Error,
                            message: catalog::STREAMING_ERROR.into(),
                        },
                        None => Step::Say(whole_message(&stream.chunks)),
                    };
                    self.insert_at(at, Scheduled::Step(step));
                }
                other => self.insert_at(at, Scheduled::Step(other)),
            }
        }
        self.timeline_tail = at;
    }

    /// The chunks of one message (spec §7, §12 E8): one `message_id`, indexes from 1,
    /// `is_complete` only on the last; an interrupted stream ends with the streaming error.
    fn schedule_stream(&mut self, stream: Stream, mut at: Duration) -> Duration {
        let message_id = self.ids.message_id();
        let interval = self.scaled(stream.interval.unwrap_or(self.script.pacing.chunk_interval));
        let count = stream.chunks.len();
        let limit = stream.interrupt_after.unwrap_or(count);
        let mut chunks: Vec<(usize, Reply)> = stream.chunks.into_iter().enumerate().collect();
        if stream.second_chunk_first && chunks.len() >= 2 {
            chunks.swap(0, 1);
        }
        for (i, (index, chunk)) in chunks.into_iter().take(limit).enumerate() {
            if i > 0 {
                at += interval;
            }
            let chunk = PolyAgentMessageChunk {
                message_id: message_id.clone(),
                response_suggestions: chunk.suggestions(),
                text: chunk.text,
                attachments: chunk.attachments,
                chunk_index: u32::try_from(index + 1).unwrap_or(u32::MAX),
                is_complete: index + 1 == count,
            };
            self.insert_at(at, Scheduled::Chunk(chunk));
            if stream.drop_after == Some(i + 1) {
                let drop = Step::Fault(Fault::Drop);
                self.insert_at(at, Scheduled::Step(drop));
            }
        }
        if limit < count {
            at += interval;
            let notice = Step::Notice {
                level: SystemMessageLevel::Error,
                message: catalog::STREAMING_ERROR.into(),
            };
            self.insert_at(at, Scheduled::Step(notice));
        }
        at
    }

    fn run_due(&mut self, out: &mut Vec<Action>, now: Now) {
        while let Some((due, _)) = self.timeline.front() {
            if *due > now.elapsed || matches!(self.phase, Phase::Ended(_)) || self.expired {
                break;
            }
            let Some((_, item)) = self.timeline.pop_front() else {
                break;
            };
            match item {
                Scheduled::Chunk(chunk) => {
                    self.emit_event(out, ServerEvent::PolyAgentMessageChunk(chunk), None, now);
                }
                Scheduled::Echo(echo, metadata) => {
                    self.emit_event(out, ServerEvent::UserMessage(echo), metadata, now);
                }
                Scheduled::Step(step) => self.play(out, step, now),
            }
        }
    }

    fn play(&mut self, out: &mut Vec<Action>, step: Step, now: Now) {
        let event = match step {
            Step::Pause(_) | Step::Stream(_) => return,
            Step::Join => {
                self.phase = Phase::PolyAgent;
                let persona = &self.script.persona;
                ServerEvent::PolyAgentJoined(PolyAgentJoined {
                    agent_name: persona.name.clone(),
                    agent_avatar_url: persona.avatar_url.clone(),
                })
            }
            Step::Think => ServerEvent::PolyAgentThinking(Empty {}),
            Step::Say(reply) => ServerEvent::PolyAgentMessage(PolyAgentMessage {
                message_id: self.ids.message_id(),
                response_suggestions: reply.suggestions(),
                text: reply.text,
                attachments: reply.attachments,
            }),
            Step::TriggerHandoff => ServerEvent::PolyAgentTriggeredHandoff(Empty {}),
            Step::AgentLeft => {
                self.phase = Phase::NoAgent;
                ServerEvent::PolyAgentLeft(Empty {})
            }
            Step::HandoffAccepted => {
                self.phase = Phase::Queue;
                ServerEvent::HandoffAccepted(Empty {})
            }
            Step::QueueStatus(status) => ServerEvent::HandoffQueueStatus(status),
            Step::LiveAgentJoined(agent) => {
                self.phase = Phase::LiveAgent(agent.clone());
                ServerEvent::LiveAgentJoined(LiveAgentJoined { agent })
            }
            Step::LiveAgentTyping(state) => ServerEvent::LiveAgentTyping(LiveAgentTyping {
                state,
                agent_id: self.live_agent_id(),
            }),
            Step::LiveAgentSays(reply) => ServerEvent::LiveAgentMessage(LiveAgentMessage {
                message_id: self.ids.message_id(),
                agent_id: self.live_agent_id().unwrap_or_default(),
                response_suggestions: reply.suggestions(),
                text: reply.text,
                attachments: reply.attachments,
            }),
            Step::LiveAgentLeft => {
                self.phase = Phase::NoAgent;
                ServerEvent::LiveAgentLeft(Empty {})
            }
            Step::ClientHandoffRequired { reason, queue_name } => {
                ServerEvent::ClientHandoffRequired(crate::protocol::ClientHandoffRequired {
                    reason,
                    queue_name,
                })
            }
            Step::HandoffFailed => {
                self.phase = Phase::NoAgent;
                ServerEvent::HandoffFailed(Empty {})
            }
            Step::HandoffTimeout => {
                self.phase = Phase::NoAgent;
                ServerEvent::HandoffTimeout(Empty {})
            }
            // The 2026-05 revision has no such event: the step sends nothing.
            Step::LanguageChanged(_) if !self.config.language_changed => return,
            Step::LanguageChanged(language_code) => {
                ServerEvent::LanguageChanged(crate::protocol::LanguageChanged { language_code })
            }
            Step::Notice { level, message } => {
                let event = ServerEvent::SystemMessage(SystemMessage { level, message });
                // Agent, session and handoff notices are history (spec §12 B1).
                return self.emit(out, Recipient::All, event, None, true, now);
            }
            Step::End(reason) => return self.end(out, reason, now),
            Step::Fault(fault) => return self.fault(out, fault, now),
        };
        self.emit_event(out, event, None, now);
    }

    fn fault(&mut self, out: &mut Vec<Action>, fault: Fault, now: Now) {
        out.push(Action::Note(Note::Fault(format!("{fault:?}"))));
        match fault {
            Fault::Drop => out.push(Action::Drop { to: Recipient::All }),
            Fault::Close(code) => out.push(Action::Close {
                to: Recipient::All,
                code,
                reason: "scenario fault",
            }),
            Fault::DuplicateNext => self.delivery.duplicate = true,
            Fault::SwapNext => self.delivery.swap = true,
            Fault::OmitNext => self.delivery.omit = true,
            Fault::UnknownFieldsNext => self.delivery.unknown_fields = true,
            Fault::NullSequenceNext => self.delivery.null_sequence = true,
            Fault::Resend(sequence) => {
                if let Some(frame) = self.history.get(Sequence(sequence)) {
                    let frame = frame.to_owned();
                    out.push(Action::Send {
                        to: Recipient::All,
                        frame,
                    });
                }
            }
            Fault::ResendHistory => {
                let request = ReplayRequest {
                    cursor: 0,
                    strict_cursor: true,
                    batch_size: self.config.replay_batch_size,
                    max_frame_bytes: self.max_frame_bytes(),
                    reversed: false,
                };
                let stamp = self.stamp(now);
                for frame in self.history.replay_batches(&request, &mut self.ids, stamp) {
                    out.push(Action::Send {
                        to: Recipient::All,
                        frame,
                    });
                }
            }
            Fault::SplitNextReplay(n) => self.pending.split_replay = Some(n),
            Fault::DropNextReplayAfter(n) => self.pending.drop_replay_after = Some(n),
            Fault::ReverseNextReplay => self.pending.reverse_replay = true,
            Fault::AlternateShapeNextReplay => self.pending.alternate_shape = true,
            Fault::DelayNextEcho(delay) => self.pending.delay_echo = Some(delay),
            Fault::OmitNextEcho => self.pending.omit_echo = true,
            Fault::DropEchoes(n) => {
                self.pending.drop_echo = self.pending.drop_echo.saturating_add(n)
            }
            Fault::ResendPrevious(back) => {
                let newest = self.history.last_sequence().map_or(0, |s| s.0);
                let wanted = newest.checked_sub(back - 1).filter(|s| *s > 0);
                if let Some(frame) = wanted.and_then(|s| self.history.get(Sequence(s))) {
                    let frame = frame.to_owned();
                    out.push(Action::Send {
                        to: Recipient::All,
                        frame,
                    });
                }
            }
            Fault::RefuseHandshakes { count, status } => {
                self.pending.refuse = Some((count, status));
            }
            Fault::ExpireToken => self.pending.token_expired = true,
            Fault::ExpireSession => {
                out.push(Action::Close {
                    to: Recipient::All,
                    code: CLOSE_SESSION_UNKNOWN,
                    reason: "session not found",
                });
                self.expired = true;
                self.timeline.clear();
            }
            Fault::UnknownEvent(event_type) => {
                let event = ServerEvent::Unknown(UnknownEvent {
                    event_type,
                    payload: serde_json::json!({ "note": "an event type the docs do not list" }),
                });
                self.emit(out, Recipient::All, event, None, true, now);
            }
        }
    }

    fn live_agent_id(&self) -> Option<String> {
        match &self.phase {
            Phase::LiveAgent(agent) => Some(agent.id.clone()),
            _ => None,
        }
    }
}

/// All chunks as one message, for sessions that do not stream.
fn whole_message(chunks: &[Reply]) -> Reply {
    Reply {
        text: chunks.iter().map(|c| c.text.as_str()).collect(),
        attachments: chunks.iter().flat_map(|c| c.attachments.clone()).collect(),
        suggestions: chunks.iter().flat_map(|c| c.suggestions.clone()).collect(),
    }
}

/// Puts a reply's attachments and suggestions on its last chunk (spec §12 E8).
fn with_final_extras(
    mut chunks: Vec<Reply>,
    attachments: Vec<crate::protocol::Attachment>,
    suggestions: Vec<String>,
) -> Vec<Reply> {
    if let Some(last) = chunks.last_mut() {
        last.attachments = attachments;
        last.suggestions = suggestions;
    }
    chunks
}

/// Adds fields the docs do not define, to the envelope and the payload (spec §11 ERR-2).
fn with_unknown_fields(frame: &str) -> String {
    let Ok(Value::Object(mut envelope)) = serde_json::from_str::<Value>(frame) else {
        return frame.to_owned();
    };
    envelope.insert("mock_unknown_envelope_field".into(), Value::Bool(true));
    if let Some(Value::Object(payload)) = envelope.get_mut("payload") {
        payload.insert(
            "mock_unknown_field".into(),
            serde_json::json!({ "nested": [1, 2, 3] }),
        );
    }
    Value::Object(envelope).to_string()
}

/// Rewrites a batch so each element carries its payload under the alternate key of spec
/// Appendix A (`"poly_agent_message": {...}` instead of `"payload"`).
fn alternate_shape(batch: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(batch) else {
        return batch.to_owned();
    };
    if let Some(Value::Array(events)) = value.pointer_mut("/payload/events") {
        for event in events {
            let Value::Object(map) = event else { continue };
            let key = map
                .get("type")
                .and_then(Value::as_str)
                .map(crate::protocol::server::alternate_payload_key);
            if let (Some(key), Some(payload)) = (key, map.remove("payload")) {
                map.insert(key, payload);
            }
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests;
