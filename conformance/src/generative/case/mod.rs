//! Turning a session into an ordinary case file: the Builder that collects the scenario's
//! rules, the user steps, the expected conversation and the checks.

mod beats;
mod drops;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::cases::{Case, CaseError};
use crate::obligations::ObligationId;
use crate::params::{ASKS, Draw, THINGS};

use super::{Beat, Session};

impl Session {
    /// The session as a case, through the same loading and checks as a case file.
    pub fn case(&self) -> Result<Case, CaseError> {
        let file = Builder::new(self).file();
        let id = self.id();
        Case::parse(
            &format!("generated/{id}.json"),
            &serde_json::to_string(&file).unwrap_or_default(),
        )
    }
}

/// Turns beats into a case file: rules, user steps, the expected conversation, the checks.
struct Builder<'s> {
    session: &'s Session,
    texts: u64,
    d: Draw,
    rules: Vec<Value>,
    /// Steps of the join rule (the greeting); faults a beat arms for the next user message go
    /// onto the previous rule.
    join: Vec<Value>,
    steps: Vec<Value>,
    conversation: Vec<Value>,
    checks: BTreeSet<ObligationId>,
    live_agent: bool,
}

fn send(text: &str) -> Value {
    json!({ "send": text })
}

fn expect(shows: Value, serves: ObligationId, within_ms: u64) -> Value {
    let mut value = shows;
    value["serves"] = json!(serves.as_str());
    value["within_ms"] = json!(within_ms);
    json!({ "expect": value })
}

fn shows_message(from: &str, text: &str) -> Value {
    json!({ "message": { "from": from, "text": text } })
}

fn said(from: &str, text: &str) -> Value {
    json!({ "from": from, "text": text })
}

impl<'s> Builder<'s> {
    fn new(session: &'s Session) -> Self {
        Self {
            session,
            texts: 0,
            d: Draw::from_seed(session.seed ^ 0x7E47_5EED),
            rules: Vec::new(),
            join: vec![json!("join"), json!({ "think_ms": 5 })],
            steps: Vec::new(),
            conversation: Vec::new(),
            checks: BTreeSet::new(),
            live_agent: false,
        }
    }

    /// A fresh question (unique in the session).
    fn question(&mut self) -> String {
        self.texts += 1;
        let ask = self.d.pick(ASKS);
        let thing = self.d.pick(THINGS);
        format!("{ask} {thing} {}?", 100 + self.texts)
    }

    /// A fresh answer.
    fn answer(&mut self) -> String {
        self.texts += 1;
        let thing = self.d.pick(THINGS);
        let state = self
            .d
            .pick(&["on its way", "confirmed", "updated", "being checked"]);
        format!("Your {thing} {} is {state}.", 100 + self.texts)
    }

    /// Faults for the next user message go at the end of the rule that fired last.
    fn arm(&mut self, fault: Value) {
        let step = json!({ "fault": fault });
        match self.rules.last_mut() {
            Some(rule) => {
                if let Some(steps) = rule["steps"].as_array_mut() {
                    steps.push(step);
                }
            }
            None => self.join.push(step),
        }
    }

    fn rule(&mut self, question: &str, steps: Vec<Value>) {
        let mut when = json!({ "message": { "equals": question } });
        if self.live_agent {
            when["message"]["to"] = json!("live_agent");
        }
        self.rules.push(json!({ "when": when, "steps": steps }));
    }

    fn check(&mut self, ids: &[ObligationId]) {
        self.checks.extend(ids.iter().copied());
    }

    /// A turn: the user asks, the rule plays `steps`, the user waits for `shown` (serving
    /// `serves`); the conversation gains the question and `said`.
    fn turn(
        &mut self,
        steps: Vec<Value>,
        said_after: Vec<Value>,
        wait: Vec<Value>,
        checks: &[ObligationId],
    ) -> String {
        let question = self.question();
        self.rule(&question, steps);
        self.steps.push(send(&question));
        self.steps.extend(wait);
        self.conversation.push(said("user", &question));
        self.conversation.extend(said_after);
        self.check(checks);
        question
    }

    /// A reply that is one event, so that `omit_next` keeps all of it out of the live stream:
    /// in a streaming session a stream of one chunk (a reply would be several).
    fn one_event_reply(&self, text: &str) -> Value {
        if self.session.settings.streaming {
            json!({ "stream": { "chunks": [{ "text": text }] } })
        } else {
            json!({ "reply": { "text": text } })
        }
    }

