//! What the reference client knows: every server event it has seen (deduplicated by `id`,
//! ordered by `sequence`), the user's unechoed messages, and the view folded from them.

use std::collections::{HashMap, HashSet};

use mock_server::protocol::{
    Metadata, PolyAgentMessageChunk, ServerEnvelope, ServerEvent, TypingState, encode_server_frame,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Defect;
use crate::contract::{
    Author, HandoffState, MessageStatus, View, ViewAgent, ViewClientHandoff, ViewEnded,
    ViewLiveAgent, ViewMessage, ViewQueue, ViewSystemMessage, ViewTyping,
};

/// The metadata key carrying the client's id for a sent message (spec §4.4).
pub const CLIENT_EVENT_ID: &str = "client_event_id";

/// Where an event sorts: journaled events by sequence; transient ones (`sequence: null`) after
/// the last journaled event seen when they arrived, in arrival order.
type OrderKey = (u64, u64);

/// A user message sent but not yet echoed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub client_event_id: String,
    pub text: String,
    pub frame: String,
    /// Resends so far.
    pub resends: u32,
    /// Went out on some connection (a message still queued has not).
    pub sent: bool,
    pub failed: bool,
}

#[derive(Debug, Default)]
pub struct Conversation {
    defects: super::Defects,
    seen: HashSet<String>,
    log: Vec<(OrderKey, ServerEnvelope)>,
    /// Arrival number of each event id (the order the wire gave).
    arrival_of: HashMap<String, u64>,
    last_sequence: u64,
    arrivals: u64,
    pub pending: Vec<Pending>,
    /// The join was sent in this session (it survives a restart with the rest).
    pub join_sent: bool,
    /// Every user message frame this instance sent (for a defect that sends them all again).
    pub sent_frames: Vec<String>,
}

fn client_event_id(metadata: Option<&Metadata>) -> Option<String> {
    metadata
        .and_then(|m| m.custom_str(CLIENT_EVENT_ID))
        .map(str::to_owned)
}

impl Conversation {
    pub fn with_defects(defects: super::Defects) -> Self {
        Self {
            defects,
            ..Self::default()
        }
    }

    /// The highest sequence seen: the reconnect cursor (spec §3.6).
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    /// Every event, in order, as the wire had it: what a restart keeps.
    pub fn events(&self) -> Vec<String> {
        self.log
            .iter()
            .map(|(_, envelope)| encode_server_frame(envelope))
            .collect()
    }

    /// Takes in one frame; batches are flattened (spec §11 MSG-1). Returns whether anything new
    /// arrived.
    pub fn ingest(&mut self, envelope: ServerEnvelope) -> bool {
        if let ServerEvent::EventBatch(batch) = envelope.event {
            let unknown = batch
                .events
                .iter()
                .any(|e| matches!(e.event, ServerEvent::Unknown(_)));
            if unknown && self.defects.has(Defect::DropBatchWithUnknown) {
                return false;
            }
            if self.defects.has(Defect::NoBatchFlattening) {
                // Only what a flattening client needs to get going: the capabilities.
                let start = batch
                    .events
                    .into_iter()
                    .find(|e| matches!(e.event, ServerEvent::SessionStart(_)));
                return start.is_some_and(|e| self.ingest_one(e));
            }
            let mut any = false;
            for event in batch.events {
                any |= self.ingest_one(event);
            }
            return any;
        }
        self.ingest_one(envelope)
    }

    fn ingest_one(&mut self, envelope: ServerEnvelope) -> bool {
        // Deduplicate by id (spec §11 MSG-2).
        if !self.seen.insert(envelope.id.0.clone()) && !self.defects.has(Defect::NoDedup) {
            return false;
        }
        if let ServerEvent::UserMessage(_) = &envelope.event
            && let Some(id) = client_event_id(envelope.metadata.as_ref())
        {
            self.pending.retain(|p| p.client_event_id != id);
        }
        self.arrivals += 1;
        self.arrival_of.insert(envelope.id.0.clone(), self.arrivals);
        let key = match envelope.sequence {
            Some(sequence) => {
                self.last_sequence = self.last_sequence.max(sequence.0);
                (sequence.0, 0)
            }
            None => (self.last_sequence, self.arrivals),
        };
        // Order by sequence (spec §11 MSG-3): insert in place.
        let at = if self.defects.has(Defect::ArrivalOrder) {
            self.log.len()
        } else {
            self.log.partition_point(|(k, _)| *k <= key)
        };
        self.log.insert(at, (key, envelope));
        true
    }

