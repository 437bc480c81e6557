//! What the agents do, as data: an [`AgentScript`] answers each conversational input with a list
//! of [`Step`]s, and the engine plays them in order. Nothing here sends anything.
//!
//! [`DefaultAgent`] is the zero-configuration agent: a greeting on join, a thinking indicator
//! and a reply to every message, and the keyword triggers of spec §12 E7 (`#handoff`, `#end`, ...)
//! so that every documented flow can be reached from any client.

use std::fmt;
use std::time::Duration;

use crate::protocol::{
    Attachment, AttachmentContentType, ClientHandoffReason, HandoffQueueStatus, LiveAgent,
    ResponseSuggestion, SessionEndReason, SystemMessageLevel, TypingState, catalog,
};

/// One thing an agent does. Steps run in order; [`Step::Pause`] spaces them out in time.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Wait before the next step.
    Pause(Duration),
    /// `POLY_AGENT_JOINED` with the persona; the PolyAI agent is now present.
    Join,
    /// `POLY_AGENT_THINKING` (transient).
    Think,
    /// A PolyAI agent message: one `POLY_AGENT_MESSAGE`, or chunks when the session streams.
    Say(Reply),
    /// `POLY_AGENT_TRIGGERED_HANDOFF`.
    TriggerHandoff,
    /// `POLY_AGENT_LEFT`; the PolyAI agent is gone.
    AgentLeft,
    /// `HANDOFF_ACCEPTED`; the user is queued for a human.
    HandoffAccepted,
    /// `HANDOFF_QUEUE_STATUS` (transient).
    QueueStatus(HandoffQueueStatus),
    /// `LIVE_AGENT_JOINED`; the human is present.
    LiveAgentJoined(LiveAgent),
    /// `LIVE_AGENT_TYPING` (transient).
    LiveAgentTyping(TypingState),
    /// `LIVE_AGENT_MESSAGE` from the present human (never chunked).
    LiveAgentSays(Reply),
    /// `LIVE_AGENT_LEFT`; nobody is present.
    LiveAgentLeft,
    /// `CLIENT_HANDOFF_REQUIRED`: the client must route the user.
    ClientHandoffRequired {
        reason: ClientHandoffReason,
        queue_name: String,
    },
    /// `HANDOFF_FAILED`; nobody is present.
    HandoffFailed,
    /// `HANDOFF_TIMEOUT`; nobody is present.
    HandoffTimeout,
    /// `LANGUAGE_CHANGED` (journaled).
    LanguageChanged(String),
    /// A journaled `SYSTEM_MESSAGE`: agent, session or handoff notices (spec §10.7–10.8).
    Notice {
        level: SystemMessageLevel,
        message: String,
    },
    /// A stream that breaks: the first chunks of `reply`, then the streaming error message and
    /// no `is_complete` chunk (spec §12 E8). Without streaming, only the error message.
    InterruptedStream { reply: Reply, chunks_before: usize },
    /// `SESSION_END`, then every socket is closed with 1000.
    End(SessionEndReason),
}

/// The content of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub attachments: Vec<Attachment>,
    pub suggestions: Vec<String>,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    pub fn suggestions(&self) -> Vec<ResponseSuggestion> {
        self.suggestions
            .iter()
            .map(|s| ResponseSuggestion {
                message_text: s.clone(),
            })
            .collect()
    }
}

/// The PolyAI agent's persona (`POLY_AGENT_JOINED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persona {
    pub name: String,
    pub avatar_url: String,
}

/// Where the conversation is when an input arrives; scripts answer differently per phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The PolyAI agent is present (or joining).
    PolyAgent,
    /// Queued for a human (after `HANDOFF_ACCEPTED`, before `LIVE_AGENT_JOINED`).
    Queue,
    /// A human is present.
    LiveAgent,
}

/// How a session's agents behave. Implementations are values (data plus pure functions):
/// the engine asks, then plays the answer.
pub trait AgentScript: Send + Sync + fmt::Debug {
    fn persona(&self) -> &Persona;
    /// After the join echo: normally `Join`, `Think`, a pause, and the greeting.
    fn on_join(&self) -> Vec<Step>;
    /// After the echo of the `n`-th user message (1-based), given who is listening.
    fn on_user_message(&self, audience: Audience, text: &str, n: u32) -> Vec<Step>;
    /// How to split a streamed message into chunk texts (spec §7); the engine adds indexes.
    fn chunk_texts(&self, text: &str) -> Vec<String>;
    /// Pause between streamed chunks.
    fn chunk_interval(&self) -> Duration;
}

/// Settings of the default agent; every field has a working default.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultAgent {
    pub persona: Persona,
    pub greeting: String,
    /// Between `POLY_AGENT_THINKING` and the reply.
    pub think: Duration,
    /// Between streamed chunks.
    pub chunk_interval: Duration,
    /// Words per streamed chunk.
    pub words_per_chunk: usize,
    /// `HANDOFF_QUEUE_STATUS` updates before the live agent joins.
    pub queue_updates: u32,
    pub queue_interval: Duration,
    pub live_agent: LiveAgent,
    pub live_agent_typing: Duration,
}

