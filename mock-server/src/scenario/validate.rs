//! Stage two: a [`ScenarioFile`] becomes a [`Script`], or an error that names the JSON pointer
//! and what is wrong there.

use std::time::Duration;

use regex::Regex;

use super::ScenarioError;
use super::raw::*;
use super::script::*;
use crate::protocol::{HandoffQueueStatus, SystemMessageLevel, catalog};

struct Checker<'a> {
    file: &'a str,
}

impl Checker<'_> {
    fn error(&self, pointer: impl Into<String>, problem: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: self.file.to_owned(),
            pointer: pointer.into(),
            problem: problem.into(),
        }
    }
}

/// Validates `raw` (read from `file`, named `name`).
pub fn validate(name: &str, file: &str, raw: &ScenarioFile) -> Result<Script, ScenarioError> {
    let check = Checker { file };
    if raw.description.trim().is_empty() {
        return Err(check.error("/description", "must say what the scenario reproduces"));
    }
    let persona = persona_of(&check, raw.persona.as_ref())?;
    let capabilities = capabilities_of(&check, &raw.capabilities)?;
    let pacing = pacing_of(&check, &raw.pacing)?;
    let think = ms(raw.pacing.think_ms);
    let typing = ms(raw.pacing.live_typing_ms);
    let rules = rules_of(&check, raw, think)?;
    let fallback_agent = match &raw.fallback.agent {
        Some(steps) => steps_of(&check, "/fallback/agent", steps)?,
        None => vec![
            Step::Think,
            Step::Pause(think),
            Step::Say(Reply::text("You said: $0")),
        ]
        .into_iter()
        .map(TemplateStep)
        .collect(),
    };
    let fallback_live_agent = match &raw.fallback.live_agent {
        Some(steps) => steps_of(&check, "/fallback/live_agent", steps)?,
        None => vec![
            Step::LiveAgentTyping(crate::protocol::TypingState::Started),
            Step::Pause(typing),
            Step::LiveAgentSays(Reply::text("(live) You said: $0")),
        ]
        .into_iter()
        .map(TemplateStep)
        .collect(),
    };

    Ok(Script {
        name: name.to_owned(),
        description: raw.description.clone(),
        persona,
        capabilities,
        pacing,
        seed: raw.seed,
        rules,
        fallback_agent,
        fallback_live_agent,
        think,
    })
}

/// The agent's persona: the file's, with a name, or the default Ada.
fn persona_of(check: &Checker<'_>, raw: Option<&RawPersona>) -> Result<Persona, ScenarioError> {
    Ok(match raw {
        Some(p) if p.name.trim().is_empty() => {
            return Err(check.error("/persona/name", "must not be empty"));
        }
        Some(p) => Persona {
            name: p.name.clone(),
            avatar_url: p.avatar_url.clone(),
        },
        None => Persona {
            name: "Ada".into(),
            avatar_url: "https://example.com/avatars/ada.png".into(),
        },
    })
}

/// The capabilities the scenario overrides; a message size limit is at least 1024 bytes.
fn capabilities_of(
    check: &Checker<'_>,
    raw: &RawCapabilities,
) -> Result<CapabilityOverrides, ScenarioError> {
    if let Some(size) = raw.max_message_size_bytes
        && size < 1024
    {
        return Err(check.error(
            "/capabilities/max_message_size_bytes",
            "must be at least 1024",
        ));
    }
    Ok(CapabilityOverrides {
        max_message_size_bytes: raw.max_message_size_bytes,
        max_reconnect_attempts: raw.max_reconnect_attempts,
        heartbeat_interval_seconds: raw.heartbeat_interval_seconds,
    })
}

/// How streamed text is cut and paced; at least one word per chunk.
fn pacing_of(check: &Checker<'_>, raw: &RawPacing) -> Result<Pacing, ScenarioError> {
    if raw.words_per_chunk == 0 {
        return Err(check.error("/pacing/words_per_chunk", "must be at least 1"));
    }
    Ok(Pacing {
        chunk_interval: ms(raw.chunk_interval_ms),
        words_per_chunk: raw.words_per_chunk,
    })
}