    pub fn has(&self, wanted: impl Fn(&ServerEvent) -> bool) -> bool {
        self.log.iter().any(|(_, e)| wanted(&e.event))
    }

    /// The agent joined, or the join went out: either way no second join (WS-3/4).
    pub fn agent_joined_or_asked(&self) -> bool {
        self.join_sent || self.has(|e| matches!(e, ServerEvent::PolyAgentJoined(_)))
    }

    pub fn ended(&self) -> bool {
        self.has(|e| matches!(e, ServerEvent::SessionEnd(_)))
    }

    pub fn session_start(&self) -> Option<&mock_server::protocol::Capabilities> {
        self.log.iter().find_map(|(_, e)| match &e.event {
            ServerEvent::SessionStart(start) => Some(&start.capabilities),
            _ => None,
        })
    }

    /// What the app shows, folded from the ordered events.
    pub fn view(&self) -> View {
        let mut fold = Fold::new(self.defects, &self.arrival_of);
        for (_, envelope) in &self.log {
            if !fold.message(envelope) {
                fold.state(envelope);
            }
        }
        fold.streams();
        fold.pending(&self.pending);
        fold.finish()
    }
}

/// The view being folded from the ordered events: the messages, the streams' chunks, and the
/// state the screen shows around them.
struct Fold<'a> {
    defects: super::Defects,
    arrival_of: &'a HashMap<String, u64>,
    messages: Vec<ViewMessage>,
    /// Chunks per streamed message id, with their arrival numbers.
    chunks: HashMap<String, Vec<(u64, PolyAgentMessageChunk)>>,
    /// Client ids of user messages already shown (a resent message echoed twice shows once).
    echoed: HashSet<String>,
    typing: ViewTyping,
    view: View,
    /// The language shown, and (with the arrival-order defect) the arrival it came with.
    latest_language: (u64, Option<String>),
    system: Vec<ViewSystemMessage>,
}

impl<'a> Fold<'a> {
    fn new(defects: super::Defects, arrival_of: &'a HashMap<String, u64>) -> Self {
        Self {
            defects,
            arrival_of,
            messages: Vec::new(),
            chunks: HashMap::new(),
            echoed: HashSet::new(),
            typing: ViewTyping::default(),
            view: View {
                agent: Some(None),
                live_agent: Some(None),
                handoff: Some(HandoffState::None),
                queue: Some(None),
                client_handoff: Some(None),
                language: Some(None),
                ended: Some(None),
                ..View::default()
            },
            latest_language: (0, None),
            system: Vec::new(),
        }
    }

    fn arrival(&self, envelope: &ServerEnvelope) -> Option<u64> {
        self.arrival_of.get(envelope.id.as_str()).copied()
    }

    /// A whole message as the view shows it.
    fn reply(
        &self,
        id: &str,
        from: Author,
        text: &str,
        (attachments, suggestions): (Vec<Value>, Vec<String>),
    ) -> ViewMessage {
        ViewMessage {
            message_id: Some(id.to_owned()),
            from,
            text: text.to_owned(),
            attachments,
            suggestions: if self.defects.has(Defect::NoSuggestions) {
                Vec::new()
            } else {
                suggestions
            },
            complete: true,
            status: None,
        }
    }

    /// The agent stops "typing" (unless the defect keeps it typing for ever).
    fn agent_answered(&mut self) {
        if !self.defects.has(Defect::TypingForever) {
            self.typing.agent = false;
        }
    }

    /// Folds an event that adds a message; `false` when `envelope` is not one.
    fn message(&mut self, envelope: &ServerEnvelope) -> bool {
        let defects = self.defects;
        match &envelope.event {
            ServerEvent::UserMessage(echo) => {
                if let Some(id) = client_event_id(envelope.metadata.as_ref())
                    && !self.echoed.insert(id)
                {
                    return true;
                }
                let text = &echo.text;
                let mut message = self.reply(echo.message_id.as_str(), Author::User, text, none());
                message.status = Some(MessageStatus::Sent);
                self.messages.push(message);
            }
            ServerEvent::PolyAgentMessage(m) => {
                self.agent_answered();
                let extras = extras(&m.attachments, &m.response_suggestions);
                let message = self.reply(m.message_id.as_str(), Author::Agent, &m.text, extras);
                self.messages.push(message);
            }
            ServerEvent::PolyAgentMessageChunk(chunk) => {
                self.agent_answered();
                let id = chunk.message_id.as_str();
                if !self.chunks.contains_key(id) {
                    let message = self.reply(id, Author::Agent, "", none());
                    self.messages.push(message);
                }
                let arrival = self.arrival(envelope).unwrap_or(0);
                let parts = self.chunks.entry(id.to_owned()).or_default();
                parts.push((arrival, chunk.clone()));
            }
            ServerEvent::LiveAgentMessage(m) => {
                self.typing.live_agent = false;
                let from = if defects.has(Defect::LiveAgentAsAgent) {
                    Author::Agent
                } else {
                    Author::LiveAgent
                };
                let extras = extras(&m.attachments, &m.response_suggestions);
                let message = self.reply(m.message_id.as_str(), from, &m.text, extras);
                self.messages.push(message);
            }
            ServerEvent::SystemMessage(m)
                if defects.has(Defect::ErrorAsAgentMessage)
                    && m.level == mock_server::protocol::SystemMessageLevel::Error =>
            {
                self.agent_answered();
                let message = self.reply(envelope.id.as_str(), Author::Agent, &m.message, none());
                self.messages.push(message);
            }
            _ => return false,
        }
        true
    }

