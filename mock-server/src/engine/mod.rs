//! The session state machine, without I/O: `(state, input, now) -> actions`.
//!
//! A [`Session`] owns one conversation: its journal, its phase (who is present), and a timeline
//! of agent steps still to play. The shell (`ws`, `state`) feeds it decoded client frames,
//! connects and clock ticks, then carries out the returned [`Action`]s. Time is always passed
//! in as [`Now`], so tests drive it with a fake clock and no sockets.
//!
//! - [`agent`]: the script vocabulary ([`Step`]) and the default agent.
//! - [`journal`]: the history, replay batching and cursor parsing.
//! - [`ids`]: seeded id minting.

pub mod agent;
pub mod ids;
pub mod journal;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::protocol::{
    Capabilities, ClientEvent, ClientFrame, ClientFrameRejection, Empty, LiveAgent,
    LiveAgentJoined, LiveAgentMessage, LiveAgentTyping, Metadata, PolyAgentJoined,
    PolyAgentMessage, PolyAgentMessageChunk, ServerEnvelope, ServerEvent, SessionEnd,
    SessionEndReason, SessionStart, SystemMessage, SystemMessageLevel, Timestamp, UserMessageEcho,
    catalog, encode_server_frame,
};

use agent::{AgentScript, Audience, Reply, Step};
use ids::IdGen;
use journal::{Journal, ReplayRequest};

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
}

/// Close code after `SESSION_END` (spec §12 D1).
pub const CLOSE_SESSION_ENDED: u16 = 1000;

/// Server-wide settings the engine consults (spec §12, the configurable parts).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Advertised in `SESSION_START`; `streaming` is filled per session.
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
    /// Event types sent with `sequence: null` and not journaled (spec §12 B1).
    pub transient_types: Vec<String>,
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
            transient_types: Self::default_transient_types(),
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

/// An item of the timeline: a script step, or a streamed chunk already cut.
#[derive(Debug, Clone)]
enum Scheduled {
    Step(Step),
    Chunk(PolyAgentMessageChunk),
}

/// One conversation.
#[derive(Debug)]
pub struct Session {
    config: Arc<EngineConfig>,
    agent: Arc<dyn AgentScript>,
    streaming: bool,
    ids: IdGen,
    journal: Journal,
    phase: Phase,
    user_messages: u32,
    timeline: VecDeque<(Duration, Scheduled)>,
    timeline_tail: Duration,
    last_activity: Duration,
    ended_at: Option<Duration>,
    expired: bool,
}

