//! The protocol rules the proxy checks on live traffic, both ways: server frames against the
//! envelope (spec §4.2) and the server's own rules (sequences increase, batches hold events,
//! echoes carry ids), client frames with the mock's own strict decoder (spec §11 WS-5, WS-7)
//! and REST calls against AUTH-1 and AUTH-2.

use axum::http::HeaderMap;
use serde_json::Value;

use serde::Deserialize as _;

use crate::protocol::ServerEvent;
use crate::protocol::{
    ClientFrameError, DecodeOptions, RawFrame, ServerEnvelope, decode_client_frame,
};

/// One broken rule: its name and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub rule: &'static str,
    pub detail: String,
}

fn broken(rule: &'static str, detail: impl Into<String>) -> Broken {
    Broken {
        rule,
        detail: detail.into(),
    }
}

/// Close codes a server of this protocol gives a meaning (spec §12 D1, Appendix A).
pub const KNOWN_CLOSE_CODES: [u16; 9] = [1000, 1001, 1002, 1007, 1008, 1009, 1011, 4001, 4002];

/// What the server frames of one connection must keep: sequences increase. An event sent
/// again (the same sequence and id) is a duplicate, which clients must absorb (spec §11
/// MSG-2) but a user of the proxy wants to know about; an older sequence with a new id is
/// out of order.
#[derive(Debug, Default)]
pub struct ServerRules {
    last_live: Option<u64>,
    /// The id of each sequence seen on this connection (the newest [`SEQUENCES_KEPT`]).
    seen: std::collections::BTreeMap<u64, String>,
}

const SEQUENCES_KEPT: usize = 4096;

impl ServerRules {
    /// Every rule a server frame breaks (none: a good frame).
    pub fn check(&mut self, text: &str) -> Vec<Broken> {
        self.check_frame(text).broken
    }

    /// [`ServerRules::check`], with what the journal needs to know of the frame (parsed once).
    pub fn check_frame(&mut self, text: &str) -> Checked {
        let value: Value = match serde_json::from_str(text) {
            Ok(value @ Value::Object(_)) => value,
            Ok(_) => {
                let not_object = broken("server-frame-json", "not a JSON object");
                return Checked {
                    json: true,
                    ..Checked::broken(not_object)
                };
            }
            Err(error) => return Checked::broken(broken("server-frame-json", error.to_string())),
        };
        let mut out = Vec::new();
        if let Err(error) = ServerEnvelope::deserialize(&value) {
            out.push(broken("server-envelope", error.to_string()));
        }
        if let Some(broken) = self.order(&value) {
            out.push(broken);
        }
        out.extend(event_rules(&value));
        if value["type"] == ServerEvent::EVENT_BATCH {
            match value["payload"]["events"].as_array() {
                None => out.push(broken("server-batch", "payload.events is not an array")),
                Some(events) => {
                    for event in events {
                        if let Err(error) = ServerEnvelope::deserialize(event) {
                            out.push(broken("server-batch", format!("an event: {error}")));
                        }
                        if let Some(broken) = self.order(event) {
                            out.push(broken);
                        }
                        out.extend(event_rules(event));
                    }
                }
            }
        }
        let batch = value["type"] == ServerEvent::EVENT_BATCH;
        Checked {
            broken: out,
            id: value["id"].as_str().map(str::to_owned),
            batch,
            json: true,
        }
    }
}

/// A checked server frame: the rules it breaks, its id and whether it is a replay batch.
#[derive(Debug, Default)]
pub struct Checked {
    pub broken: Vec<Broken>,
    pub id: Option<String>,
    pub batch: bool,
    /// The frame parsed as JSON (an object or not).
    pub json: bool,
}

impl Checked {
    fn broken(broken: Broken) -> Self {
        Self {
            broken: vec![broken],
            ..Self::default()
        }
    }
}

impl ServerRules {
    /// The ordering rule an event with a sequence breaks, if any; remembers it.
    fn order(&mut self, event: &Value) -> Option<Broken> {
        let sequence = event["sequence"].as_u64()?;
        let id = event["id"].as_str().unwrap_or_default();
        let verdict = match (self.last_live, self.seen.get(&sequence)) {
            (_, Some(seen)) if seen == id => Some(broken(
                "server-duplicate",
                format!("sequence {sequence} (id {id}) sent again"),
            )),
            (Some(last), _) if sequence <= last => Some(broken(
                "server-sequence",
                format!("sequence {sequence} after {last} on this connection"),
            )),
            _ => None,
        };
        self.last_live = Some(self.last_live.map_or(sequence, |l| l.max(sequence)));
        self.seen.insert(sequence, id.to_owned());
        if self.seen.len() > SEQUENCES_KEPT {
            self.seen.pop_first();
        }
        verdict
    }
}