    /// Folds an event that changes what surrounds the messages: typing, who is there, the
    /// handoff, the queue, the language, system messages, the end.
    fn state(&mut self, envelope: &ServerEnvelope) {
        if self.presence(envelope) || self.handoff(envelope) {
            return;
        }
        let defects = self.defects;
        match &envelope.event {
            ServerEvent::LanguageChanged(l) => {
                // The latest by order; with the defect, the latest to arrive.
                if defects.has(Defect::LanguageByArrival) {
                    let arrival = self.arrival(envelope).unwrap_or(0);
                    if arrival >= self.latest_language.0 {
                        self.latest_language = (arrival, Some(l.language_code.clone()));
                    }
                } else {
                    self.latest_language.1 = Some(l.language_code.clone());
                }
            }
            ServerEvent::SystemMessage(m) => {
                self.system.push(ViewSystemMessage {
                    level: m.level.as_str().to_owned(),
                    message: m.message.clone(),
                });
                self.agent_answered();
            }
            ServerEvent::SessionEnd(end) => {
                let reason = if defects.has(Defect::GenericEndReason) {
                    "REASON_NATURAL_END".to_owned()
                } else {
                    end.reason.as_str().to_owned()
                };
                self.view.ended = Some(Some(ViewEnded { reason }));
                self.typing = ViewTyping::default();
            }
            // Echoes of our own control frames, history markers, and types this client does
            // not know (spec §11 ERR-2) change nothing on screen.
            _ => {}
        }
    }

    /// Folds an event about who is there and who is typing; `false` when `envelope` is not one.
    fn presence(&mut self, envelope: &ServerEnvelope) -> bool {
        let view = &mut self.view;
        match &envelope.event {
            ServerEvent::PolyAgentThinking(_) => {
                self.typing.agent = !self.defects.has(Defect::NoTypingIndicator);
            }
            ServerEvent::LiveAgentTyping(t) => {
                self.typing.live_agent = t.state == TypingState::Started;
            }
            ServerEvent::PolyAgentJoined(j) => {
                view.agent = Some(Some(ViewAgent {
                    name: j.agent_name.clone(),
                    avatar_url: j.agent_avatar_url.clone(),
                }));
            }
            ServerEvent::PolyAgentLeft(_) => self.agent_answered(),
            ServerEvent::LiveAgentJoined(j) => {
                view.live_agent = Some(Some(ViewLiveAgent {
                    id: j.agent.id.clone(),
                    name: j.agent.name.clone(),
                    avatar_url: j.agent.avatar_url.clone(),
                }));
                view.handoff = Some(HandoffState::Live);
            }
            ServerEvent::LiveAgentLeft(_) => {
                view.live_agent = Some(None);
                self.typing.live_agent = false;
                view.handoff = Some(HandoffState::Ended);
            }
            _ => return false,
        }
        true
    }

