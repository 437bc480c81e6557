//! The timeline: a session's scheduled steps (replies, streams, pauses, faults), in time
//! order, scaled by the scenario's pacing, and playing each when it is due.

use super::*;

impl Session {
    pub(super) fn scaled(&self, delay: Duration) -> Duration {
        if self.config.time_scale > 0.0 && self.config.time_scale.is_finite() {
            // Saturating: a scenario pause of days at a tiny scale must not overflow.
            Duration::try_from_secs_f64(delay.as_secs_f64() / self.config.time_scale)
                .unwrap_or(Duration::from_secs(100 * 365 * 24 * 3600))
        } else {
            delay
        }
    }

    /// Inserts an item at an absolute time, after items due at the same time.
    pub(super) fn insert_at(&mut self, at: Duration, item: Scheduled) {
        let index = self.timeline.partition_point(|(due, _)| *due <= at);
        self.timeline.insert(index, (at, item));
    }

    /// Appends `steps` to the timeline, after whatever is still playing. Steps due now play at
    /// the end of the current input, in the same batch of actions.
    pub(super) fn schedule(&mut self, steps: Vec<Step>, now: Now) {
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
    pub(super) fn schedule_stream(&mut self, stream: Stream, mut at: Duration) -> Duration {
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

    pub(super) fn run_due(&mut self, out: &mut Vec<Action>, now: Now) {
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

    pub(super) fn play(&mut self, out: &mut Vec<Action>, step: Step, now: Now) {
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
}

/// All chunks as one message, for sessions that do not stream.
pub(super) fn whole_message(chunks: &[Reply]) -> Reply {
    Reply {
        text: chunks.iter().map(|c| c.text.as_str()).collect(),
        attachments: chunks.iter().flat_map(|c| c.attachments.clone()).collect(),
        suggestions: chunks.iter().flat_map(|c| c.suggestions.clone()).collect(),
    }
}

/// Puts a reply's attachments and suggestions on its last chunk (spec §12 E8).
pub(super) fn with_final_extras(
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
