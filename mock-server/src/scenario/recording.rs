//! A recording (`--record` output) turned back into a scenario that plays the same agent side
//! with the same timing: the join and each user message become rules, and the server events
//! that followed them become steps, spaced by the recorded gaps.
//!
//! Left out: faults (a recording shows their effects, not their cause), and events not
//! triggered by a client frame (timed rules), which have nothing to hang a rule on.

use serde_json::Value;

use super::raw::*;
use crate::journal::{JournalEntry, JournalEvent};
use crate::protocol::{
    Attachment, ClientEvent, ClientHandoffReason, LiveAgent, ServerEvent, SessionEndReason,
    SystemMessageLevel, TypingState,
};

/// What a scenario rule is being built from.
struct Building {
    trigger: RawTrigger,
    steps: Vec<RawStep>,
    last_at: u64,
}

/// A streamed message still being collected, by `message_id`.
struct PendingStream {
    message_id: String,
    chunks: Vec<RawReply>,
    first_at: u64,
    last_at: u64,
}

fn reply_of(payload: &Value) -> RawReply {
    RawReply {
        text: payload["text"].as_str().unwrap_or_default().to_owned(),
        attachments: serde_json::from_value::<Vec<Attachment>>(payload["attachments"].clone())
            .unwrap_or_default(),
        suggestions: payload["response_suggestions"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|s| s["message_text"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn string(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// The step that reproduces one recorded server event, if any.
fn step_of(event_type: &str, payload: &Value) -> Option<RawStep> {
    Some(match event_type {
        ServerEvent::POLY_AGENT_JOINED => RawStep::Join,
        ServerEvent::POLY_AGENT_THINKING => RawStep::Think,
        ServerEvent::POLY_AGENT_MESSAGE => RawStep::Reply(reply_of(payload)),
        ServerEvent::POLY_AGENT_TRIGGERED_HANDOFF => RawStep::TriggerHandoff,
        ServerEvent::POLY_AGENT_LEFT => RawStep::AgentLeft,
        ServerEvent::HANDOFF_ACCEPTED => RawStep::HandoffAccepted,
        ServerEvent::HANDOFF_QUEUE_STATUS => RawStep::QueueStatus(RawQueueStatus {
            queue_name: payload["queue_name"].as_str().map(str::to_owned),
            position_in_queue: payload["position_in_queue"]
                .as_u64()
                .and_then(|p| u32::try_from(p).ok()),
            estimated_wait_seconds: payload["estimated_wait_seconds"]
                .as_u64()
                .and_then(|p| u32::try_from(p).ok()),
            repeat: None,
            interval_ms: None,
        }),
        ServerEvent::LIVE_AGENT_JOINED => RawStep::LiveAgentJoin(LiveAgent {
            id: string(&payload["agent"]["id"]),
            name: string(&payload["agent"]["name"]),
            avatar_url: string(&payload["agent"]["avatar_url"]),
        }),
        ServerEvent::LIVE_AGENT_TYPING => RawStep::LiveAgentTyping(TypingState::from_wire(
            payload["state"].as_str().unwrap_or("TYPING_STATE_STARTED"),
        )),
        ServerEvent::LIVE_AGENT_MESSAGE => RawStep::LiveAgentMessage(reply_of(payload)),
        ServerEvent::LIVE_AGENT_LEFT => RawStep::LiveAgentLeft,
        ServerEvent::CLIENT_HANDOFF_REQUIRED => RawStep::ClientHandoff(RawClientHandoff {
            reason: ClientHandoffReason::from_wire(payload["reason"].as_str().unwrap_or_default()),
            queue_name: string(&payload["queue_name"]),
        }),
        ServerEvent::HANDOFF_FAILED => RawStep::HandoffFailed,
        ServerEvent::HANDOFF_TIMEOUT => RawStep::HandoffTimeout,
        ServerEvent::LANGUAGE_CHANGED => RawStep::Language(string(&payload["language_code"])),
        ServerEvent::SYSTEM_MESSAGE => RawStep::SystemMessage(RawSystemMessage {
            level: SystemMessageLevel::from_wire(payload["level"].as_str().unwrap_or_default()),
            message: string(&payload["message"]),
        }),
        ServerEvent::SESSION_END => {
            let reason =
                SessionEndReason::from_wire(payload["reason"].as_str().unwrap_or_default());
            // The user's own ending is the client's doing, not the script's.
            if reason == SessionEndReason::UserEnd {
                return None;
            }
            RawStep::End(reason)
        }
        _ => return None,
    })
}

impl Building {
    fn push(&mut self, at: u64, step: RawStep) {
        if at > self.last_at {
            self.steps.push(RawStep::PauseMs(at - self.last_at));
        }
        self.last_at = at.max(self.last_at);
        self.steps.push(step);
    }

    fn flush_stream(&mut self, pending: &mut Option<PendingStream>) {
        if let Some(stream) = pending.take() {
            let gaps = stream.chunks.len().saturating_sub(1) as u64;
            let interval = (stream.last_at - stream.first_at)
                .checked_div(gaps)
                .unwrap_or(0);
            let step = RawStep::Stream(RawStream {
                chunks: Some(stream.chunks),
                chunk_interval_ms: Some(interval),
                ..RawStream::default()
            });
            self.push(stream.first_at, step);
            self.last_at = stream.last_at;
        }
    }
}

/// The rules found so far, and what the recording's next server events add to.
#[derive(Default)]
struct Rules {
    rules: Vec<RawRule>,
    building: Option<Building>,
    pending: Option<PendingStream>,
    persona: Option<RawPersona>,
    messages: u32,
}

impl Rules {
    /// Ends the rule being built: kept when it does more than pause.
    fn close(&mut self) {
        if let Some(mut rule) = self.building.take() {
            rule.flush_stream(&mut self.pending);
            if rule.steps.iter().any(|s| !matches!(s, RawStep::PauseMs(_))) {
                self.rules.push(RawRule {
                    when: rule.trigger,
                    steps: rule.steps,
                    once: true,
                    probability: None,
                });
            }
        }
    }

    /// One frame every socket received, at `at` ms: a client frame's echo starts a rule, a
    /// server event adds its step to the rule being built.
    fn frame(&mut self, at: u64, event_type: &str, payload: &Value) {
        let trigger = match event_type {
            ClientEvent::REQUEST_POLY_AGENT_JOIN => Some(RawTrigger::Join),
            ClientEvent::USER_MESSAGE => {
                self.messages += 1;
                Some(RawTrigger::NthMessage(self.messages))
            }
            _ => None,
        };
        if let Some(trigger) = trigger {
            self.close();
            self.building = Some(Building {
                trigger,
                steps: Vec::new(),
                last_at: at,
            });
            return;
        }
        let Some(rule) = self.building.as_mut() else {
            return;
        };
        if event_type == ServerEvent::POLY_AGENT_MESSAGE_CHUNK {
            let message_id = string(&payload["message_id"]);
            if self
                .pending
                .as_ref()
                .is_some_and(|p| p.message_id != message_id)
            {
                rule.flush_stream(&mut self.pending);
            }
            let stream = self.pending.get_or_insert_with(|| PendingStream {
                message_id,
                chunks: Vec::new(),
                first_at: at,
                last_at: at,
            });
            stream.chunks.push(reply_of(payload));
            stream.last_at = at;
            if payload["is_complete"] == true {
                rule.flush_stream(&mut self.pending);
            }
            return;
        }
        rule.flush_stream(&mut self.pending);
        if event_type == ServerEvent::POLY_AGENT_JOINED && self.persona.is_none() {
            self.persona = Some(RawPersona {
                name: string(&payload["agent_name"]),
                avatar_url: string(&payload["agent_avatar_url"]),
            });
        }
        if let Some(step) = step_of(event_type, payload) {
            rule.push(at, step);
        }
    }
}

/// The scenario a recording describes.
pub fn from_recording(entries: &[JournalEntry], source: &str) -> ScenarioFile {
    let mut found = Rules::default();
    for entry in entries {
        // Only what every socket received: replays and error replies went to one connection.
        let JournalEvent::ServerFrame { conn: None, frame } = &entry.event else {
            continue;
        };
        let Ok(frame) = serde_json::from_str::<Value>(frame.get()) else {
            continue;
        };
        let event_type = frame["type"].as_str().unwrap_or_default();
        found.frame(entry.at_ms, event_type, &frame["payload"]);
    }
    found.close();
    ScenarioFile {
        schema: None,
        description: format!("Replays the agent side of the recording {source}."),
        persona: found.persona,
        capabilities: RawCapabilities::default(),
        pacing: RawPacing::default(),
        seed: None,
        greeting: None,
        rules: found.rules,
        fallback: RawFallback {
            agent: Some(Vec::new()),
            live_agent: Some(Vec::new()),
        },
        exercise: None,
    }
}