impl Session {
    /// A new session; journals `SESSION_START` as sequence 1.
    pub fn new(
        config: Arc<EngineConfig>,
        agent: Arc<dyn AgentScript>,
        streaming: bool,
        seed: u64,
        now: Now,
    ) -> Self {
        let mut session = Self {
            config,
            agent,
            streaming,
            ids: IdGen::from_seed(seed),
            journal: Journal::default(),
            phase: Phase::AwaitingJoin,
            user_messages: 0,
            timeline: VecDeque::new(),
            timeline_tail: now.elapsed,
            last_activity: now.elapsed,
            ended_at: None,
            expired: false,
        };
        let start = ServerEvent::SessionStart(SessionStart {
            capabilities: Capabilities {
                streaming: Some(streaming),
                ..session.config.capabilities.clone()
            },
            context_id: session.config.context_id.clone(),
        });
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

    pub fn journal(&self) -> &Journal {
        &self.journal
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

    /// A connection opened with `cursor`: its replay, and a close if the session has ended
    /// (spec §12 C8). The caller registers the connection for later events.
    pub fn connect(&mut self, conn: ConnId, cursor: u64, now: Now) -> Vec<Action> {
        let request = ReplayRequest {
            cursor,
            strict_cursor: self.config.strict_cursor,
            batch_size: self.config.replay_batch_size,
            max_frame_bytes: self.max_frame_bytes(),
        };
        let mut out: Vec<Action> = self
            .journal
            .replay_batches(&request, &mut self.ids, now.unix_millis)
            .into_iter()
            .map(|frame| Action::Send {
                to: Recipient::Conn(conn),
                frame,
            })
            .collect();
        if matches!(self.phase, Phase::Ended(_)) {
            out.push(Action::Close {
                to: Recipient::Conn(conn),
                code: CLOSE_SESSION_ENDED,
                reason: "session ended",
            });
        }
        out
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
        if matches!(self.phase, Phase::Ended(_)) {
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

    /// The clock moved: play due steps, end idle sessions, forget ended ones after retention.
    pub fn tick(&mut self, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        self.run_due(&mut out, now);
        match self.ended_at {
            Some(ended_at) => {
                if now.elapsed >= ended_at + self.config.retention {
                    self.expired = true;
                }
            }
            None => {
                if now.elapsed >= self.last_activity + self.config.idle_timeout {
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
                    Phase::Joining | Phase::PolyAgent => Some(Audience::PolyAgent),
                    Phase::Queue => Some(Audience::Queue),
                    Phase::LiveAgent(_) => Some(Audience::LiveAgent),
                    Phase::NoAgent | Phase::Ended(_) => None,
                };
                let echo = UserMessageEcho {
                    text: message.text,
                    message_id: self.ids.message_id(),
                };
                let text = echo.text.clone();
                self.emit_event(out, ServerEvent::UserMessage(echo), metadata, now);
                self.user_messages += 1;
                if let Some(audience) = audience {
                    let steps = self
                        .agent
                        .on_user_message(audience, &text, self.user_messages);
                    self.schedule(steps, now);
                }
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
        let steps = self.agent.on_join();
        self.schedule(steps, now);
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

    fn emit(
        &mut self,
        out: &mut Vec<Action>,
        to: Recipient,
        event: ServerEvent,
        metadata: Option<Metadata>,
        journaled: bool,
        now: Now,
    ) {
        let sequence = journaled.then(|| self.journal.next_sequence());
        let envelope = ServerEnvelope {
            id: self.ids.event_id(now.unix_millis),
            sequence,
            timestamp: Timestamp::from_unix_millis(now.unix_millis),
            event,
            metadata,
        };
        let frame = encode_server_frame(&envelope);
        if let Some(sequence) = sequence {
            self.journal.push(sequence, &frame);
        }
        out.push(Action::Send { to, frame });
    }

    fn end(&mut self, out: &mut Vec<Action>, reason: SessionEndReason, now: Now) {
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

    /// Appends `steps` to the timeline, after whatever is still playing. Steps due now play at
    /// the end of the current input, in the same batch of actions.
    fn schedule(&mut self, steps: Vec<Step>, now: Now) {
        let mut at = self.timeline_tail.max(now.elapsed);
        for step in steps {
            match step {
                Step::Pause(pause) => at += pause,
                Step::Say(reply) if self.streaming => {
                    for chunk in self.cut_chunks(reply, usize::MAX) {
                        let last = chunk.is_complete;
                        self.timeline.push_back((at, Scheduled::Chunk(chunk)));
                        if !last {
                            at += self.agent.chunk_interval();
                        }
                    }
                }
                Step::InterruptedStream {
                    reply,
                    chunks_before,
                } => {
                    if self.streaming {
                        for chunk in self.cut_chunks(reply, chunks_before) {
                            self.timeline.push_back((at, Scheduled::Chunk(chunk)));
                            at += self.agent.chunk_interval();
                        }
                    }
                    let notice = Step::Notice {
                        level: SystemMessageLevel::Error,
                        message: catalog::STREAMING_ERROR.into(),
                    };
                    self.timeline.push_back((at, Scheduled::Step(notice)));
                }
                other => self.timeline.push_back((at, Scheduled::Step(other))),
            }
        }
        self.timeline_tail = at;
    }

    /// The chunks of `reply` (spec §7, §12 E8): one `message_id`, indexes from 1, attachments
    /// and suggestions on the final chunk, `is_complete` only there. With `limit` below the
    /// chunk count, the first `limit` chunks, none complete (an interrupted stream).
    fn cut_chunks(&mut self, reply: Reply, limit: usize) -> Vec<PolyAgentMessageChunk> {
        let message_id = self.ids.message_id();
        let texts = self.agent.chunk_texts(&reply.text);
        let count = texts.len();
        let suggestions = reply.suggestions();
        let mut attachments = Some(reply.attachments);
        let mut suggestions = Some(suggestions);
        texts
            .into_iter()
            .take(limit)
            .enumerate()
            .map(|(i, text)| {
                let last = i + 1 == count && limit >= count;
                PolyAgentMessageChunk {
                    message_id: message_id.clone(),
                    text,
                    attachments: if last {
                        attachments.take().unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                    response_suggestions: if last {
                        suggestions.take().unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                    chunk_index: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    is_complete: last,
                }
            })
            .collect()
    }

    fn run_due(&mut self, out: &mut Vec<Action>, now: Now) {
        while let Some((due, _)) = self.timeline.front() {
            if *due > now.elapsed || matches!(self.phase, Phase::Ended(_)) {
                break;
            }
            let Some((_, item)) = self.timeline.pop_front() else {
                break;
            };
            match item {
                Scheduled::Chunk(chunk) => {
                    self.emit_event(out, ServerEvent::PolyAgentMessageChunk(chunk), None, now);
                }
                Scheduled::Step(step) => self.play(out, step, now),
            }
        }
    }

    fn play(&mut self, out: &mut Vec<Action>, step: Step, now: Now) {
        let event = match step {
            Step::Pause(_) | Step::InterruptedStream { .. } => return,
            Step::Join => {
                self.phase = Phase::PolyAgent;
                let persona = self.agent.persona();
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
            Step::LanguageChanged(language_code) => {
                ServerEvent::LanguageChanged(crate::protocol::LanguageChanged { language_code })
            }
            Step::Notice { level, message } => {
                let event = ServerEvent::SystemMessage(SystemMessage { level, message });
                // Agent, session and handoff notices are history (spec §12 B1).
                return self.emit(out, Recipient::All, event, None, true, now);
            }
            Step::End(reason) => return self.end(out, reason, now),
        };
        self.emit_event(out, event, None, now);
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