impl Default for DefaultAgent {
    fn default() -> Self {
        Self {
            persona: Persona {
                name: "Ada".into(),
                avatar_url: "https://example.com/avatars/ada.png".into(),
            },
            greeting: "Hello! How can I help you today?".into(),
            think: Duration::from_millis(5),
            chunk_interval: Duration::from_millis(2),
            words_per_chunk: 3,
            queue_updates: 2,
            queue_interval: Duration::from_millis(5),
            live_agent: LiveAgent {
                id: "agent_42".into(),
                name: "Sarah".into(),
                avatar_url: "https://example.com/avatars/sarah.png".into(),
            },
            live_agent_typing: Duration::from_millis(5),
        }
    }
}

/// The keyword triggers of spec §12 E7, recognised anywhere in a user message.
pub const KEYWORDS: &[(&str, &str)] = &[
    ("#handoff", "server-managed handoff to a live agent"),
    (
        "#client_handoff",
        "client-managed handoff (CLIENT_HANDOFF_REQUIRED)",
    ),
    ("#handoff_fail", "handoff that fails (HANDOFF_FAILED)"),
    (
        "#handoff_timeout",
        "handoff that times out in the queue (HANDOFF_TIMEOUT)",
    ),
    (
        "#lang <code>",
        "LANGUAGE_CHANGED to <code>, e.g. #lang fr-FR",
    ),
    ("#attachments", "a reply with an attachment and suggestions"),
    (
        "#error <kind>",
        "an agent error: high_load, start, respond, stream",
    ),
    ("#stream_error", "a reply whose stream breaks mid-way"),
    (
        "#end",
        "the agent ends the conversation (REASON_NATURAL_END)",
    ),
];

impl DefaultAgent {
    fn think_then(&self, reply: Reply) -> Vec<Step> {
        vec![Step::Think, Step::Pause(self.think), Step::Say(reply)]
    }

    fn queue(&self) -> Vec<Step> {
        let mut steps = vec![Step::TriggerHandoff, Step::AgentLeft, Step::HandoffAccepted];
        for i in 0..self.queue_updates {
            let position = self.queue_updates - i;
            steps.push(Step::QueueStatus(HandoffQueueStatus {
                queue_name: Some("General Support".into()),
                position_in_queue: Some(position),
                estimated_wait_seconds: Some(60 * position),
            }));
            steps.push(Step::Pause(self.queue_interval));
        }
        steps
    }

    fn live_reply(&self, text: impl Into<String>) -> Vec<Step> {
        vec![
            Step::LiveAgentTyping(TypingState::Started),
            Step::Pause(self.live_agent_typing),
            Step::LiveAgentSays(Reply::text(text)),
        ]
    }

    fn agent_turn(&self, text: &str) -> Vec<Step> {
        if text.contains("#client_handoff") {
            return vec![
                Step::TriggerHandoff,
                Step::ClientHandoffRequired {
                    reason: ClientHandoffReason::ComplexQuery,
                    queue_name: "Support Queue".into(),
                },
                Step::AgentLeft,
            ];
        }
        if text.contains("#handoff_fail") {
            return vec![Step::TriggerHandoff, Step::AgentLeft, Step::HandoffFailed];
        }
        if text.contains("#handoff_timeout") {
            let mut steps = self.queue();
            steps.push(Step::HandoffTimeout);
            return steps;
        }
        if text.contains("#handoff") {
            let mut steps = self.queue();
            steps.push(Step::LiveAgentJoined(self.live_agent.clone()));
            steps.extend(self.live_reply(format!(
                "Hi, I'm {}. I've read your conversation; how can I help?",
                self.live_agent.name
            )));
            return steps;
        }
        if let Some(code) = word_after(text, "#lang") {
            let mut steps = vec![Step::LanguageChanged(code.to_owned())];
            steps.extend(self.think_then(Reply::text(format!("Language set to {code}."))));
            return steps;
        }
        if let Some(kind) = word_after(text, "#error") {
            let message = match kind {
                "start" => catalog::UNABLE_TO_START_CONVERSATION,
                "respond" => catalog::TROUBLE_RESPONDING,
                "stream" => catalog::STREAMING_ERROR,
                _ => catalog::HIGH_LOAD,
            };
            return vec![Step::Notice {
                level: SystemMessageLevel::Error,
                message: message.into(),
            }];
        }
        if text.contains("#stream_error") {
            return vec![
                Step::Think,
                Step::Pause(self.think),
                Step::InterruptedStream {
                    reply: Reply::text("This reply will not arrive in full, sorry about that."),
                    chunks_before: 2,
                },
            ];
        }
        if text.contains("#attachments") {
            return self.think_then(Reply {
                text: "Here are our locations.".into(),
                attachments: vec![Attachment {
                    title: "Our locations".into(),
                    preview_image_url: "https://example.com/locations.png".into(),
                    content_url: "https://example.com/locations".into(),
                    content_type: AttachmentContentType::Url,
                    call_to_action_text: "View locations".into(),
                }],
                suggestions: vec!["Opening hours".into(), "Talk to a human #handoff".into()],
            });
        }
        if text.contains("#end") {
            let mut steps = self.think_then(Reply::text("Thanks for chatting. Goodbye!"));
            steps.push(Step::End(SessionEndReason::NaturalEnd));
            return steps;
        }
        self.think_then(Reply::text(format!("You said: {text}")))
    }
}