/// The file's rules, plus a `join` rule (joining, then the greeting) when it has none; a
/// greeting beside a `join` rule of the file's own is an error.
fn rules_of(
    check: &Checker<'_>,
    raw: &ScenarioFile,
    think: Duration,
) -> Result<Vec<Rule>, ScenarioError> {
    let mut rules = Vec::with_capacity(raw.rules.len() + 1);
    for (i, rule) in raw.rules.iter().enumerate() {
        let at = format!("/rules/{i}");
        rules.push(rule_of(check, &at, rule)?);
    }
    let has_join_rule = rules.iter().any(|r| matches!(r.trigger, Trigger::Join));
    if !has_join_rule {
        let mut steps = vec![Step::Join];
        if let Some(greeting) = &raw.greeting {
            steps.extend([
                Step::Think,
                Step::Pause(think),
                Step::Say(reply_of(greeting)),
            ]);
        }
        rules.push(Rule {
            trigger: Trigger::Join,
            steps: steps.into_iter().map(TemplateStep).collect(),
            once: false,
            probability: None,
        });
    } else if raw.greeting.is_some() {
        return Err(check.error(
            "/greeting",
            "give the greeting in the `join` rule's steps, or drop that rule",
        ));
    }
    Ok(rules)
}

/// Validates steps pushed from outside a scenario file (the control API); `source` names
/// them in errors.
pub fn validate_steps(source: &str, raw: &[RawStep]) -> Result<Vec<Step>, ScenarioError> {
    let check = Checker { file: source };
    Ok(steps_of(&check, "", raw)?
        .into_iter()
        .map(|TemplateStep(step)| step)
        .collect())
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn rule_of(check: &Checker<'_>, at: &str, rule: &RawRule) -> Result<Rule, ScenarioError> {
    if let Some(p) = rule.probability
        && !(0.0..=1.0).contains(&p)
    {
        return Err(check.error(
            format!("{at}/probability"),
            format!("must be within 0..1, got {p}"),
        ));
    }
    let trigger = match &rule.when {
        RawTrigger::Join => Trigger::Join,
        RawTrigger::Reconnect => Trigger::Reconnect,
        RawTrigger::AfterMs(delay) => Trigger::After(ms(*delay)),
        RawTrigger::NthMessage(0) => {
            return Err(check.error(format!("{at}/when/nth_message"), "counts from 1"));
        }
        RawTrigger::NthMessage(n) => Trigger::NthMessage(*n),
        RawTrigger::Message(m) => {
            let at = format!("{at}/when/message");
            let given = [m.equals.is_some(), m.contains.is_some(), m.regex.is_some()]
                .iter()
                .filter(|g| **g)
                .count();
            if given > 1 {
                return Err(check.error(at, "give at most one of `equals`, `contains`, `regex`"));
            }
            let text = if let Some(e) = &m.equals {
                TextMatch::Equals(e.clone())
            } else if let Some(c) = &m.contains {
                TextMatch::Contains(c.clone())
            } else if let Some(r) = &m.regex {
                TextMatch::Regex(Regex::new(r).map_err(|e| {
                    check.error(format!("{at}/regex"), format!("invalid regex: {e}"))
                })?)
            } else {
                TextMatch::Any
            };
            let audience = m.to.map(|a| match a {
                RawAudience::Agent => Audience::PolyAgent,
                RawAudience::Queue => Audience::Queue,
                RawAudience::LiveAgent => Audience::LiveAgent,
                RawAudience::Nobody => Audience::Nobody,
            });
            Trigger::Message { text, audience }
        }
    };
    if rule.steps.is_empty() && !matches!(trigger, Trigger::Message { .. } | Trigger::NthMessage(_))
    {
        return Err(check.error(format!("{at}/steps"), "must not be empty"));
    }
    Ok(Rule {
        trigger,
        steps: steps_of(check, &format!("{at}/steps"), &rule.steps)?,
        once: rule.once,
        probability: rule.probability,
    })
}

fn reply_of(raw: &RawReply) -> Reply {
    Reply {
        text: raw.text.clone(),
        attachments: raw.attachments.clone(),
        suggestions: raw.suggestions.clone(),
    }
}

fn steps_of(
    check: &Checker<'_>,
    at: &str,
    raw: &[RawStep],
) -> Result<Vec<TemplateStep>, ScenarioError> {
    let mut out = Vec::with_capacity(raw.len());
    for (j, step) in raw.iter().enumerate() {
        let at = format!("{at}/{j}");
        out.extend(step_of(check, &at, step)?.into_iter().map(TemplateStep));
    }
    Ok(out)
}

/// Close codes a server may send (RFC 6455 §7.4): not 1004–1006 or 1015, nothing below 1000
/// or above 4999.
fn sendable_close_code(code: u16) -> bool {
    (1000..=4999).contains(&code) && !matches!(code, 1004..=1006 | 1015)
}

fn step_of(check: &Checker<'_>, at: &str, raw: &RawStep) -> Result<Vec<Step>, ScenarioError> {
    let one = |step| Ok(vec![step]);
    match raw {
        RawStep::PauseMs(n) => one(Step::Pause(ms(*n))),
        RawStep::ThinkMs(n) => Ok(vec![Step::Think, Step::Pause(ms(*n))]),
        RawStep::Think => one(Step::Think),
        RawStep::Join => one(Step::Join),
        RawStep::Reply(reply) => one(Step::Say(reply_of(reply))),
        RawStep::Stream(stream) => one(Step::Stream(stream_of(
            check,
            &format!("{at}/stream"),
            stream,
        )?)),
        RawStep::TriggerHandoff => one(Step::TriggerHandoff),
        RawStep::AgentLeft => one(Step::AgentLeft),
        RawStep::HandoffAccepted => one(Step::HandoffAccepted),
        RawStep::QueueStatus(q) => {
            let repeat = q.repeat.unwrap_or(1);
            if repeat == 0 {
                return Err(check.error(format!("{at}/queue_status/repeat"), "must be at least 1"));
            }
            let mut steps = Vec::new();
            for k in 0..repeat {
                if k > 0 {
                    steps.push(Step::Pause(ms(q.interval_ms.unwrap_or(0))));
                }
                steps.push(Step::QueueStatus(HandoffQueueStatus {
                    queue_name: q.queue_name.clone(),
                    position_in_queue: q.position_in_queue.map(|p| p.saturating_sub(k).max(1)),
                    estimated_wait_seconds: q.estimated_wait_seconds.map(|w| {
                        let left = u64::from(w) * u64::from(repeat - k) / u64::from(repeat);
                        u32::try_from(left).unwrap_or(w)
                    }),
                }));
            }
            Ok(steps)
        }
        RawStep::LiveAgentJoin(agent) => one(Step::LiveAgentJoined(agent.clone())),
        RawStep::LiveAgentTyping(state) => {
            if !state.is_known() {
                return Err(check.error(
                    format!("{at}/live_agent_typing"),
                    format!("unknown typing state `{}`", state.as_str()),
                ));
            }
            one(Step::LiveAgentTyping(state.clone()))
        }
        RawStep::LiveAgentMessage(reply) => one(Step::LiveAgentSays(reply_of(reply))),
        RawStep::LiveAgentLeft => one(Step::LiveAgentLeft),
        RawStep::ClientHandoff(h) => one(Step::ClientHandoffRequired {
            reason: h.reason.clone(),
            queue_name: h.queue_name.clone(),
        }),
        RawStep::HandoffFailed => one(Step::HandoffFailed),
        RawStep::HandoffTimeout => one(Step::HandoffTimeout),
        RawStep::Language(code) => {
            if code.trim().is_empty() {
                return Err(check.error(
                    format!("{at}/language"),
                    "must be a BCP-47 code such as fr-FR",
                ));
            }
            one(Step::LanguageChanged(code.clone()))
        }
        RawStep::Error(kind) => one(Step::Notice {
            level: SystemMessageLevel::Error,
            message: catalog_message(*kind).into(),
        }),
        RawStep::SystemMessage(m) => one(Step::Notice {
            level: m.level.clone(),
            message: m.message.clone(),
        }),
        RawStep::End(reason) => one(Step::End(reason.clone())),
        RawStep::Fault(fault) => one(Step::Fault(fault_of(check, &format!("{at}/fault"), fault)?)),
    }
}

fn stream_of(check: &Checker<'_>, at: &str, raw: &RawStream) -> Result<Stream, ScenarioError> {
    let mut chunks: Vec<Reply> = match (&raw.text, &raw.chunks) {
        (Some(text), None) if raw.pieces.is_some() => {
            let pieces = raw.pieces.unwrap_or(1);
            if pieces == 0 || raw.words_per_chunk.is_some() {
                return Err(check.error(
                    format!("{at}/pieces"),
                    "must be at least 1, without `words_per_chunk`",
                ));
            }
            split_pieces(text, pieces)
                .into_iter()
                .map(Reply::text)
                .collect()
        }
        (Some(text), None) => {
            let words = raw.words_per_chunk.unwrap_or(3);
            if words == 0 {
                return Err(check.error(format!("{at}/words_per_chunk"), "must be at least 1"));
            }
            split_words(text, words)
                .into_iter()
                .map(Reply::text)
                .collect()
        }
        (None, Some(chunks)) if !chunks.is_empty() => chunks.iter().map(reply_of).collect(),
        (None, Some(_)) => return Err(check.error(format!("{at}/chunks"), "must not be empty")),
        _ => return Err(check.error(at, "give exactly one of `text` and `chunks`")),
    };
    if raw.empty_final_chunk {
        chunks.push(Reply::default());
    }
    if let Some(last) = chunks.last_mut() {
        last.attachments.extend(raw.attachments.iter().cloned());
        last.suggestions.extend(raw.suggestions.iter().cloned());
    }
    if let Some(n) = raw.interrupt_after
        && (n == 0 || n >= chunks.len())
    {
        return Err(check.error(
            format!("{at}/interrupt_after"),
            format!(
                "must be between 1 and {} (the chunk count minus one)",
                chunks.len().saturating_sub(1)
            ),
        ));
    }
    if let Some(n) = raw.drop_after
        && (n == 0 || n >= chunks.len())
    {
        return Err(check.error(
            format!("{at}/drop_after"),
            format!(
                "must be between 1 and {} (the chunk count minus one)",
                chunks.len().saturating_sub(1)
            ),
        ));
    }
    if raw.second_chunk_first && chunks.len() < 2 {
        return Err(check.error(
            format!("{at}/second_chunk_first"),
            "needs at least two chunks",
        ));
    }
    Ok(Stream {
        chunks,
        interval: raw.chunk_interval_ms.map(ms),
        interrupt_after: raw.interrupt_after,
        drop_after: raw.drop_after,
        second_chunk_first: raw.second_chunk_first,
    })
}

fn fault_of(check: &Checker<'_>, at: &str, raw: &RawFault) -> Result<Fault, ScenarioError> {
    Ok(match raw {
        RawFault::Drop => Fault::Drop,
        RawFault::Close(code) => close_fault(check, at, *code)?,
        RawFault::DuplicateNext => Fault::DuplicateNext,
        RawFault::Resend(0) => {
            return Err(check.error(format!("{at}/resend"), "sequences start at 1"));
        }
        RawFault::Resend(sequence) => Fault::Resend(*sequence),
        RawFault::SwapNext => Fault::SwapNext,
        RawFault::OmitNext => Fault::OmitNext,
        RawFault::SplitNextReplay(0) => {
            return Err(check.error(format!("{at}/split_next_replay"), "must be at least 1"));
        }
        RawFault::SplitNextReplay(n) => Fault::SplitNextReplay(*n),
        RawFault::DropNextReplayAfter(0) => {
            return Err(check.error(
                format!("{at}/drop_next_replay_after"),
                "must be at least 1 batch",
            ));
        }
        RawFault::DropNextReplayAfter(n) => Fault::DropNextReplayAfter(*n),
        RawFault::ReverseNextReplay => Fault::ReverseNextReplay,
        RawFault::ResendHistory => Fault::ResendHistory,
        RawFault::DelayNextEchoMs(n) => Fault::DelayNextEcho(ms(*n)),
        RawFault::DropNextEcho => Fault::DropEchoes(1),
        RawFault::OmitNextEcho => Fault::OmitNextEcho,
        RawFault::DropEchoes(0) => {
            return Err(check.error(format!("{at}/drop_echoes"), "must be at least 1"));
        }
        RawFault::DropEchoes(n) => Fault::DropEchoes(*n),
        RawFault::ResendPrevious(0) => {
            return Err(check.error(
                format!("{at}/resend_previous"),
                "1 is the newest journaled event; 0 is none",
            ));
        }
        RawFault::ResendPrevious(n) => Fault::ResendPrevious(*n),
        RawFault::RefuseHandshakes(r) => refuse_handshakes_fault(check, at, r)?,
        RawFault::ExpireSession => Fault::ExpireSession,
        RawFault::ExpireToken => Fault::ExpireToken,
        RawFault::UnknownEvent => Fault::UnknownEvent("EVENT_TYPE_MOCK_UNDOCUMENTED".into()),
        RawFault::UnknownEventType(name) => unknown_event_fault(check, at, name)?,
        RawFault::UnknownFieldsNext => Fault::UnknownFieldsNext,
        RawFault::AlternateShapeNextReplay => Fault::AlternateShapeNextReplay,
        RawFault::NullSequenceNext => Fault::NullSequenceNext,
    })
}

/// A close fault: a code a server may send.
fn close_fault(check: &Checker<'_>, at: &str, code: u16) -> Result<Fault, ScenarioError> {
    if !sendable_close_code(code) {
        return Err(check.error(
            format!("{at}/close"),
            format!("not a close code a server can send: {code}"),
        ));
    }
    Ok(Fault::Close(code))
}

/// Refused handshakes: an HTTP error status, at least once.
fn refuse_handshakes_fault(
    check: &Checker<'_>,
    at: &str,
    r: &RawRefusal,
) -> Result<Fault, ScenarioError> {
    if !(400..=599).contains(&r.status) {
        return Err(check.error(
            format!("{at}/refuse_handshakes/status"),
            format!("must be 400–599, got {}", r.status),
        ));
    }
    if r.count == 0 {
        return Err(check.error(
            format!("{at}/refuse_handshakes/count"),
            "must be at least 1",
        ));
    }
    Ok(Fault::RefuseHandshakes {
        count: r.count,
        status: r.status,
    })
}

/// An unknown event of a given type: one the docs do not list, shaped like theirs.
fn unknown_event_fault(check: &Checker<'_>, at: &str, name: &str) -> Result<Fault, ScenarioError> {
    let documented = crate::protocol::ServerEvent::KNOWN_TYPES.contains(&name)
        || crate::protocol::ClientEvent::TYPES.contains(&name);
    let wire_like = name.strip_prefix("EVENT_TYPE_").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    });
    if documented || !wire_like {
        return Err(check.error(
            format!("{at}/unknown_event_type"),
            format!("`{name}` must be an undocumented type of the form EVENT_TYPE_[A-Z0-9_]+"),
        ));
    }
    Ok(Fault::UnknownEvent(name.to_owned()))
}

