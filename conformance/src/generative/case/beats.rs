//! What each kind of beat puts into the case: the faults it arms, the rule that answers its
//! question, the steps the user takes, the conversation it leaves and the obligations it serves.

use serde_json::{Value, json};

use crate::obligations::ObligationId::{self, *};

use super::{Beat, Builder, expect, said, send, shows_message};
use crate::generative::Pending;

const ERROR_TEXTS: &[(&str, &str)] = &[
    (
        "high_load",
        "Our system is experiencing high load. Please try again in a moment.",
    ),
    (
        "trouble_responding",
        "Sorry, I'm having trouble responding right now. Please try again.",
    ),
    (
        "streaming_error",
        "Sorry, I encountered an error. Please try again.",
    ),
    (
        "handoff_could_not_connect",
        "Sorry, we could not connect you to an agent. Please try again.",
    ),
];

pub(super) fn error_text(kind: &str) -> &'static str {
    ERROR_TEXTS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("", |(_, text)| text)
}

/// How long to wait for what a turn without a reconnect shows.
pub(super) const QUICK: u64 = 10_000;

impl Builder<'_> {
    pub(super) fn beat(&mut self, beat: &Beat) {
        // Faults for this beat's question go on the rule that fired before it.
        match beat {
            Beat::LostOnce => self.arm(json!("drop_next_echo")),
            Beat::LostForever => self.arm(json!({ "drop_echoes": 20 })),
            Beat::EchoOnlyInReplay { .. }
            | Beat::Restart {
                pending: Pending::Unechoed,
            } => self.arm(json!("omit_next_echo")),
            _ => {}
        }
        match *beat {
            Beat::Reply => self.reply(false),
            Beat::LostOnce => self.reply(true),
            Beat::Think { pause_ms, think_ms } => self.think(pause_ms, think_ms),
            Beat::Stream {
                pieces,
                swapped,
                second_first,
            } => self.stream(pieces, swapped, second_first),
            Beat::Duplicate => self.faulty_reply("duplicate_next", Msg2),
            Beat::NullSequence => self.faulty_reply("null_sequence_next", Msg3),
            Beat::UnknownFields => self.faulty_reply("unknown_fields_next", Err2),
            Beat::Swap => self.swap(),
            Beat::HistoryAgain => self.history_again(),
            Beat::ResendPrevious { back } => self.resent(json!({ "resend_previous": back })),
            Beat::UnknownLive => self.unknown_live(),
            Beat::AgentError { kind } => self.agent_error(kind),
            Beat::Languages { swapped, again } => self.languages(swapped, again),
            Beat::Suggestions { tap } => self.suggestions(tap),
            Beat::Quiet => self.quiet(),
            Beat::UserTyping => self.user_typing(),
            Beat::Oversized { frame_only } => self.oversized(frame_only),
            Beat::Close {
                code,
                only_in_replay,
                replay,
                typed_while_down,
            } => self.close(code, only_in_replay, replay, typed_while_down),
            Beat::MidStreamDrop { pieces, drop_after } => {
                self.mid_stream_drop(pieces, drop_after);
            }
            Beat::EchoOnlyInReplay { cut } => self.echo_only_in_replay(cut),
            Beat::UnknownInReplay { cut, error } => self.unknown_in_replay(cut, error),
            Beat::RefusedReconnects { refusals } => self.refused_reconnects(refusals),
            Beat::Restart { pending } => self.restart(pending),
            Beat::Handoff {
                queue,
                turns,
                last_while_down,
            } => self.handoff(queue, turns, last_while_down),
            Beat::ClientHandoff => self.client_handoff(),
            Beat::HandoffFails { timeout } => self.handoff_fails(timeout),
            Beat::UserEnds => self.user_ends(),
            Beat::NaturalEnd { during_drop } => self.natural_end(during_drop),
            Beat::GiveUp => self.give_up(),
            Beat::TokenExpired => self.expired(true),
            Beat::SessionExpired => self.expired(false),
            Beat::LostForever => self.lost_forever(),
        }
    }

    /// A question and its answer; `lost`: the question's echo is lost once on the way.
    fn reply(&mut self, lost: bool) {
        let a = self.answer();
        if lost {
            self.check(&[Msg5]);
        }
        // A lost question is answered once the client resends it, about 5 s later.
        let wait = vec![expect(shows_message("agent", &a), Msg3, 16_000)];
        self.turn(
            vec![json!({ "think_ms": 5 }), json!({ "reply": { "text": a } })],
            vec![said("agent", &a)],
            wait,
            &[Msg3],
        );
    }

    fn think(&mut self, pause_ms: u64, think_ms: u64) {
        let a = self.answer();
        self.turn(
            vec![
                json!({ "pause_ms": pause_ms }),
                json!({ "think_ms": think_ms }),
                json!({ "reply": { "text": a } }),
            ],
            vec![said("agent", &a)],
            vec![expect(shows_message("agent", &a), Ux1, QUICK)],
            &[Ux1, Msg3],
        );
    }

    fn stream(&mut self, pieces: u64, swapped: bool, second_first: bool) {
        let words: Vec<String> = (0..pieces).map(|_| self.answer()).collect();
        let mut chunks: Vec<Value> = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let text = if i == 0 { w.clone() } else { format!(" {w}") };
                if i == 0 {
                    json!({ "text": text, "suggestions": [format!("More about {}", 100 + self.texts)] })
                } else {
                    json!({ "text": text })
                }
            })
            .collect();
        chunks.push(json!({ "text": "", "attachments": [{ "title": "Details", "preview_image_url": "https://cdn.example.test/p.png", "content_url": "https://cdn.example.test/d", "content_type": "ATTACHMENT_CONTENT_TYPE_URL", "call_to_action_text": "Open" }] }));
        let whole: String = words.join(" ");
        let mut steps = vec![json!({ "think_ms": 5 })];
        if swapped {
            steps.push(json!({ "fault": "swap_next" }));
        }
        steps.push(json!({ "stream": { "chunks": chunks, "chunk_interval_ms": 20, "second_chunk_first": second_first } }));
        self.turn(
            steps,
            vec![said("agent", &whole)],
            vec![expect(shows_message("agent", &whole), Msg4, QUICK)],
            &[Msg4, Msg3],
        );
    }

    /// The answer, with `fault` armed on it (duplicated, unsequenced, with unknown fields).
    fn faulty_reply(&mut self, fault: &str, check: ObligationId) {
        let a = self.answer();
        self.turn(
            vec![
                json!({ "think_ms": 5 }),
                json!({ "fault": fault }),
                json!({ "reply": { "text": a } }),
            ],
            vec![said("agent", &a)],
            vec![expect(shows_message("agent", &a), check, QUICK)],
            &[check, Msg3],
        );
    }

    fn swap(&mut self) {
        let (a1, a2) = (self.answer(), self.answer());
        self.turn(
            vec![
                json!({ "think_ms": 5 }),
                json!({ "fault": "swap_next" }),
                json!({ "reply": { "text": a1 } }),
                json!({ "reply": { "text": a2 } }),
            ],
            vec![said("agent", &a1), said("agent", &a2)],
            vec![expect(shows_message("agent", &a1), Msg3, QUICK)],
            &[Msg3],
        );
    }

    /// The answer, then `fault` sends events again (the whole history or an older event).
    fn resent(&mut self, fault: Value) {
        let a = self.answer();
        self.turn(
            vec![
                json!({ "think_ms": 5 }),
                json!({ "reply": { "text": a } }),
                json!({ "pause_ms": 30 }),
                json!({ "fault": fault }),
            ],
            vec![said("agent", &a)],
            vec![
                expect(shows_message("agent", &a), Msg3, QUICK),
                json!({ "hold_ms": 150 }),
            ],
            &[Msg2, Msg3],
        );
    }

    /// An event of an undocumented type, the answer, then the whole history again in a live
    /// batch: the unknown event arrives inside it too.
    fn history_again(&mut self) {
        let kind = format!("EVENT_TYPE_FUTURE_{}", 10 + self.d.below(80));
        self.arm(json!({ "unknown_event_type": kind }));
        self.resent(json!("resend_history"));
        self.check(&[ObligationId::Err2]);
    }

    fn unknown_live(&mut self) {
        let a = self.answer();
        let kind = format!("EVENT_TYPE_FUTURE_{}", 10 + self.d.below(80));
        self.turn(
            vec![
                json!({ "think_ms": 5 }),
                json!({ "fault": "null_sequence_next" }),
                json!({ "fault": { "unknown_event_type": kind } }),
                json!({ "reply": { "text": a } }),
            ],
            vec![said("agent", &a)],
            vec![expect(shows_message("agent", &a), Err2, QUICK)],
            &[Err2, Msg3],
        );
    }

    fn agent_error(&mut self, kind: &str) {
        self.turn(
            vec![json!({ "think_ms": 5 }), json!({ "error": kind })],
            vec![said("system", error_text(kind))],
            vec![json!({ "hold_ms": 300 })],
            &[Err1, Msg3],
        );
    }

    /// Two language changes; with `again`, the whole history once more after the answer, in
    /// a live batch (each change arrives twice, the older one last but for its sequence).
    fn languages(&mut self, swapped: bool, again: bool) {
        let a = self.answer();
        let languages = ["de-DE", "es-MX", "ja-JP", "pt-BR", "it-IT", "nl-NL"];
        let first = self.d.below(6) as usize;
        let second = (first + 1 + self.d.below(5) as usize) % 6;
        let mut steps = vec![json!({ "think_ms": 5 })];
        if swapped {
            steps.push(json!({ "fault": "swap_next" }));
        }
        steps.push(json!({ "language": languages[first] }));
        steps.push(json!({ "language": languages[second] }));
        steps.push(json!({ "reply": { "text": a } }));
        let mut wait = vec![
            expect(json!({ "language": languages[second] }), Ux6, QUICK),
            expect(shows_message("agent", &a), Msg3, QUICK),
        ];
        if again {
            steps.push(json!({ "pause_ms": 30 }));
            steps.push(json!({ "fault": "resend_history" }));
            wait.push(json!({ "hold_ms": 300 }));
            wait.push(expect(json!({ "language": languages[second] }), Ux6, QUICK));
        }
        self.turn(steps, vec![said("agent", &a)], wait, &[Ux6, Msg2, Msg3]);
    }

    fn suggestions(&mut self, tap: usize) {
        let a = self.answer();
        let options = [
            format!("Track item {}", 100 + self.texts),
            format!("Change item {}", 100 + self.texts),
        ];
        let chosen = options[tap].clone();
        self.turn(
            vec![
                json!({ "think_ms": 5 }),
                json!({ "reply": { "text": a, "suggestions": options } }),
            ],
            vec![said("agent", &a)],
            vec![expect(shows_message("agent", &a), Msg3, QUICK)],
            &[Ux2, Msg3],
        );
        let followed = self.answer();
        self.rule(
            &chosen,
            vec![
                json!({ "think_ms": 5 }),
                json!({ "reply": { "text": followed } }),
            ],
        );
        self.steps.push(json!({ "tap_suggestion": chosen }));
        self.steps
            .push(expect(shows_message("agent", &followed), Ux2, QUICK));
        self.conversation.push(said("user", &chosen));
        self.conversation.push(said("agent", &followed));
    }

    fn quiet(&mut self) {
        let window = self.session.settings.heartbeat_seconds * 2_500 + 1_500;
        self.steps.push(json!({ "hold_ms": window }));
        self.check(&[Hb1, Hb2]);
    }

    fn user_typing(&mut self) {
        let a = self.answer();
        self.steps.push(json!({ "typing": "started" }));
        self.steps.push(json!({ "hold_ms": 600 }));
        self.steps.push(json!({ "typing": "stopped" }));
        self.turn(
            vec![json!({ "think_ms": 5 }), json!({ "reply": { "text": a } })],
            vec![said("agent", &a)],
            vec![expect(shows_message("agent", &a), Msg3, QUICK)],
            &[Ws6, Msg3],
        );
    }

    /// A text the client must not send as one frame: over the limit in bytes though not in
    /// characters, or (`frame_only`) under it by less than the frame's envelope takes.
    fn oversized(&mut self, frame_only: bool) {
        let limit = self.session.settings.max_message_size as usize;
        let text = if frame_only {
            "a".repeat(limit - 10 - self.d.below(30) as usize)
        } else {
            "é".repeat((limit + 3_000).div_ceil(2))
        };
        self.steps.push(send(&text));
        self.steps.push(json!({ "hold_ms": 200 }));
        self.check(&[Ws7]);
    }

    fn handoff(&mut self, queue: u32, turns: u32, last_while_down: bool) {
        let live = json!({ "id": "agent_77", "name": "{live_agent_name}", "avatar_url": "{live_agent_avatar_url}" });
        self.turn(
            vec![
                json!({ "think_ms": 5 }),
                json!("trigger_handoff"),
                json!({ "pause_ms": 150 }),
                json!("agent_left"),
                json!("handoff_accepted"),
                json!({ "queue_status": { "queue_name": "{queue_name}", "position_in_queue": queue + 1, "repeat": queue, "interval_ms": 300 } }),
                json!({ "pause_ms": 300 }),
                json!({ "live_agent_join": live }),
            ],
            Vec::new(),
            vec![expect(json!({ "handoff": "live" }), Ux3, QUICK)],
            &[Ux3, Msg3],
        );
        self.live_agent = true;
        for turn in 0..turns {
            let l = self.answer();
            let mut steps = vec![
                json!({ "live_agent_typing": "TYPING_STATE_STARTED" }),
                json!({ "pause_ms": 600 }),
            ];
            let mut within = QUICK;
            if last_while_down && turn + 1 == turns {
                // The sockets drop while the live agent types; the answer comes in the replay.
                steps.push(json!({ "fault": "drop" }));
                steps.push(json!({ "pause_ms": 100 }));
                within = self.reconnect_wait();
                self.reconnect_checks();
                self.check(&[Msg1]);
            }
            steps.push(json!({ "live_agent_message": { "text": l } }));
            self.turn(
                steps,
                vec![said("live_agent", &l)],
                vec![expect(shows_message("live_agent", &l), Msg3, within)],
                &[Ux1, Msg3],
            );
        }
    }

    fn client_handoff(&mut self) {
        self.turn(
            vec![
                json!({ "think_ms": 5 }),
                json!("trigger_handoff"),
                json!({ "client_handoff": { "reason": "{client_handoff_reason}", "queue_name": "{client_handoff_queue}" } }),
                json!("agent_left"),
            ],
            Vec::new(),
            vec![expect(json!({ "handoff": "client_required" }), Ux5, QUICK)],
            &[Ux5, Msg3],
        );
    }

    fn handoff_fails(&mut self, timeout: bool) {
        let mut steps = vec![json!({ "think_ms": 5 }), json!("trigger_handoff")];
        let mut after = Vec::new();
        if timeout {
            steps.push(json!("handoff_accepted"));
            steps.push(
                json!({ "queue_status": { "queue_name": "{queue_name}", "position_in_queue": 2 } }),
            );
            steps.push(json!({ "pause_ms": 400 }));
            steps.push(json!("handoff_timeout"));
        } else {
            steps.push(json!({ "pause_ms": 150 }));
            steps.push(json!("handoff_failed"));
            steps.push(json!({ "error": "handoff_could_not_connect" }));
            after.push(said("system", error_text("handoff_could_not_connect")));
            self.check(&[Err1]);
        }
        let state = if timeout { "timeout" } else { "failed" };
        self.turn(
            steps,
            after,
            vec![expect(json!({ "handoff": state }), Ux3, QUICK)],
            &[Ux3, Msg3],
        );
    }

    fn user_ends(&mut self) {
        self.check(&[Ux4]);
        self.steps.push(json!("end"));
        self.steps
            .push(expect(json!({ "ended": "REASON_USER_END" }), Ux4, QUICK));
        self.after_end();
    }

    fn natural_end(&mut self, during_drop: bool) {
        let mut steps = Vec::new();
        let mut after = Vec::new();
        let mut wait = Vec::new();
        if self.live_agent {
            steps.push(json!("live_agent_left"));
        } else {
            let a = self.answer();
            steps.push(json!({ "think_ms": 5 }));
            steps.push(json!({ "reply": { "text": a } }));
            after.push(said("agent", &a));
            wait.push(expect(shows_message("agent", &a), Msg3, QUICK));
        }
        if during_drop {
            steps.push(json!({ "pause_ms": 50 }));
            steps.push(json!({ "fault": "drop" }));
            steps.push(json!({ "pause_ms": 100 }));
            self.check(&[Msg1, Rc1]);
        }
        steps.push(json!({ "end": "REASON_NATURAL_END" }));
        wait.push(expect(
            json!({ "ended": "REASON_NATURAL_END" }),
            Ux4,
            self.reconnect_wait(),
        ));
        self.turn(steps, after, wait, &[Ux4, Msg3]);
        self.after_end();
    }

    fn give_up(&mut self) {
        let a = self.answer();
        let attempts = self.session.settings.max_attempts;
        let give_up: u64 = (0..attempts).map(|i| 1_000u64 << i).sum::<u64>() + 3_000;
        self.turn(
            vec![
                json!({ "think_ms": 5 }),
                json!({ "reply": { "text": a } }),
                json!({ "pause_ms": 50 }),
                json!({ "fault": { "refuse_handshakes": { "count": 60, "status": 503 } } }),
                json!({ "fault": "drop" }),
            ],
            vec![said("agent", &a)],
            vec![
                expect(shows_message("agent", &a), Msg3, QUICK),
                json!({ "hold_ms": 300 }),
                expect(json!({ "connection": "closed" }), Rc4, give_up),
                json!({ "hold_ms": 1500 }),
            ],
            &[Rc1, Rc3, Rc4, Msg3],
        );
    }

    /// The token (`token`) or else the session stops working: a new session follows.
    fn expired(&mut self, token: bool) {
        let a = self.answer();
        let fault = if token {
            vec![
                json!({ "fault": "expire_token" }),
                json!({ "fault": "drop" }),
            ]
        } else {
            vec![json!({ "fault": "expire_session" })]
        };
        let mut steps = vec![
            json!({ "think_ms": 5 }),
            json!({ "reply": { "text": a } }),
            json!({ "pause_ms": 50 }),
        ];
        steps.extend(fault);
        self.turn(
            steps,
            vec![said("agent", &a)],
            vec![
                expect(shows_message("agent", &a), Msg3, QUICK),
                expect(json!({ "another_session": true }), Rc5, 8_000),
                expect(shows_message("agent", "{greeting}"), Ws3, QUICK),
                json!({ "hold_ms": 500 }),
            ],
            &[Rc5, Auth3, Rc1, Msg3],
        );
    }

    fn lost_forever(&mut self) {
        let q = self.question();
        self.steps.push(send(&q));
        self.steps.push(expect(
            json!({ "message": { "from": "user", "text": q, "status": "failed" } }),
            Msg5,
            43_000,
        ));
        self.check(&[Msg5, Hb1, Hb2]);
    }
}