/// The word following `keyword` in `text`, e.g. `fr-FR` in `"#lang fr-FR please"`.
fn word_after<'t>(text: &'t str, keyword: &str) -> Option<&'t str> {
    let (_, rest) = text.split_once(keyword)?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    rest.split_whitespace().next()
}

impl AgentScript for DefaultAgent {
    fn persona(&self) -> &Persona {
        &self.persona
    }

    fn on_join(&self) -> Vec<Step> {
        let mut steps = vec![Step::Join];
        steps.extend(self.think_then(Reply {
            text: self.greeting.clone(),
            attachments: Vec::new(),
            suggestions: vec![
                "I have a question".into(),
                "Talk to a human #handoff".into(),
            ],
        }));
        steps
    }

    fn on_user_message(&self, audience: Audience, text: &str, _n: u32) -> Vec<Step> {
        match audience {
            Audience::PolyAgent => self.agent_turn(text),
            // Held for the live agent (spec §12 E5).
            Audience::Queue => Vec::new(),
            Audience::LiveAgent if text.contains("#end") => {
                vec![Step::LiveAgentLeft, Step::End(SessionEndReason::NaturalEnd)]
            }
            Audience::LiveAgent => self.live_reply(format!("(live) You said: {text}")),
        }
    }

    fn chunk_texts(&self, text: &str) -> Vec<String> {
        split_words(text, self.words_per_chunk)
    }

    fn chunk_interval(&self) -> Duration {
        self.chunk_interval
    }
}

/// Splits `text` into pieces of `words` words, keeping every character (the pieces concatenate
/// back to `text`). An empty text gives one empty piece.
pub fn split_words(text: &str, words: usize) -> Vec<String> {
    let words = words.max(1);
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut seen = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                seen += 1;
                in_word = false;
            }
        } else {
            if !in_word && seen == words {
                pieces.push(text[start..i].to_owned());
                start = i;
                seen = 0;
            }
            in_word = true;
        }
    }
    pieces.push(text[start..].to_owned());
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_words_keeps_every_character() {
        let text = "I'd be happy to help you with your booking!";
        let pieces = split_words(text, 3);
        assert_eq!(
            pieces,
            ["I'd be happy ", "to help you ", "with your booking!"]
        );
        assert_eq!(pieces.concat(), text);
        assert_eq!(split_words("", 3), [""]);
        assert_eq!(split_words("one", 3), ["one"]);
        assert_eq!(split_words("  a  b ", 1), ["  a  ", "b "]);
    }

    #[test]
    fn keywords_select_their_flows() {
        let agent = DefaultAgent::default();
        let steps = agent.on_user_message(Audience::PolyAgent, "please #handoff", 1);
        assert_eq!(
            steps[..3],
            [Step::TriggerHandoff, Step::AgentLeft, Step::HandoffAccepted]
        );
        assert!(steps.contains(&Step::LiveAgentJoined(agent.live_agent.clone())));

        let steps = agent.on_user_message(Audience::PolyAgent, "#client_handoff", 1);
        assert!(matches!(steps[1], Step::ClientHandoffRequired { .. }));
        assert_eq!(steps[2], Step::AgentLeft);

        let steps = agent.on_user_message(Audience::PolyAgent, "#lang fr-FR", 1);
        assert_eq!(steps[0], Step::LanguageChanged("fr-FR".into()));

        let steps = agent.on_user_message(Audience::PolyAgent, "#error high_load", 1);
        assert_eq!(
            steps,
            [Step::Notice {
                level: SystemMessageLevel::Error,
                message: catalog::HIGH_LOAD.into()
            }]
        );

        let steps = agent.on_user_message(Audience::PolyAgent, "hello", 1);
        assert_eq!(steps[0], Step::Think);
        assert_eq!(steps[2], Step::Say(Reply::text("You said: hello")));

        assert!(
            agent
                .on_user_message(Audience::Queue, "hello", 2)
                .is_empty()
        );
        let steps = agent.on_user_message(Audience::LiveAgent, "#end", 3);
        assert_eq!(
            steps,
            [Step::LiveAgentLeft, Step::End(SessionEndReason::NaturalEnd)]
        );
    }
}
