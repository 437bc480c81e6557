//! The engine, driven by a fake clock: no sockets, no sleeping.

use super::*;
use crate::protocol::{
    DecodeOptions, RawFrame, Sequence, ServerEnvelope, decode_client_frame, decode_server_frame,
};

const C1: ConnId = 1;

struct Harness {
    session: Session,
    now: Now,
}

impl Harness {
    fn new(streaming: bool) -> Self {
        Self::with(EngineConfig::default(), streaming)
    }

    fn with(config: EngineConfig, streaming: bool) -> Self {
        Self::seeded(config, streaming, 42)
    }

    fn seeded(config: EngineConfig, streaming: bool, seed: u64) -> Self {
        let now = Now {
            elapsed: Duration::ZERO,
            unix_millis: 1_707_739_200_000,
        };
        let script = crate::scenario::Catalogue::embedded()
            .expect("fixtures validate")
            .get("playground")
            .expect("the playground is embedded");
        Self {
            session: Session::new(Arc::new(config), script, streaming, seed, now),
            now,
        }
    }

    fn send(&mut self, json: &str) -> Vec<Action> {
        let decoded = decode_client_frame(RawFrame::Text(json), &DecodeOptions::default());
        self.session.receive(C1, decoded, self.now)
    }

    fn advance(&mut self, by: Duration) -> Vec<Action> {
        self.now.elapsed += by;
        self.now.unix_millis += by.as_millis() as u64;
        self.session.tick(self.now)
    }

    /// Everything the agent still has to say, however long it takes.
    fn settle(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        for _ in 0..1000 {
            if self.session.timeline.is_empty() {
                break;
            }
            out.extend(self.advance(Duration::from_millis(1)));
        }
        out
    }
}

fn sent(actions: &[Action]) -> Vec<(Recipient, ServerEnvelope)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Send { to, frame } => Some((
                *to,
                decode_server_frame(frame).expect("engine frames decode"),
            )),
            Action::Close { .. } | Action::Drop { .. } | Action::Note(_) => None,
        })
        .collect()
}

fn types(actions: &[Action]) -> Vec<String> {
    sent(actions)
        .into_iter()
        .map(|(_, e)| {
            e.event
                .event_type()
                .trim_start_matches("EVENT_TYPE_")
                .to_owned()
        })
        .collect()
}

fn closes(actions: &[Action]) -> Vec<(Recipient, u16)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Close { to, code, .. } => Some((*to, *code)),
            Action::Send { .. } | Action::Drop { .. } | Action::Note(_) => None,
        })
        .collect()
}

const JOIN: &str = r#"{"type":"EVENT_TYPE_REQUEST_POLY_AGENT_JOIN","payload":{}}"#;

fn message(text: &str) -> String {
    format!(
        r#"{{"type":"EVENT_TYPE_USER_MESSAGE","payload":{{"text":"{text}"}},"metadata":{{"custom":{{"local_id":"l1"}}}}}}"#
    )
}

fn joined(streaming: bool) -> Harness {
    let mut h = Harness::new(streaming);
    h.send(JOIN);
    h.settle();
    h
}

#[test]
fn a_new_session_replays_session_start_with_its_capabilities() {
    let mut h = Harness::new(true);
    let replay = sent(&h.session.connect(C1, 0, h.now));
    assert_eq!(replay.len(), 1);
    assert_eq!(replay[0].0, Recipient::Conn(C1));
    let ServerEvent::EventBatch(batch) = &replay[0].1.event else {
        panic!("not a batch");
    };
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.events[0].sequence, Some(Sequence(1)));
    let ServerEvent::SessionStart(start) = &batch.events[0].event else {
        panic!("first event is not SESSION_START");
    };
    assert_eq!(start.capabilities.streaming, Some(true));
    assert_eq!(start.capabilities.heartbeat_interval_seconds, Some(30));
    assert_eq!(start.capabilities.max_message_size_bytes, Some(131_072));
}

