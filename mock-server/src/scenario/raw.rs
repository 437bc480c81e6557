//! Stage one: the scenario file as written (serde + schemars). Nothing here is checked beyond
//! JSON shape; [`super::validate`] turns it into a [`super::Script`] or says what is wrong where.
//!
//! `schemas/scenario.schema.json` is generated from these types, so editors complete and check
//! scenario files.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::protocol::{
    Attachment, ClientHandoffReason, LiveAgent, SessionEndReason, SystemMessageLevel, TypingState,
};

/// A scenario: persona, capabilities, pacing, greeting and rules; plus an optional scripted
/// client (`exercise`) that demonstrates it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Editors use this to find the schema.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// What the scenario reproduces, in a sentence or two.
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<RawPersona>,
    /// Overrides of the advertised `SESSION_START.capabilities`.
    #[serde(default)]
    pub capabilities: RawCapabilities,
    #[serde(default)]
    pub pacing: RawPacing,
    /// Seed for ids and random choices; `--seed` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The greeting after the join, when no `join` rule is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<RawReply>,
    /// Tried in order; the first whose trigger matches fires.
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// What a user message no rule matched gets.
    #[serde(default)]
    pub fallback: RawFallback,
    /// A scripted client that demonstrates the scenario (the tests run it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exercise: Option<Exercise>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPersona {
    pub name: String,
    pub avatar_url: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCapabilities {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_reconnect_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_seconds: Option<u32>,
}

/// Timing used where steps give none. All scale with `--time-scale`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RawPacing {
    /// Thinking time before default replies and the greeting.
    pub think_ms: u64,
    /// Between streamed chunks.
    pub chunk_interval_ms: u64,
    /// Words per chunk when a reply is streamed without explicit chunks.
    pub words_per_chunk: usize,
    /// Live-agent typing time before default live replies.
    pub live_typing_ms: u64,
}

impl Default for RawPacing {
    fn default() -> Self {
        Self {
            think_ms: 5,
            chunk_interval_ms: 2,
            words_per_chunk: 3,
            live_typing_ms: 5,
        }
    }
}

/// Fallback replies. Absent: the agent thinks and answers `You said: <text>`; a live agent
/// types and answers `(live) You said: <text>`. An empty list means silence.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Vec<RawStep>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_agent: Option<Vec<RawStep>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub when: RawTrigger,
    pub steps: Vec<RawStep>,
    /// Fire at most once per session.
    #[serde(default)]
    pub once: bool,
    /// Fire with this probability, drawn from the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawTrigger {
    /// The join request (`REQUEST_POLY_AGENT_JOIN`) of a new session, or a rejoin.
    Join,
    /// A user message. Give at most one of `equals`, `contains`, `regex`; none matches any.
    Message(RawMessageMatch),
    /// The n-th user message of the session (1-based).
    NthMessage(u32),
    /// This many milliseconds after the join.
    AfterMs(u64),
    /// A connection opens after the session's first.
    Reconnect,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMessageMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    /// A Rust `regex`; captures fill `$1`…`$9` in the steps (`$0` is the whole text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Only when the message reaches this audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<RawAudience>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawAudience {
    Agent,
    Queue,
    LiveAgent,
    Nobody,
}

/// A message's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReply {
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Response suggestions (`message_text` values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<String>,
}

/// A streamed message: `text` split by words, or explicit `chunks`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStream {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Vec<RawReply>>,
    /// With `text`: words per chunk (the pacing's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words_per_chunk: Option<usize>,
    /// With `text`: split into this many chunks of about equal length instead of by words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pieces: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_interval_ms: Option<u64>,
    /// End with an extra empty-text chunk (spec §7: the final chunk may be empty).
    #[serde(default)]
    pub empty_final_chunk: bool,
    /// Added to the final chunk: attachments known only at the end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Added to the final chunk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<String>,
    /// Break after this many chunks: the streaming error follows, no complete chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt_after: Option<usize>,
    /// Drop every socket right after this many chunks; the stream goes on into the history,
    /// so a reconnect replays the chunks sent meanwhile (spec §12 E8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_after: Option<usize>,
    /// Send (and journal) chunk 2 before chunk 1: their sequences then run against their
    /// `chunk_index`, which is the order to apply them in (spec §7).
    #[serde(default)]
    pub second_chunk_first: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawQueueStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<String>,
    /// With `repeat`, the first update's position; later ones count down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_in_queue: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<u32>,
    /// How many updates (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// Between updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClientHandoff {
    pub reason: ClientHandoffReason,
    pub queue_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSystemMessage {
    pub level: SystemMessageLevel,
    pub message: String,
}

/// The catalogued error messages of spec §10.7–10.8, sent as `SYSTEM_MESSAGE` level ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    HighLoad,
    UnableToStart,
    TroubleResponding,
    StreamingError,
    SessionNotFound,
    UnableToRetrieveSession,
    ConnectorNotFound,
    ConversationNotFound,
    ConversationIdNotFound,
    HandoffCouldNotConnect,
    FailedToForward,
    HandoffCouldNotBeInitiated,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRefusal {
    pub count: u32,
    /// HTTP status of the refused handshakes (400–599).
    pub status: u16,
}

