//! What a client's frame does: a message, typing, a join, a heartbeat, or an error answer.

use super::*;
use crate::protocol::UserMessage;

impl Session {
    pub(super) fn handle(
        &mut self,
        out: &mut Vec<Action>,
        conn: ConnId,
        frame: ClientFrame,
        now: Now,
    ) {
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
                self.user_message(out, conn, message, metadata, now);
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

    /// A user message: refused before the join, else echoed (or lost, delayed or its echo
    /// omitted, as faults asked) and passed to the script, which may answer.
    fn user_message(
        &mut self,
        out: &mut Vec<Action>,
        conn: ConnId,
        message: UserMessage,
        metadata: Option<Metadata>,
        now: Now,
    ) {
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

    pub(super) fn join(&mut self, out: &mut Vec<Action>, metadata: Option<Metadata>, now: Now) {
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
    pub(super) fn reply_error(
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
}