#[test]
fn join_sends_echo_joined_thinking_then_the_greeting() {
    let mut h = Harness::new(false);
    let now = h.send(JOIN);
    assert_eq!(
        types(&now),
        [
            "REQUEST_POLY_AGENT_JOIN",
            "POLY_AGENT_JOINED",
            "POLY_AGENT_THINKING"
        ]
    );
    let later = h.settle();
    assert_eq!(types(&later), ["POLY_AGENT_MESSAGE"]);
    let events = sent(&now);
    assert_eq!(events[0].1.sequence, Some(Sequence(2)));
    assert_eq!(events[1].1.sequence, Some(Sequence(3)));
    assert_eq!(events[2].1.sequence, None, "thinking is transient");
    assert_eq!(sent(&later)[0].1.sequence, Some(Sequence(4)));
}

#[test]
fn a_message_before_any_join_is_an_error_to_that_connection_only() {
    let mut h = Harness::new(false);
    let out = sent(&h.send(&message("hi")));
    assert_eq!(out.len(), 1, "no echo");
    let (to, error) = &out[0];
    assert_eq!(*to, Recipient::Conn(C1));
    assert_eq!(error.sequence, None);
    assert!(matches!(&error.event, ServerEvent::SystemMessage(m)
        if m.message == "Error: Conversation not found" && m.level == SystemMessageLevel::Error));
    assert_eq!(
        error
            .metadata
            .as_ref()
            .and_then(|m| m.custom_str("local_id")),
        Some("l1")
    );
}

#[test]
fn a_user_message_is_echoed_with_message_id_and_metadata_then_answered() {
    let mut h = joined(false);
    let out = h.send(&message("hello"));
    let events = sent(&out);
    assert_eq!(types(&out), ["USER_MESSAGE", "POLY_AGENT_THINKING"]);
    let ServerEvent::UserMessage(echo) = &events[0].1.event else {
        panic!("no echo")
    };
    assert_eq!(echo.text, "hello");
    assert!(echo.message_id.as_str().starts_with("msg_"));
    assert_eq!(
        events[0]
            .1
            .metadata
            .as_ref()
            .and_then(|m| m.custom_str("local_id")),
        Some("l1")
    );
    let reply = sent(&h.settle());
    assert!(
        matches!(&reply[0].1.event, ServerEvent::PolyAgentMessage(m) if m.text == "You said: hello")
    );
    assert_eq!(
        reply[0].1.metadata, None,
        "metadata only on echoes and errors"
    );
}

#[test]
fn streamed_replies_are_chunks_sharing_one_message_id() {
    let mut h = joined(true);
    h.send(&message("one two three four five six seven"));
    let chunks: Vec<PolyAgentMessageChunk> = sent(&h.settle())
        .into_iter()
        .map(|(_, e)| match e.event {
            ServerEvent::PolyAgentMessageChunk(chunk) => chunk,
            other => panic!("not a chunk: {other:?}"),
        })
        .collect();
    assert!(chunks.len() > 1);
    let text: String = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(text, "You said: one two three four five six seven");
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.chunk_index as usize, i + 1);
        assert_eq!(chunk.message_id, chunks[0].message_id);
        assert_eq!(chunk.is_complete, i + 1 == chunks.len());
    }
}

#[test]
fn the_streamed_greeting_carries_its_suggestions_on_the_final_chunk() {
    let mut h = Harness::new(true);
    h.send(JOIN);
    let chunks: Vec<PolyAgentMessageChunk> = sent(&h.settle())
        .into_iter()
        .filter_map(|(_, e)| match e.event {
            ServerEvent::PolyAgentMessageChunk(chunk) => Some(chunk),
            _ => None,
        })
        .collect();
    let last = chunks.last().expect("chunks");
    assert!(last.is_complete);
    assert_eq!(last.response_suggestions.len(), 2);
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c.response_suggestions.is_empty())
    );
}

#[test]
fn heartbeats_are_echoed_transient_with_metadata() {
    let mut h = Harness::new(false);
    let out = sent(
        &h.send(r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{},"metadata":{"custom":{"n":1}}}"#),
    );
    assert_eq!(out.len(), 1);
    assert!(matches!(out[0].1.event, ServerEvent::Heartbeat(_)));
    assert_eq!(out[0].1.sequence, None);
    assert_eq!(out[0].0, Recipient::All);
    assert!(out[0].1.metadata.is_some());
    assert_eq!(h.session.history().len(), 1, "heartbeats are not history");
}

