//! Faults: what a scenario or the control API does to delivery on purpose (drops, closes,
//! duplicates, swaps, replay modifiers, refused handshakes, unknown events and fields).

use super::*;

impl Session {
    pub(super) fn fault(&mut self, out: &mut Vec<Action>, fault: Fault, now: Now) {
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
            Fault::Resend(sequence) => self.resend(out, sequence),
            Fault::ResendHistory => self.resend_history(out, now),
            Fault::SplitNextReplay(n) => self.pending.split_replay = Some(n),
            Fault::DropNextReplayAfter(n) => self.pending.drop_replay_after = Some(n),
            Fault::ReverseNextReplay => self.pending.reverse_replay = true,
            Fault::AlternateShapeNextReplay => self.pending.alternate_shape = true,
            Fault::DelayNextEcho(delay) => self.pending.delay_echo = Some(delay),
            Fault::OmitNextEcho => self.pending.omit_echo = true,
            Fault::DropEchoes(n) => {
                self.pending.drop_echo = self.pending.drop_echo.saturating_add(n)
            }
            Fault::ResendPrevious(back) => self.resend_previous(out, back),
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

    /// Sends the history's frame of `sequence` again, when it has one.
    fn resend(&self, out: &mut Vec<Action>, sequence: u64) {
        if let Some(frame) = self.history.get(Sequence(sequence)) {
            let frame = frame.to_owned();
            out.push(Action::Send {
                to: Recipient::All,
                frame,
            });
        }
    }

    /// Sends the whole history again, as the batches a connect from cursor 0 would get.
    fn resend_history(&mut self, out: &mut Vec<Action>, now: Now) {
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

    /// Sends again the frame `back` places from the newest (1: the newest), when there is one.
    fn resend_previous(&self, out: &mut Vec<Action>, back: u64) {
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
}

/// Adds fields the docs do not define, to the envelope and the payload (spec §11 ERR-2).
pub(crate) fn with_unknown_fields(frame: &str) -> String {
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
pub(crate) fn alternate_shape(batch: &str) -> String {
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