    /// How long to wait for what comes after a reconnect: the backoff, a replay dropped once,
    /// and the history held back each time.
    fn reconnect_wait(&self) -> u64 {
        10_000 + 3 * self.session.settings.hold_back_ms
    }

    fn reconnect_checks(&mut self) {
        use ObligationId::*;
        self.check(&[Rc1, Rc2, Rc3, Ws4, Msg5]);
    }

    /// After an end: a message the user tries must be refused, and the client stays away.
    fn after_end(&mut self) {
        let late = self.question();
        self.steps.push(send(&late));
        self.steps.push(json!({ "hold_ms": 1700 }));
    }

    fn file(mut self) -> Value {
        use ObligationId::*;
        let session = self.session;
        let beats = session.beats.clone();
        self.steps.push(json!("start"));
        let greeting = "{greeting}";
        self.steps
            .push(expect(shows_message("agent", greeting), Ws3, 20_000));
        self.conversation.push(said("agent", greeting));
        self.check(&[Ws3, Msg3, Hb1, Hb2]);
        for beat in &beats {
            self.beat(beat);
            if beat.ends() {
                break;
            }
        }
        if !beats.last().is_some_and(Beat::ends) {
            self.steps.push(json!({ "hold_ms": 500 }));
        }
        let s = &session.settings;
        let mut mock = json!({
            "heartbeat_interval_seconds": s.heartbeat_seconds,
            "max_reconnect_attempts": s.max_attempts,
        });
        if s.hold_back_ms > 0 {
            mock["replay_delay_ms"] = json!(s.hold_back_ms);
            self.check(&[Ws2]);
        }
        if beats.iter().any(|b| matches!(b, Beat::Oversized { .. })) {
            mock["max_message_size_bytes"] = json!(s.max_message_size);
        }
        if let Some(r) = s.rest_failures {
            let limited = json!({ "count": 1, "retry_after_seconds": r.retry_after });
            mock["http_failures"] = if r.sessions_first {
                json!({ "sessions_429": limited, "access_token": r.server_errors })
            } else {
                json!({ "access_token_429": limited, "sessions": r.server_errors })
            };
            self.check(&[Auth5]);
        }
        if s.close_at_end {
            mock["session_end_close_grace_ms"] = json!(0);
        }
        let mut join = self.join.clone();
        if s.join_interrupted {
            // The join and the greeting go only into the history; the drop follows.
            join.insert(0, json!({ "fault": "omit_next" }));
            join.insert(3, json!({ "fault": "omit_next" }));
            join.insert(4, self.one_event_reply(greeting));
            join.insert(5, json!({ "pause_ms": 50 }));
            join.insert(6, json!({ "fault": "drop" }));
            self.check(&[Ws4, Rc1, Rc2, Msg1]);
        } else {
            join.insert(2, json!({ "reply": { "text": greeting } }));
        }
        let mut rules = vec![json!({ "when": "join", "steps": join })];
        rules.extend(self.rules);
        json!({
            "id": session.id(),
            "description": session.describe(),
            "tier": "full",
            "streaming": s.streaming,
            "mock": mock,
            "scenario": {
                "description": "A generated session.",
                "persona": { "name": "{agent_name}", "avatar_url": "{agent_avatar_url}" },
                "rules": rules,
            },
            "steps": self.steps,
            "settle_ms": 500,
            "conversation": self.conversation,
            "checks": self.checks.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;

    #[test]
    fn every_generated_session_loads_as_a_case_and_a_few_sessions_meet_every_beat_kind() {
        let mut kinds = std::collections::HashSet::new();
        let mut variants = std::collections::HashSet::new();
        for index in 0..40 {
            let session = Session::generate(7, index);
            let case = session
                .case()
                .unwrap_or_else(|e| panic!("{e}\n{session:?}"));
            case.instantiate(&Params::draw(index))
                .unwrap_or_else(|e| panic!("{e}"));
            for beat in &session.beats {
                kinds.insert(std::mem::discriminant(beat));
                match beat {
                    Beat::Restart { pending } => variants.insert(format!("restart {pending:?}")),
                    Beat::Close {
                        typed_while_down, ..
                    } => variants.insert(format!("close {typed_while_down}")),
                    _ => false,
                };
            }
            assert!(session.beats.last().is_some_and(Beat::ends), "{session:?}");
        }
        // Every middle beat, a phase beat of each kind, and every ending.
        assert!(
            kinds.len() >= 29,
            "{} kinds of beat in 40 sessions",
            kinds.len()
        );
        assert_eq!(
            variants.len(),
            5,
            "restarts with each kind of message pending, closes with and without a question \
             typed while down: {variants:?}"
        );
    }
}
