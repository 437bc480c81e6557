//! The beats that take the sockets down or the app away: closes and drops (with what only a
//! replay carries, or what the user types meanwhile), refused reconnects and app restarts.

use serde_json::json;

use crate::generative::Pending;
use crate::obligations::ObligationId::*;

use super::beats::{QUICK, error_text};
use super::{Builder, expect, said, send, shows_message};

/// The step that takes the sockets down: a close frame with `code`, or a drop without one.
fn cut_step(code: Option<u16>) -> serde_json::Value {
    match code {
        Some(code) => json!({ "fault": { "close": code } }),
        None => json!({ "fault": "drop" }),
    }
}

impl Builder<'_> {
    pub(super) fn close(
        &mut self,
        code: Option<u16>,
        only_in_replay: bool,
        replay: Option<&str>,
        typed_while_down: bool,
    ) {
        let a = self.answer();
        let mut steps = vec![json!({ "think_ms": 5 }), json!({ "reply": { "text": a } })];
        let mut after = vec![said("agent", &a)];
        let mut wait = vec![expect(shows_message("agent", &a), Msg3, QUICK)];
        // Typed 250 ms after the answer shows: the sockets close 100 ms after it, and the
        // first reconnect waits about a second. However the client holds it, the server must
        // get it once (its echo and answer come after everything said while it was down).
        let typed = typed_while_down.then(|| {
            let (question, answer) = (self.question(), self.answer());
            wait.push(json!({ "hold_ms": 250 }));
            wait.push(send(&question));
            (question, answer)
        });
        steps.push(json!({ "pause_ms": 100 }));
        match replay {
            Some("split_next_replay") => {
                steps.push(json!({ "fault": { "split_next_replay": 1 } }));
            }
            Some("drop_next_replay_after") => {
                steps.push(json!({ "fault": { "drop_next_replay_after": 1 } }));
            }
            Some(other) => steps.push(json!({ "fault": other })),
            None => {}
        }
        steps.push(cut_step(code));
        // Said while the sockets are down (the history is all a replay can carry:
        // a later sequence delivered live would put it behind the cursor).
        if only_in_replay {
            let hidden = self.answer();
            steps.push(json!({ "pause_ms": 100 }));
            steps.push(json!({ "reply": { "text": hidden } }));
            after.push(said("agent", &hidden));
            wait.push(expect(
                shows_message("agent", &hidden),
                Msg1,
                self.reconnect_wait(),
            ));
            self.check(&[Msg1]);
        }
        wait.push(json!({ "hold_ms": 200 }));
        wait.push(expect(
            json!({ "connection": "open" }),
            Rc1,
            self.reconnect_wait(),
        ));
        if let Some((_, answer)) = &typed {
            // Time for a resend too, should the first try have gone nowhere.
            let within = self.reconnect_wait() + 8_000;
            wait.push(expect(shows_message("agent", answer), Msg3, within));
        }
        self.turn(steps, after, wait, &[Msg3]);
        // Its rule comes last: it fired last, so the next beat's faults go onto it.
        if let Some((question, answer)) = typed {
            self.rule(
                &question,
                vec![
                    json!({ "think_ms": 5 }),
                    json!({ "reply": { "text": answer } }),
                ],
            );
            self.conversation.push(said("user", &question));
            self.conversation.push(said("agent", &answer));
            self.check(&[Msg5]);
        }
        self.reconnect_checks();
    }

    pub(super) fn mid_stream_drop(&mut self, pieces: u64, drop_after: u64) {
        let text: String = (0..pieces)
            .map(|_| self.answer())
            .collect::<Vec<_>>()
            .join(" ");
        self.turn(
            vec![
                json!({ "think_ms": 5 }),
                json!({ "stream": { "text": text, "pieces": pieces, "chunk_interval_ms": 80, "drop_after": drop_after } }),
            ],
            vec![said("agent", &text)],
            vec![
                expect(shows_message("agent", &text), Msg4, self.reconnect_wait()),
                expect(json!({ "connection": "open" }), Rc1, self.reconnect_wait()),
            ],
            &[Msg4, Msg1, Msg3],
        );
        self.reconnect_checks();
    }

    pub(super) fn echo_only_in_replay(&mut self, cut: Option<u16>) {
        let (a1, a2) = (self.answer(), self.answer());
        self.turn(
            vec![
                json!({ "pause_ms": 50 }),
                cut_step(cut),
                json!({ "pause_ms": 100 }),
                json!({ "reply": { "text": a1 } }),
                json!({ "reply": { "text": a2 } }),
            ],
            vec![said("agent", &a1), said("agent", &a2)],
            vec![
                expect(shows_message("agent", &a2), Msg1, self.reconnect_wait()),
                expect(json!({ "connection": "open" }), Rc1, self.reconnect_wait()),
            ],
            &[Msg1, Msg3],
        );
        self.reconnect_checks();
    }

    /// The answer, then the sockets go; meanwhile an undocumented event, with `error` an
    /// agent error, and a second answer, which only the replay carries.
    pub(super) fn unknown_in_replay(&mut self, cut: Option<u16>, error: bool) {
        let (a, hidden) = (self.answer(), self.answer());
        let kind = format!("EVENT_TYPE_FUTURE_{}", 10 + self.d.below(80));
        let mut steps = vec![
            json!({ "think_ms": 5 }),
            json!({ "reply": { "text": a } }),
            json!({ "pause_ms": 50 }),
            cut_step(cut),
            json!({ "pause_ms": 100 }),
            json!({ "fault": { "unknown_event_type": kind } }),
        ];
        let mut after = vec![said("agent", &a)];
        if error {
            steps.push(json!({ "error": "high_load" }));
            after.push(said("system", error_text("high_load")));
            self.check(&[Err1]);
        }
        steps.push(json!({ "reply": { "text": hidden } }));
        after.push(said("agent", &hidden));
        self.turn(
            steps,
            after,
            vec![
                expect(shows_message("agent", &a), Msg3, QUICK),
                expect(shows_message("agent", &hidden), Err2, self.reconnect_wait()),
            ],
            &[Err2, Msg3],
        );
        self.reconnect_checks();
    }

    pub(super) fn refused_reconnects(&mut self, refusals: u32) {
        let a = self.answer();
        self.turn(
            vec![
                json!({ "think_ms": 5 }),
                json!({ "reply": { "text": a } }),
                json!({ "pause_ms": 50 }),
                json!({ "fault": { "refuse_handshakes": { "count": refusals, "status": 503 } } }),
                json!({ "fault": "drop" }),
            ],
            vec![said("agent", &a)],
            vec![
                expect(shows_message("agent", &a), Msg3, QUICK),
                json!({ "hold_ms": 200 }),
                expect(json!({ "connection": "open" }), Rc1, 12_000),
            ],
            &[Msg3],
        );
        self.reconnect_checks();
    }

    /// With a message `pending`, the user asks first: the app restarts while the question
    /// waits for its echo (which only the history carries; the answer comes while the app is
    /// closed), or after it was typed while the sockets were down. The rule answers once, so a
    /// client that sends the question twice changes nothing but what MSG-5 sees.
    pub(super) fn restart(&mut self, pending: Pending) {
        let asked = (pending != Pending::Nothing).then(|| {
            let (question, a) = (self.question(), self.answer());
            let think = if pending == Pending::Unechoed { 250 } else { 5 };
            self.rule(
                &question,
                vec![
                    json!({ "think_ms": think }),
                    json!({ "reply": { "text": a } }),
                ],
            );
            if let Some(rule) = self.rules.last_mut() {
                rule["once"] = json!(true);
            }
            if pending == Pending::Unsent {
                self.steps.push(json!({ "mock": [{ "fault": "drop" }] }));
                self.steps.push(json!({ "hold_ms": 150 }));
            }
            self.steps.push(send(&question));
            self.steps.push(json!({ "hold_ms": 100 }));
            self.conversation.push(said("user", &question));
            self.conversation.push(said("agent", &a));
            self.check(&[Msg3, Msg5]);
            a
        });
        // With nothing pending, the agent says something only the history keeps just before
        // the restart: the restarted app's replay is the first to carry it.
        let unseen = (pending == Pending::Nothing).then(|| {
            let a = self.answer();
            let said_now = vec![json!({ "fault": "omit_next" }), self.one_event_reply(&a)];
            self.steps.push(json!({ "mock": said_now }));
            self.steps.push(json!({ "hold_ms": 100 }));
            self.conversation.push(said("agent", &a));
            a
        });
        self.steps.push(json!("restart"));
        self.steps
            .push(expect(json!({ "connection": "open" }), Ws4, QUICK));
        if let Some(a) = unseen {
            let wait = self.reconnect_wait();
            self.steps
                .push(expect(shows_message("agent", &a), Msg3, wait));
            self.check(&[Msg1, Msg3]);
        }
        if let Some(a) = asked {
            let wait = self.reconnect_wait();
            self.steps
                .push(expect(shows_message("agent", &a), Msg3, wait));
        }
        self.check(&[Ws4, Rc2]);
    }
}