/// Faults the real service shows on a bad day.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawFault {
    /// Drop every socket without a close frame (clients see 1006).
    Drop,
    /// Close every socket with this code.
    Close(u16),
    /// Send the next event twice.
    DuplicateNext,
    /// Send the journaled event with this sequence again.
    Resend(u64),
    /// Deliver the next two events in swapped order.
    SwapNext,
    /// Journal the next event without delivering it live (only a replay shows it).
    OmitNext,
    /// Split the next replay into batches of this many events.
    SplitNextReplay(usize),
    /// Drop the socket of the next replay after this many batches (a drop during replay).
    DropNextReplayAfter(usize),
    /// Send the next replay's events (after `SESSION_START`) in reverse order.
    ReverseNextReplay,
    /// Send the whole history again as a live batch.
    ResendHistory,
    /// Hold the next user-message echo this many milliseconds.
    DelayNextEchoMs(u64),
    /// Lose the next user message: no echo, no processing.
    DropNextEcho,
    /// Process the next user message but send its echo only into the history: the client gets
    /// the agent's answer, and the echo only in a replay.
    OmitNextEcho,
    /// Lose the next this many user messages (resends included).
    DropEchoes(u32),
    /// Send the journaled event this many back again (1 = the newest).
    ResendPrevious(u64),
    /// Refuse this session's next handshakes.
    RefuseHandshakes(RawRefusal),
    /// Forget the session: sockets closed with 4001, handshakes get 404.
    ExpireSession,
    /// Invalidate the session's token: handshakes get 401.
    ExpireToken,
    /// Emit an event of a type the docs do not list.
    UnknownEvent,
    /// Emit an event of this undocumented type (`EVENT_TYPE_…`); journaled, so a replay
    /// carries it too (with `omit_next` before it, only a replay does).
    UnknownEventType(String),
    /// Add unknown fields to the next event.
    UnknownFieldsNext,
    /// The next replay uses the alternate payload key of spec Appendix A.
    AlternateShapeNextReplay,
    /// Send the next event with `sequence: null`.
    NullSequenceNext,
}

/// One step. Strings in replies, messages and languages may use `$0` (the user's text) and
/// `$1`…`$9` (regex captures).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawStep {
    PauseMs(u64),
    /// `POLY_AGENT_THINKING`, then a pause of this many milliseconds.
    ThinkMs(u64),
    /// `POLY_AGENT_THINKING` with no pause.
    Think,
    /// `POLY_AGENT_JOINED` with the persona.
    Join,
    /// An agent message; chunked by the pacing when the session streams.
    Reply(RawReply),
    /// An agent message with explicit streaming; one whole message when the session does not
    /// stream.
    Stream(RawStream),
    TriggerHandoff,
    AgentLeft,
    HandoffAccepted,
    QueueStatus(RawQueueStatus),
    LiveAgentJoin(LiveAgent),
    LiveAgentTyping(TypingState),
    LiveAgentMessage(RawReply),
    LiveAgentLeft,
    ClientHandoff(RawClientHandoff),
    HandoffFailed,
    HandoffTimeout,
    /// `LANGUAGE_CHANGED` to this BCP-47 code.
    Language(String),
    /// A catalogued error message (level ERROR).
    Error(ErrorKind),
    /// Any `SYSTEM_MESSAGE`.
    SystemMessage(RawSystemMessage),
    /// `SESSION_END` with this reason (any string: unknown ones test tolerance).
    End(#[schemars(with = "String")] SessionEndReason),
    Fault(RawFault),
}

/// The scripted client of `exercise`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exercise {
    /// `streaming_enabled` of the session it creates.
    #[serde(default)]
    pub streaming: bool,
    pub steps: Vec<ExerciseStep>,
    /// Free-form notes for readers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExerciseStep {
    /// Open a socket; `cursor` is sent as given, or `last` for the highest sequence seen.
    Connect {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    /// A handshake that must be refused with this status.
    ConnectRefused(u16),
    /// Send `REQUEST_POLY_AGENT_JOIN`.
    Join,
    /// Send a `USER_MESSAGE` with this text.
    Say(String),
    /// Send a heartbeat.
    Heartbeat,
    /// Send `USER_END_SESSION`.
    EndSession,
    /// Send this text frame as is.
    SendRaw(String),
    /// Read until an event of this type arrives.
    Expect(String),
    /// Read until the agent's reply is complete: a `POLY_AGENT_MESSAGE`, a final chunk (also
    /// inside a replay batch), or a `SYSTEM_MESSAGE`.
    ExpectReply,
    /// Read until the socket closes with this code (1006: dropped).
    ExpectClose(u16),
    /// Wait this many milliseconds.
    WaitMs(u64),
}
