//! The case catalogue: each case names the scenario it runs, what the user does, and which
//! obligations it checks.

use mock_server::Config;

use crate::checks::{self, Check};
use crate::contract::View;

/// What the user does, step by step.
#[derive(Debug, Clone)]
pub enum Step {
    Start,
    Send(&'static str),
    /// Taps suggestion 0 under the first agent message.
    TapFirstSuggestion,
    /// Waits (up to 10 s) until the view shows `what`.
    WaitFor(&'static str, fn(&View) -> bool),
    /// Watches the view for up to `ms`: the evidence records whether `what` was ever shown.
    Observe(&'static str, u64, fn(&View) -> bool),
    Sleep(u64),
    End,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub id: &'static str,
    pub description: &'static str,
    /// The mock scenario, selected through the connector token `scenario:<name>`.
    pub scenario: &'static str,
    pub streaming: bool,
    /// Adjusts the mock (e.g. a short advertised heartbeat interval).
    pub mock: fn(&mut Config),
    pub steps: Vec<Step>,
    pub checks: Vec<(&'static str, Check)>,
}

impl Case {
    /// Cases that wait on purpose (heartbeat cadence, backoff, a 5 s resend, an expired
    /// session) are left out of the quick profile.
    pub fn is_slow(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, Step::Sleep(ms) if *ms >= 2_000))
            || self.id == "lost-message"
    }
}

fn unchanged(_: &mut Config) {}

/// 140 000 characters: over the 128 KiB frame limit once framed.
const OVERSIZED: &str = include_str!("oversized.txt");

fn has_text(view: &View, text: &str) -> bool {
    view.messages
        .iter()
        .flatten()
        .any(|m| m.text == text && m.complete)
}

fn has_agent_message(view: &View) -> bool {
    view.messages
        .iter()
        .flatten()
        .any(|m| m.from == "agent" && m.complete)
}

fn closed(view: &View) -> bool {
    view.connection.as_deref() == Some("closed") || view.ended.clone().flatten().is_some()
}

pub fn catalogue() -> Vec<Case> {
    use Step::*;
    vec![
        Case {
            id: "new-session",
            description: "A new session from start to a user-ended finish.",
            scenario: "playground",
            streaming: false,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send("hello"),
                WaitFor("the reply", |v| has_text(v, "You said: hello")),
                End,
                WaitFor("the end", closed),
                Sleep(1_500),
            ],
            checks: vec![
                ("AUTH-1", checks::calls_access_token_as_documented as Check),
                ("AUTH-2", checks::creates_sessions_as_documented),
                ("WS-1", checks::opens_the_socket_with_both_parameters),
                ("WS-3", checks::joins_a_new_session_once),
                ("WS-5", checks::sends_only_valid_client_frames),
                ("WS-6", checks::sends_only_valid_client_frames),
                ("UX-4", checks::stops_after_session_end),
                ("AUTH-4", checks::not_observable_by_a_mock),
                ("SEC-1", checks::not_observable_by_a_mock),
            ],
        },
        Case {
            id: "rest-failures",
            description: "The first access-token and session calls answer 500.",
            scenario: "playground",
            streaming: false,
            mock: |c| {
                c.http_failures = mock_server::http_log::HttpFailures {
                    access_token: 1,
                    sessions: 1,
                    ..Default::default()
                }
            },
            steps: vec![Start, WaitFor("the greeting", has_agent_message)],
            checks: vec![(
                "AUTH-5",
                checks::backs_off_and_retries_rest_failures as Check,
            )],
        },
        Case {
            id: "swapped-chunks",
            description: "The first two chunks of a streamed reply arrive swapped.",
            scenario: "faults/swapped-chunks",
            streaming: true,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send("a poem please"),
                WaitFor("the poem", |v| {
                    v.messages
                        .iter()
                        .flatten()
                        .any(|m| m.text.contains("sorted by you") && m.complete)
                }),
            ],
            checks: vec![(
                "MSG-4",
                checks::assembles_swapped_chunks_in_index_order as Check,
            )],
        },
        Case {
            id: "late-attachments",
            description: "A streamed reply whose empty final chunk carries an image and a suggestion.",
            scenario: "lifecycle/streaming-conversation",
            streaming: true,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send("What's on the menu?"),
                WaitFor("the menu", |v| has_text(v, "Here is today's menu.")),
            ],
            checks: vec![("MSG-4", checks::keeps_the_final_chunks_extras as Check)],
        },
        Case {
            id: "join-timing",
            description: "The history is held back 300 ms: the join must wait for it.",
            scenario: "playground",
            streaming: false,
            mock: |c| c.replay_delay_ms = 300,
            steps: vec![Start, WaitFor("the greeting", has_agent_message)],
            checks: vec![
                ("WS-2", checks::joins_after_the_history as Check),
                ("WS-3", checks::joins_a_new_session_once),
            ],
        },
        Case {
            id: "reconnect-mid-stream",
            description: "The socket drops mid-stream; the client resumes the same session from its cursor.",
            scenario: "faults/drop-mid-stream",
            streaming: true,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send("tell me a story"),
                WaitFor("the whole story", |v| {
                    has_text(
                        v,
                        "Once upon a time there was a mock server that never lost a chunk.",
                    )
                }),
            ],
            checks: vec![
                ("RC-1", checks::reconnects_to_the_same_session as Check),
                ("RC-2", checks::reconnects_with_the_last_cursor),
                ("WS-4", checks::does_not_rejoin_on_reconnect),
                ("MSG-4", checks::assembles_the_streamed_story),
            ],
        },
        Case {
            id: "live-delivery",
            description: "Duplicated, swapped and omitted live events, then the history re-sent as a batch.",
            scenario: "faults/live-delivery",
            streaming: false,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send("one"),
                WaitFor("a reply", |v| has_text(v, "This reply arrives twice.")),
                Send("two"),
                WaitFor("the swapped replies", |v| {
                    has_text(v, "First, but delivered second.")
                }),
                Send("three"),
                WaitFor("the live reply", |v| has_text(v, "This one arrives live.")),
                Send("four"),
                Sleep(500),
            ],
            checks: vec![
                ("MSG-1", checks::shows_what_only_a_batch_carried as Check),
                ("MSG-2", checks::shows_each_message_once),
                ("MSG-3", checks::shows_messages_in_sequence_order),
            ],
        },
        Case {
            id: "heartbeat",
            description: "The mock advertises a 1 s heartbeat interval.",
            scenario: "playground",
            streaming: false,
            mock: |c| c.heartbeat_interval_seconds = 1,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Sleep(3_500),
            ],
            checks: vec![
                ("HB-1", checks::sends_heartbeats as Check),
                ("HB-2", checks::heartbeats_at_the_advertised_interval),
            ],
        },
        Case {
            id: "tolerance",
            description: "An undocumented event type, unknown fields and a null sequence arrive.",
            scenario: "faults/tolerance",
            streaming: false,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send("one"),
                WaitFor("the null-sequence reply", |v| {
                    has_text(v, "This reply has a null sequence.")
                }),
                Sleep(300),
            ],
            checks: vec![
                ("ERR-2", checks::survives_unknown_events as Check),
                ("MSG-3", checks::survives_unknown_events),
            ],
        },
        Case {
            id: "error-messages",
            description: "Every agent error of spec §10.7, then an ordinary reply.",
            scenario: "errors/agent-errors",
            streaming: false,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send("message 1"),
                Send("message 2"),
                Send("message 3"),
                Send("message 4"),
                Send("message 5"),
                WaitFor("the reply after the errors", |v| {
                    has_text(v, "You said: message 5")
                }),
            ],
            checks: vec![
                ("ERR-1", checks::goes_on_after_errors as Check),
                ("ERR-1", checks::keeps_the_socket_open),
            ],
        },
        Case {
            id: "oversized-message",
            description: "The user sends a message larger than the advertised frame limit.",
            scenario: "playground",
            streaming: false,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send(OVERSIZED),
                Send("still here"),
                WaitFor("the reply", |v| has_text(v, "You said: still here")),
            ],
            checks: vec![("WS-7", checks::keeps_frames_within_the_size_limit as Check)],
        },
        Case {
            id: "lost-message",
            description: "A user message is lost on the way (no echo): it must be sent again.",
            scenario: "faults/delayed-and-lost-echo",
            streaming: false,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send("one"),
                WaitFor("the first reply", |v| {
                    has_text(v, "The next echo will be late.")
                }),
                Send("two"),
                WaitFor("the second reply", |v| {
                    has_text(v, "And the next message will be lost.")
                }),
                Send("three"),
                WaitFor("the reply to the resent message", |v| {
                    has_text(v, "You said: three")
                }),
            ],
            checks: vec![("MSG-5", checks::resends_unechoed_messages as Check)],
        },
        Case {
            id: "unreachable",
            description: "After a drop every handshake is refused: back off, then give up.",
            scenario: "faults/unreachable-after-drop",
            streaming: false,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send("hi"),
                Sleep(9_000),
            ],
            checks: vec![
                ("RC-3", checks::backs_off_between_reconnects as Check),
                ("RC-4", checks::stops_after_max_reconnect_attempts),
            ],
        },
        Case {
            id: "session-expired",
            description: "The socket drops and the session expires: the reconnect gets 404.",
            scenario: "faults/session-expired-during-drop",
            streaming: false,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send("hi"),
                Sleep(2_500),
            ],
            checks: vec![
                ("RC-5", checks::starts_over_after_session_not_found as Check),
                ("AUTH-3", checks::fresh_token_per_session),
            ],
        },
        Case {
            id: "typing-indicator",
            description: "The agent thinks for 1.5 s before replying: the app shows it typing.",
            scenario: "timing/slow-thinker",
            streaming: false,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send("hmm"),
                Observe(checks::TYPING_SHOWN, 1_400, |v| {
                    v.typing.is_some_and(|t| t.agent)
                }),
                WaitFor("the reply", |v| has_text(v, "After some thought: hmm")),
            ],
            checks: vec![(
                "UX-1",
                checks::shows_and_clears_the_typing_indicator as Check,
            )],
        },
        Case {
            id: "suggestions",
            description: "The user taps a response suggestion of the greeting.",
            scenario: "playground",
            streaming: false,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                TapFirstSuggestion,
                WaitFor("the reply", |v| has_text(v, "You said: I have a question")),
            ],
            checks: vec![("UX-2", checks::sends_tapped_suggestions as Check)],
        },
        Case {
            id: "server-handoff",
            description: "A server-managed handoff to a live agent with queue updates.",
            scenario: "handoff/server-managed",
            streaming: false,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send("I want a human"),
                WaitFor("the live agent", |v| {
                    v.messages.iter().flatten().any(|m| m.from == "live_agent")
                }),
            ],
            checks: vec![("UX-3", checks::shows_the_handoff as Check)],
        },
        Case {
            id: "client-handoff",
            description: "A client-managed handoff.",
            scenario: "handoff/client-managed",
            streaming: false,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send("I want a refund"),
                WaitFor("the routing", |v| {
                    v.handoff.as_deref() == Some("client_required")
                }),
            ],
            checks: vec![("UX-5", checks::routes_a_client_handoff as Check)],
        },
        Case {
            id: "language",
            description: "The agent switches to French.",
            scenario: "lifecycle/language-change",
            streaming: false,
            mock: unchanged,
            steps: vec![
                Start,
                WaitFor("the greeting", has_agent_message),
                Send("On peut parler en français ?"),
                WaitFor("the French reply", |v| {
                    has_text(v, "Bien sûr, continuons en français.")
                }),
            ],
            checks: vec![("UX-6", checks::applies_the_language as Check)],
        },
    ]
}
