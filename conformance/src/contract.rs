//! The driver contract (`docs/driver-contract.md`), as types: the commands the runner
//! sends, the replies a driver gives, and the view it reports. Field names are the contract's.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A command line on the driver's stdin (§3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandLine {
    pub id: u64,
    #[serde(flatten)]
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    Start { streaming: bool },
    Send { text: String },
    Typing { state: TypingChange },
    TapSuggestion { message_id: String, index: usize },
    End,
    View,
    Restart,
    Exit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TypingChange {
    Started,
    Stopped,
}

/// A driver's answer to one command (§2): success (with a view for `view`), a failure the app
/// would show, or "not supported".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyLine {
    pub re: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsupported: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<View>,
}

/// What a reply means, once read.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ok(Option<Box<View>>),
    Failed(String),
    Unsupported,
}

impl ReplyLine {
    pub fn of(re: u64, reply: Reply) -> Self {
        let mut line = Self {
            re,
            ok: None,
            error: None,
            unsupported: None,
            view: None,
        };
        match reply {
            Reply::Ok(view) => {
                line.ok = Some(true);
                line.view = view.map(|v| *v);
            }
            Reply::Failed(error) => {
                line.ok = Some(false);
                line.error = Some(error);
            }
            Reply::Unsupported => line.unsupported = Some(true),
        }
        line
    }

    pub fn reply(self) -> Reply {
        if self.unsupported == Some(true) {
            return Reply::Unsupported;
        }
        match self.ok {
            Some(true) => Reply::Ok(self.view.map(Box::new)),
            _ => Reply::Failed(
                self.error
                    .unwrap_or_else(|| "failed without a reason".into()),
            ),
        }
    }
}

/// The first line a driver prints (§2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadyLine {
    pub ready: bool,
    pub name: String,
    pub version: String,
}

/// A field that is present, `null` or not: `Some(None)` for `null`, so a view read from a
/// driver keeps the difference between "not set" (`null`) and "not observable" (absent).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The state of the app's connection (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    Connecting,
    Open,
    Reconnecting,
    Closed,
}

/// Where a handoff stands (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HandoffState {
    None,
    Triggered,
    Accepted,
    Live,
    ClientRequired,
    Failed,
    Timeout,
    Ended,
}

/// Who wrote a message (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    User,
    Agent,
    LiveAgent,
}

/// Where a user's message stands (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Sending,
    Sent,
    Failed,
}

/// What the app shows (§4). Fields a driver cannot observe are `None` (omitted); a field that
/// can be `null` is `Some(None)` when the driver says `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct View {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionState>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub session_id: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub agent: Option<Option<ViewAgent>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub live_agent: Option<Option<ViewLiveAgent>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typing: Option<ViewTyping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ViewMessage>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<HandoffState>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub queue: Option<Option<ViewQueue>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub client_handoff: Option<Option<ViewClientHandoff>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub language: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_messages: Option<Vec<ViewSystemMessage>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub ended: Option<Option<ViewEnded>>,
}

impl View {
    /// The messages, when the driver reports them.
    pub fn messages(&self) -> Option<&[ViewMessage]> {
        self.messages.as_deref()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ViewAgent {
    pub name: String,
    pub avatar_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ViewLiveAgent {
    pub id: String,
    pub name: String,
    pub avatar_url: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ViewTyping {
    pub agent: bool,
    pub live_agent: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ViewMessage {
    /// `null` while unsent.
    pub message_id: Option<String>,
    pub from: Author,
    pub text: String,
    /// The protocol's attachment objects.
    #[serde(default)]
    pub attachments: Vec<Value>,
    /// The `message_text` of each suggestion.
    #[serde(default)]
    pub suggestions: Vec<String>,
    pub complete: bool,
    /// `null` for messages not sent by the user.
    pub status: Option<MessageStatus>,
}

/// `HANDOFF_QUEUE_STATUS` as shown; every field optional, as in the protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ViewQueue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_in_queue: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<u64>,
}

/// `CLIENT_HANDOFF_REQUIRED` as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ViewClientHandoff {
    pub reason: String,
    pub queue_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ViewSystemMessage {
    pub level: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ViewEnded {
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_and_reply_lines_match_the_contract_examples() {
        let line: CommandLine =
            serde_json::from_str(r#"{"id": 7, "cmd": "send", "text": "hi"}"#).expect("parses");
        assert_eq!(line.command, Command::Send { text: "hi".into() });
        let start: CommandLine =
            serde_json::from_str(r#"{"id": 1, "cmd": "start", "streaming": true}"#)
                .expect("parses");
        assert_eq!(start.command, Command::Start { streaming: true });
        assert_eq!(
            serde_json::to_string(&ReplyLine::of(7, Reply::Ok(None))).expect("encodes"),
            r#"{"re":7,"ok":true}"#
        );
        assert_eq!(
            serde_json::to_string(&ReplyLine::of(7, Reply::Failed("no network".into())))
                .expect("encodes"),
            r#"{"re":7,"ok":false,"error":"no network"}"#
        );
        assert_eq!(
            serde_json::to_string(&ReplyLine::of(7, Reply::Unsupported)).expect("encodes"),
            r#"{"re":7,"unsupported":true}"#
        );
        let unsupported: ReplyLine =
            serde_json::from_str(r#"{"re": 3, "unsupported": true}"#).expect("parses");
        assert_eq!(unsupported.reply(), Reply::Unsupported);
    }

    #[test]
    fn a_view_with_nulls_and_omissions_round_trips() {
        let json = r#"{"connection":"open","session_id":null,"agent":{"name":"Ada","avatar_url":"a"},"messages":[],"ended":null}"#;
        let view: View = serde_json::from_str(json).expect("parses");
        assert_eq!(
            view.session_id,
            Some(None),
            "null is kept apart from absent"
        );
        assert_eq!(view.ended, Some(None));
        assert_eq!(view.language, None, "absent: not observable");
        assert_eq!(
            view.agent,
            Some(Some(ViewAgent {
                name: "Ada".into(),
                avatar_url: "a".into()
            }))
        );
        assert_eq!(view.typing, None, "omitted: not observable");
        assert_eq!(view.connection, Some(ConnectionState::Open));
    }

    #[test]
    fn a_view_outside_the_contract_is_refused_with_the_field_named() {
        let error = serde_json::from_str::<View>(r#"{"connection":"connected"}"#)
            .expect_err("not a connection state")
            .to_string();
        assert!(error.contains("connected"), "{error}");
        let error = serde_json::from_str::<View>(
            r#"{"messages":[{"message_id":null,"from":"bot","text":"x","complete":true,"status":null}]}"#,
        )
        .expect_err("not an author")
        .to_string();
        assert!(error.contains("bot"), "{error}");
    }
}