    /// Folds an event of the handoff to a live agent before one joins (triggered, accepted,
    /// queued, left to the client, failed, timed out); `false` when `envelope` is not one.
    fn handoff(&mut self, envelope: &ServerEnvelope) -> bool {
        let view = &mut self.view;
        match &envelope.event {
            ServerEvent::PolyAgentTriggeredHandoff(_) => {
                view.handoff = Some(HandoffState::Triggered);
                self.agent_answered();
            }
            ServerEvent::HandoffAccepted(_) => view.handoff = Some(HandoffState::Accepted),
            ServerEvent::HandoffQueueStatus(q) if !self.defects.has(Defect::NoQueueStatus) => {
                view.queue = Some(Some(ViewQueue {
                    queue_name: q.queue_name.clone(),
                    position_in_queue: q.position_in_queue.map(u64::from),
                    estimated_wait_seconds: q.estimated_wait_seconds.map(u64::from),
                }));
            }
            ServerEvent::ClientHandoffRequired(c) => {
                view.handoff = Some(HandoffState::ClientRequired);
                view.client_handoff = Some(Some(ViewClientHandoff {
                    reason: c.reason.as_str().to_owned(),
                    queue_name: c.queue_name.clone(),
                }));
            }
            ServerEvent::HandoffFailed(_) => view.handoff = Some(HandoffState::Failed),
            ServerEvent::HandoffTimeout(_) => view.handoff = Some(HandoffState::Timeout),
            _ => return false,
        }
        true
    }

    /// Streamed messages: chunks in `chunk_index` order, complete once every chunk up to the
    /// one marked complete is here (spec §7).
    fn streams(&mut self) {
        let defects = self.defects;
        for message in &mut self.messages {
            let Some(parts) = message
                .message_id
                .as_ref()
                .and_then(|id| self.chunks.get(id))
            else {
                continue;
            };
            let mut parts: Vec<&(u64, PolyAgentMessageChunk)> = parts.iter().collect();
            parts.sort_by_key(|(_, c)| c.chunk_index);
            parts.dedup_by_key(|(_, c)| c.chunk_index);
            let contiguous = parts
                .iter()
                .enumerate()
                .take_while(|(i, (_, c))| c.chunk_index as usize == i + 1)
                .count();
            let mut applied: Vec<&PolyAgentMessageChunk> =
                parts[..contiguous].iter().map(|(_, c)| c).collect();
            if defects.has(Defect::ChunksInArrivalOrder) {
                let mut by_arrival: Vec<&(u64, PolyAgentMessageChunk)> =
                    parts[..contiguous].to_vec();
                by_arrival.sort_by_key(|(arrival, _)| *arrival);
                applied = by_arrival.into_iter().map(|(_, c)| c).collect();
            }
            let drop_final = defects.has(Defect::DropFinalChunkExtras);
            let extras_of = move |c: &&&PolyAgentMessageChunk| !(drop_final && c.is_complete);
            message.text = applied.iter().map(|c| c.text.as_str()).collect();
            message.attachments = applied
                .iter()
                .filter(extras_of)
                .flat_map(|c| c.attachments.iter().map(to_json))
                .collect();
            message.suggestions = applied
                .iter()
                .filter(extras_of)
                .flat_map(|c| {
                    c.response_suggestions
                        .iter()
                        .map(|s| s.message_text.clone())
                })
                .filter(|_| !defects.has(Defect::NoSuggestions))
                .collect();
            message.complete =
                defects.has(Defect::CompleteEarly) || applied.iter().any(|c| c.is_complete);
        }
    }

    /// The user's messages not echoed yet, after the rest: sending, or failed.
    fn pending(&mut self, pending: &[Pending]) {
        for pending in pending {
            self.messages.push(ViewMessage {
                message_id: None,
                from: Author::User,
                text: pending.text.clone(),
                attachments: Vec::new(),
                suggestions: Vec::new(),
                complete: true,
                status: Some(if pending.failed {
                    MessageStatus::Failed
                } else {
                    MessageStatus::Sending
                }),
            });
        }
    }

    fn finish(mut self) -> View {
        if self.defects.has(Defect::TypingWhileUnanswered) {
            // "Typing" whenever the user's last message has no answer after it.
            let last_user = self.messages.iter().rposition(|m| m.from == Author::User);
            let last_agent = self.messages.iter().rposition(|m| m.from != Author::User);
            self.typing.agent = last_user.is_some() && last_user > last_agent;
        }
        let mut view = self.view;
        view.language = Some(self.latest_language.1);
        view.messages = Some(self.messages);
        view.typing = Some(self.typing);
        view.system_messages = Some(self.system);
        view
    }
}

/// No attachments, no suggestions.
fn none() -> (Vec<Value>, Vec<String>) {
    (Vec::new(), Vec::new())
}

/// A message's attachments (as JSON) and suggestion texts, as the view shows them.
fn extras(
    attachments: &[mock_server::protocol::Attachment],
    suggestions: &[mock_server::protocol::ResponseSuggestion],
) -> (Vec<Value>, Vec<String>) {
    (
        attachments.iter().map(to_json).collect(),
        suggestions.iter().map(|s| s.message_text.clone()).collect(),
    )
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}