/// The exact message of each catalogued error (spec §10.7–10.8).
pub fn catalog_message(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::HighLoad => catalog::HIGH_LOAD,
        ErrorKind::UnableToStart => catalog::UNABLE_TO_START_CONVERSATION,
        ErrorKind::TroubleResponding => catalog::TROUBLE_RESPONDING,
        ErrorKind::StreamingError => catalog::STREAMING_ERROR,
        ErrorKind::SessionNotFound => catalog::ERROR_SESSION_NOT_FOUND,
        ErrorKind::UnableToRetrieveSession => catalog::ERROR_UNABLE_TO_RETRIEVE_SESSION,
        ErrorKind::ConnectorNotFound => catalog::ERROR_CONNECTOR_NOT_FOUND,
        ErrorKind::ConversationNotFound => catalog::ERROR_CONVERSATION_NOT_FOUND,
        ErrorKind::ConversationIdNotFound => catalog::ERROR_CONVERSATION_ID_NOT_FOUND,
        ErrorKind::HandoffCouldNotConnect => catalog::HANDOFF_COULD_NOT_CONNECT,
        ErrorKind::FailedToForward => catalog::FAILED_TO_FORWARD_TO_LIVE_AGENT,
        ErrorKind::HandoffCouldNotBeInitiated => catalog::HANDOFF_COULD_NOT_BE_INITIATED,
    }
}