/// Rules of one event, live or inside a batch.
fn event_rules(event: &Value) -> Vec<Broken> {
    let mut out = Vec::new();
    let kind = event["type"].as_str().unwrap_or_default();
    if kind == ServerEvent::USER_MESSAGE
        && event["payload"]["message_id"]
            .as_str()
            .is_none_or(str::is_empty)
    {
        out.push(broken(
            "server-echo-id",
            "a USER_MESSAGE echo without payload.message_id",
        ));
    }
    if event["sequence"].is_null() && event["id"].as_str().is_none_or(str::is_empty) {
        out.push(broken("server-envelope", "no id"));
    }
    out
}

/// The rule a server's close code breaks, if any.
pub fn close_code(code: u16) -> Option<Broken> {
    (!KNOWN_CLOSE_CODES.contains(&code)).then(|| {
        broken(
            "server-close-code",
            format!("close code {code} has no meaning in this protocol"),
        )
    })
}

/// The rule a client frame breaks (WS-5, WS-7), if any.
pub fn client_frame(frame: RawFrame<'_>, options: &DecodeOptions) -> Option<Broken> {
    decode_client_frame(frame, options).err().map(|rejection| {
        let rule = match rejection.error {
            ClientFrameError::TooLarge { .. } => "WS-7",
            _ => "WS-5",
        };
        broken(rule, rejection.error.to_string())
    })
}

/// The rules a REST call's headers break (AUTH-1, AUTH-2).
pub fn rest_call(path: &str, headers: &HeaderMap) -> Vec<Broken> {
    let has = |name: &str| headers.get(name).is_some_and(|v| !v.is_empty());
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut out = Vec::new();
    match path {
        "/api/v1/access-token" => {
            for name in ["x-token", "x-host"] {
                if !has(name) {
                    out.push(broken("AUTH-1", format!("no {name} header")));
                }
            }
        }
        "/api/v1/sessions" => {
            let bearer = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7);
            if !bearer {
                out.push(broken("AUTH-2", "no `Authorization: Bearer <token>`"));
            }
            if !json {
                out.push(broken("AUTH-2", "no `Content-Type: application/json`"));
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(sequence: Option<u64>, kind: &str, payload: Value) -> String {
        serde_json::json!({
            "id": "e", "sequence": sequence, "timestamp": "2026-01-01T00:00:00.000Z",
            "type": kind, "payload": payload
        })
        .to_string()
    }

    #[test]
    fn server_frames_in_order_pass_and_each_broken_rule_is_named() {
        let mut rules = ServerRules::default();
        let joined = frame(
            Some(1),
            "EVENT_TYPE_POLY_AGENT_JOINED",
            serde_json::json!({"agent_name": "A", "agent_avatar_url": "u"}),
        );
        assert_eq!(rules.check(&joined), vec![]);
        let echo = frame(
            Some(2),
            "EVENT_TYPE_USER_MESSAGE",
            serde_json::json!({"message_id": "m", "text": "hi"}),
        );
        assert_eq!(rules.check(&echo), vec![]);
        // Negative controls, one per rule.
        let rules_of = |rules: &mut ServerRules, text: &str| -> Vec<&'static str> {
            rules.check(text).into_iter().map(|b| b.rule).collect()
        };
        assert_eq!(rules_of(&mut rules, &joined), ["server-duplicate"]);
        let older = frame(Some(1), "EVENT_TYPE_HEARTBEAT", serde_json::json!({}))
            .replace("\"id\":\"e\"", "\"id\":\"other\"");
        assert_eq!(rules_of(&mut rules, &older), ["server-sequence"]);
        let no_id = frame(
            Some(9),
            "EVENT_TYPE_USER_MESSAGE",
            serde_json::json!({"text": "hi"}),
        );
        assert!(rules_of(&mut rules, &no_id).contains(&"server-echo-id"));
        assert_eq!(rules_of(&mut rules, "[1]"), ["server-frame-json"]);
        let envelope = rules_of(&mut rules, r#"{"type": 3}"#);
        assert!(!envelope.is_empty() && envelope.iter().all(|r| *r == "server-envelope"));
        let batch = frame(
            None,
            "EVENT_TYPE_EVENT_BATCH",
            serde_json::json!({"events": 3}),
        );
        assert!(rules_of(&mut rules, &batch).contains(&"server-batch"));
        assert_eq!(close_code(1000), None);
        assert_eq!(close_code(3999).map(|b| b.rule), Some("server-close-code"));
    }

    #[test]
    fn client_frames_and_rest_calls_are_judged_as_the_kit_does() {
        let options = DecodeOptions::default();
        let good = r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{}}"#;
        assert_eq!(client_frame(RawFrame::Text(good), &options), None);
        let bad = client_frame(
            RawFrame::Text("{\"type\":\"EVENT_TYPE_NOPE\",\"payload\":{}}"),
            &options,
        );
        assert_eq!(bad.map(|b| b.rule), Some("WS-5"));
        let mut headers = HeaderMap::new();
        assert_eq!(rest_call("/api/v1/access-token", &headers).len(), 2);
        headers.insert("x-token", "t".parse().expect("a header"));
        headers.insert("x-host", "h".parse().expect("a header"));
        assert_eq!(rest_call("/api/v1/access-token", &headers), vec![]);
        assert_eq!(rest_call("/api/v1/sessions", &headers).len(), 2);
    }
}