#[test]
fn typing_is_neither_echoed_nor_journaled() {
    let mut h = joined(false);
    let before = h.session.history().len();
    let out =
        h.send(r#"{"type":"EVENT_TYPE_USER_TYPING","payload":{"state":"TYPING_STATE_STARTED"}}"#);
    assert!(out.is_empty());
    assert_eq!(h.session.history().len(), before);
}

#[test]
fn a_duplicate_join_is_echoed_only() {
    let mut h = joined(false);
    assert_eq!(types(&h.send(JOIN)), ["REQUEST_POLY_AGENT_JOIN"]);
    assert!(h.settle().is_empty());
}

#[test]
fn invalid_frames_get_a_transient_error_on_their_connection_and_the_session_goes_on() {
    let mut h = joined(false);
    let out = sent(&h.send(r#"{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE","payload":{}}"#));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, Recipient::Conn(C1));
    assert_eq!(out[0].1.sequence, None);
    assert!(matches!(&out[0].1.event, ServerEvent::SystemMessage(m)
        if m.message == "Event type not allowed: EVENT_TYPE_POLY_AGENT_MESSAGE"));
    assert_eq!(h.session.status(), SessionStatus::Active);
    assert_eq!(types(&h.send(&message("still here")))[0], "USER_MESSAGE");
}

#[test]
fn user_end_session_echoes_ends_and_closes_with_1000() {
    let mut h = joined(false);
    let out = h.send(r#"{"type":"EVENT_TYPE_USER_END_SESSION","payload":{}}"#);
    assert_eq!(types(&out), ["USER_END_SESSION", "SESSION_END"]);
    assert!(
        matches!(&sent(&out)[1].1.event, ServerEvent::SessionEnd(e) if e.reason == SessionEndReason::UserEnd)
    );
    assert_eq!(closes(&out), [(Recipient::All, 1000)]);
    assert_eq!(h.session.status(), SessionStatus::Ended);
    assert!(
        h.send(&message("too late")).is_empty(),
        "frames after the end are discarded"
    );

    // A reconnect still replays, ending with SESSION_END, then closes (spec §12 C8).
    let replay = h.session.connect(2, 0, h.now);
    let ServerEvent::EventBatch(batch) = &sent(&replay)[0].1.event else {
        panic!("no batch")
    };
    assert!(matches!(
        batch.events.last().map(|e| &e.event),
        Some(ServerEvent::SessionEnd(_))
    ));
    assert_eq!(closes(&replay), [(Recipient::Conn(2), 1000)]);

    // After retention it is gone.
    h.advance(Duration::from_secs(600));
    assert_eq!(h.session.status(), SessionStatus::Expired);
}

#[test]
fn silence_for_the_idle_timeout_abandons_the_session() {
    let mut h = joined(false);
    let out = h.advance(Duration::from_secs(599));
    assert!(out.is_empty());
    h.send(r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{}}"#);
    assert!(
        h.advance(Duration::from_secs(599)).is_empty(),
        "a heartbeat resets the timer"
    );
    let out = h.advance(Duration::from_secs(1));
    assert_eq!(types(&out), ["SESSION_END"]);
    assert!(
        matches!(&sent(&out)[0].1.event, ServerEvent::SessionEnd(e) if e.reason == SessionEndReason::UserAbandoned)
    );
    assert_eq!(closes(&out), [(Recipient::All, 1000)]);
    assert_eq!(h.session.status(), SessionStatus::Expired);
    assert_eq!(h.session.next_deadline(), None);
}

#[test]
fn reconnecting_with_a_cursor_replays_only_later_events_after_session_start() {
    let mut h = joined(false);
    h.send(&message("a"));
    h.settle();
    let last = h.session.history().last_sequence().expect("history").0;
    let replay = sent(&h.session.connect(2, 3, h.now));
    let ServerEvent::EventBatch(batch) = &replay[0].1.event else {
        panic!("no batch")
    };
    let sequences: Vec<u64> = batch
        .events
        .iter()
        .map(|e| e.sequence.expect("journaled").0)
        .collect();
    let mut expected = vec![1];
    expected.extend(4..=last);
    assert_eq!(sequences, expected);
}

#[test]
fn server_managed_handoff_follows_spec_8_1_and_the_live_agent_answers() {
    let mut h = joined(false);
    let mut out = h.send(&message("#handoff"));
    out.extend(h.settle());
    assert_eq!(
        types(&out),
        [
            "USER_MESSAGE",
            "POLY_AGENT_TRIGGERED_HANDOFF",
            "POLY_AGENT_LEFT",
            "HANDOFF_ACCEPTED",
            "HANDOFF_QUEUE_STATUS",
            "HANDOFF_QUEUE_STATUS",
            "LIVE_AGENT_JOINED",
            "LIVE_AGENT_TYPING",
            "LIVE_AGENT_MESSAGE",
        ]
    );
    assert!(matches!(h.session.phase(), Phase::LiveAgent(_)));
    let mut out = h.send(&message("thanks"));
    out.extend(h.settle());
    assert_eq!(
        types(&out),
        ["USER_MESSAGE", "LIVE_AGENT_TYPING", "LIVE_AGENT_MESSAGE"]
    );
    let live = sent(&out);
    assert!(
        matches!(&live[2].1.event, ServerEvent::LiveAgentMessage(m) if m.agent_id == "agent_42")
    );

    let mut out = h.send(&message("#end"));
    out.extend(h.settle());
    assert_eq!(
        types(&out),
        ["USER_MESSAGE", "LIVE_AGENT_LEFT", "SESSION_END"]
    );
    assert!(
        matches!(&sent(&out)[2].1.event, ServerEvent::SessionEnd(e) if e.reason == SessionEndReason::NaturalEnd)
    );
}

#[test]
fn ending_during_a_live_handoff_says_the_live_agent_left_first() {
    let mut h = joined(false);
    h.send(&message("#handoff"));
    h.settle();
    let out = h.send(r#"{"type":"EVENT_TYPE_USER_END_SESSION","payload":{}}"#);
    assert_eq!(
        types(&out),
        ["USER_END_SESSION", "LIVE_AGENT_LEFT", "SESSION_END"]
    );
}

#[test]
fn client_managed_handoff_then_messages_get_no_reply_until_a_new_join() {
    let mut h = joined(false);
    let mut out = h.send(&message("#client_handoff"));
    out.extend(h.settle());
    assert_eq!(
        types(&out),
        [
            "USER_MESSAGE",
            "POLY_AGENT_TRIGGERED_HANDOFF",
            "CLIENT_HANDOFF_REQUIRED",
            "POLY_AGENT_LEFT"
        ]
    );
    let mut out = h.send(&message("anyone?"));
    out.extend(h.settle());
    assert_eq!(
        types(&out),
        ["USER_MESSAGE"],
        "echoed, no reply (spec §12 E2)"
    );
    let mut out = h.send(JOIN);
    out.extend(h.settle());
    assert_eq!(
        types(&out),
        [
            "REQUEST_POLY_AGENT_JOIN",
            "POLY_AGENT_JOINED",
            "POLY_AGENT_THINKING",
            "POLY_AGENT_MESSAGE"
        ]
    );
}

#[test]
fn rejoin_can_be_turned_off() {
    let config = EngineConfig {
        rejoin_after_handoff: false,
        language_changed: true,
        ..EngineConfig::default()
    };
    let mut h = Harness::with(config, false);
    h.send(JOIN);
    h.settle();
    h.send(&message("#handoff_fail"));
    h.settle();
    let out = sent(&h.send(JOIN));
    assert!(
        matches!(&out[0].1.event, ServerEvent::SystemMessage(m) if m.message == "Error: Conversation not found")
    );
}

#[test]
fn failed_and_timed_out_handoffs() {
    let mut h = joined(false);
    let mut out = h.send(&message("#handoff_fail"));
    out.extend(h.settle());
    assert_eq!(
        types(&out),
        [
            "USER_MESSAGE",
            "POLY_AGENT_TRIGGERED_HANDOFF",
            "POLY_AGENT_LEFT",
            "HANDOFF_FAILED"
        ]
    );

    let mut h = joined(false);
    let mut out = h.send(&message("#handoff_timeout"));
    out.extend(h.settle());
    assert_eq!(
        types(&out).last().map(String::as_str),
        Some("HANDOFF_TIMEOUT")
    );
    assert_eq!(h.session.phase(), &Phase::NoAgent);
}

#[test]
fn messages_while_queued_are_echoed_and_held() {
    let mut h = joined(false);
    h.send(&message("#handoff"));
    // Advance just past HANDOFF_ACCEPTED: the queue updates are still pending.
    h.advance(Duration::from_millis(1));
    assert_eq!(h.session.phase(), &Phase::Queue);
    assert_eq!(types(&h.send(&message("hello?"))), ["USER_MESSAGE"]);
}

#[test]
fn an_interrupted_stream_ends_with_the_streaming_error_and_no_complete_chunk() {
    let mut h = joined(true);
    h.send(&message("#stream_error"));
    let out = sent(&h.settle());
    let chunks: Vec<&PolyAgentMessageChunk> = out
        .iter()
        .filter_map(|(_, e)| match &e.event {
            ServerEvent::PolyAgentMessageChunk(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(chunks.len(), 2);
    assert!(chunks.iter().all(|c| !c.is_complete));
    assert!(
        matches!(&out.last().expect("events").1.event, ServerEvent::SystemMessage(m)
        if m.message == "Sorry, I encountered an error. Please try again.")
    );
    assert!(
        out.last().expect("events").1.sequence.is_some(),
        "agent errors are history"
    );
}

#[test]
fn language_changes_are_journaled() {
    let mut h = joined(false);
    let out = sent(&h.send(&message("#lang fr-FR")));
    let change = out
        .iter()
        .find(|(_, e)| matches!(&e.event, ServerEvent::LanguageChanged(l) if l.language_code == "fr-FR"))
        .expect("LANGUAGE_CHANGED");
    assert!(change.1.sequence.is_some());
}

#[test]
fn sequences_are_contiguous_from_one() {
    let mut h = joined(true);
    for text in ["a", "b #attachments", "#lang de-DE"] {
        h.send(&message(text));
        h.settle();
    }
    let replay = sent(&h.session.connect(2, 0, h.now));
    let sequences: Vec<u64> = replay
        .iter()
        .flat_map(|(_, e)| match &e.event {
            ServerEvent::EventBatch(b) => b
                .events
                .iter()
                .map(|e| e.sequence.expect("journaled").0)
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    let expected: Vec<u64> = (1..=sequences.len() as u64).collect();
    assert_eq!(sequences, expected);
}

#[test]
fn the_same_seed_and_clock_give_byte_identical_frames_and_another_seed_other_ids() {
    let run = |seed: u64| {
        let mut h = Harness::seeded(EngineConfig::default(), true, seed);
        let mut frames = Vec::new();
        for action in h.send(JOIN).into_iter().chain(h.settle()) {
            if let Action::Send { frame, .. } = action {
                frames.push(frame);
            }
        }
        frames
    };
    let ids = |frames: &[String]| -> Vec<String> {
        frames
            .iter()
            .filter_map(|f| serde_json::from_str::<serde_json::Value>(f).ok())
            .filter_map(|v| v["id"].as_str().map(str::to_owned))
            .collect()
    };
    let (first, again, other) = (run(42), run(42), run(43));
    assert!(!first.is_empty());
    assert_eq!(first, again, "the same seed and clock: the same bytes");
    // Ids that ignored the seed (constant, or from a counter) would repeat under another one.
    let (mine, theirs) = (ids(&first), ids(&other));
    assert!(!mine.is_empty());
    assert!(
        mine.iter().all(|id| !theirs.contains(id)),
        "another seed mints other ids: {mine:?} / {theirs:?}"
    );
}

#[test]
fn drop_echoes_loses_that_many_messages_then_processes_the_next() {
    let mut h = joined(false);
    let actions = h
        .session
        .push_steps(vec![Step::Fault(Fault::DropEchoes(2))], h.now)
        .expect("fits");
    assert!(types(&actions).is_empty());
    assert!(types(&h.send(&message("one"))).is_empty(), "lost");
    assert!(
        types(&h.send(&message("one"))).is_empty(),
        "the resend is lost too"
    );
    assert_eq!(types(&h.send(&message("one")))[0], "USER_MESSAGE");
}

#[test]
fn resend_previous_sends_an_older_journaled_event_again() {
    let mut h = joined(false);
    let newest = h.session.history().last_sequence().expect("history").0;
    let actions = h
        .session
        .push_steps(vec![Step::Fault(Fault::ResendPrevious(2))], h.now)
        .expect("fits");
    let resent = sent(&actions);
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].1.sequence, Some(Sequence(newest - 1)));
    let nothing = h
        .session
        .push_steps(vec![Step::Fault(Fault::ResendPrevious(newest + 5))], h.now)
        .expect("fits");
    assert!(sent(&nothing).is_empty(), "beyond the history: nothing");
}
