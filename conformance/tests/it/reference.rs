//! The reference client against the mock: it keeps its obligations on good days and bad.

use conformance::contract::Command;
use conformance::driver::InProcess;
use mock_server::Config;
use mock_server::journal::JournalEvent;

use conformance::contract::{Author, ConnectionState, MessageStatus};

use crate::{bounded, env_for, is_open, messages, mock, ok, wait_for};

fn greeted(view: &conformance::contract::View) -> bool {
    messages(view).iter().any(|(from, text, complete)| {
        *from == Author::Agent && text.starts_with("Hello!") && *complete
    })
}

fn workdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

#[tokio::test]
async fn a_plain_conversation_from_start_to_end() {
    bounded(async {
        let server = mock(Config::default()).await;
        let dir = workdir();
        let mut client = InProcess::new(env_for(&server, None), dir.path());
        ok(&mut client, Command::Start { streaming: false }).await;
        let view = wait_for(&mut client, "the greeting", greeted).await;
        assert_eq!(view.agent.clone().flatten().map(|a| a.name), Some("Ada".into()));
        ok(&mut client, Command::Send { text: "hello".into() }).await;
        let view = wait_for(&mut client, "the reply", |v| messages(v).iter().any(|(_, t, _)| t == "You said: hello")).await;
        let all = messages(&view);
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!((all[1].0, all[1].1.as_str()), (Author::User, "hello"));
        assert_eq!(view.messages.as_ref().expect("messages")[1].status, Some(MessageStatus::Sent));
        ok(&mut client, Command::End).await;
        let view = wait_for(&mut client, "the end", |v| v.connection == Some(ConnectionState::Closed)).await;
        assert_eq!(view.ended.flatten().map(|e| e.reason), Some("REASON_USER_END".into()));

        let session = view.session_id.flatten().expect("session id");
        let journal = server.journal(&session).expect("journal");
        let joins = journal.iter().filter(|e| matches!(&e.event, JournalEvent::ClientFrame { frame: Some(f), .. } if f.get().contains("EVENT_TYPE_REQUEST_POLY_AGENT_JOIN"))).count();
        assert_eq!(joins, 1, "joins exactly once (WS-3)");
        let first_frame = journal.iter().position(|e| matches!(e.event, JournalEvent::ClientFrame { .. })).expect("a frame");
        let first_batch = journal.iter().position(|e| matches!(&e.event, JournalEvent::ServerFrame { frame, .. } if frame.get().contains("EVENT_TYPE_EVENT_BATCH"))).expect("a batch");
        assert!(first_batch < first_frame, "waits for the history before joining (WS-2)");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn streamed_replies_assemble_in_chunk_order_with_late_suggestions() {
    bounded(async {
        let server = mock(Config::default()).await;
        let dir = workdir();
        let mut client = InProcess::new(env_for(&server, None), dir.path());
        ok(&mut client, Command::Start { streaming: true }).await;
        wait_for(&mut client, "the streamed greeting", greeted).await;
        ok(
            &mut client,
            Command::Send {
                text: "/stream".into(),
            },
        )
        .await;
        let view = wait_for(&mut client, "the streamed reply", |v| {
            messages(v)
                .iter()
                .any(|(_, t, c)| t.starts_with("Streaming works") && *c)
        })
        .await;
        let reply = view
            .messages
            .expect("messages")
            .into_iter()
            .find(|m| m.text.starts_with("Streaming works"))
            .expect("reply");
        assert_eq!(
            reply.text,
            "Streaming works like this: each chunk appends text, and the last one may be empty."
        );
        assert_eq!(
            reply.suggestions,
            ["Stream again /stream"],
            "from the empty final chunk"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn duplicated_swapped_and_resent_events_show_once_in_sequence_order() {
    bounded(async {
        let server = mock(Config::default()).await;
        let dir = workdir();
        let mut client = InProcess::new(env_for(&server, Some("faults/live-delivery")), dir.path());
        ok(&mut client, Command::Start { streaming: false }).await;
        wait_for(&mut client, "the greeting", |v| messages(v).len() == 1).await;
        for text in ["one", "two", "three", "four"] {
            ok(&mut client, Command::Send { text: text.into() }).await;
            wait_for(&mut client, "the echo", |v| messages(v).iter().any(|(from, t, _)| *from == Author::User && t == text)).await;
        }
        // After "four" the mock re-sends a past event and the whole history.
        let view = wait_for(&mut client, "the replies", |v| messages(v).iter().any(|(_, t, _)| t == "This one arrives live.")).await;
        let texts: Vec<String> = messages(&view).into_iter().map(|(_, t, _)| t).collect();
        assert_eq!(
            texts,
            [
                "Hi! I'm Ada. How can I help?",
                "one",
                "This reply arrives twice.",
                "two",
                "First, but delivered second.",
                "Second, but delivered first.",
                "three",
                "You only see this in a replay.",
                "This one arrives live.",
                "four",
            ]
            .map(String::from),
            "deduplicated by id (MSG-2), ordered by sequence (MSG-3), omitted one recovered from the re-sent history"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_drop_mid_stream_is_resumed_from_the_cursor_without_a_new_session() {
    bounded(async {
        let server = mock(Config::default()).await;
        let dir = workdir();
        let mut client =
            InProcess::new(env_for(&server, Some("faults/drop-mid-stream")), dir.path());
        ok(&mut client, Command::Start { streaming: true }).await;
        wait_for(&mut client, "the greeting", |v| {
            messages(v).iter().any(|(_, _, c)| *c)
        })
        .await;
        ok(
            &mut client,
            Command::Send {
                text: "tell me a story".into(),
            },
        )
        .await;
        let view = wait_for(&mut client, "the whole story", |v| {
            messages(v).iter().any(|(_, t, c)| {
                t == "Once upon a time there was a mock server that never lost a chunk." && *c
            })
        })
        .await;
        assert!(is_open(&view));
        let session = view.session_id.flatten().expect("session");
        assert_eq!(server.sessions().len(), 1, "no new session (RC-1)");
        let handshakes: Vec<_> = server
            .journal(&session)
            .expect("journal")
            .into_iter()
            .filter_map(|e| match e.event {
                JournalEvent::Handshake {
                    query, status: 101, ..
                } => Some(query),
                _ => None,
            })
            .collect();
        assert_eq!(handshakes.len(), 2);
        assert_eq!(
            handshakes[1].get("cursor").map(String::as_str),
            Some("9"),
            "cursor = highest sequence seen (RC-2)"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn heartbeats_follow_the_advertised_interval() {
    bounded(async {
        let server = mock(Config {
            heartbeat_interval_seconds: 1,
            ..Config::default()
        })
        .await;
        let dir = workdir();
        let mut client = InProcess::new(env_for(&server, None), dir.path());
        ok(&mut client, Command::Start { streaming: false }).await;
        let view = wait_for(&mut client, "the greeting", greeted).await;
        let session = view.session_id.flatten().expect("session");
        // Three beats, then their spacing: about the advertised second each (a busy machine
        // may delay a timer, never bring it forward much).
        let beats = loop {
            let beats: Vec<u64> = server
                .journal(&session)
                .expect("journal")
                .iter()
                .filter(|e| matches!(&e.event, JournalEvent::ClientFrame { frame: Some(f), .. } if f.get().contains("EVENT_TYPE_HEARTBEAT")))
                .map(|e| e.at_ms)
                .collect();
            if beats.len() >= 3 {
                break beats;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        for gap in beats.windows(2).map(|w| w[1] - w[0]) {
            assert!((750..=2_000).contains(&gap), "heartbeats {beats:?} ms: a gap of {gap} ms at a 1 s interval (HB-2)");
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_expired_session_leads_to_a_new_one() {
    bounded(async {
        let server = mock(Config::default()).await;
        let dir = workdir();
        let mut client = InProcess::new(
            env_for(&server, Some("faults/session-expired-during-drop")),
            dir.path(),
        );
        ok(&mut client, Command::Start { streaming: false }).await;
        let first = wait_for(&mut client, "the greeting", |v| messages(v).len() == 1).await;
        ok(&mut client, Command::Send { text: "hi".into() }).await;
        let view = wait_for(&mut client, "a new session, greeted", |v| {
            v.session_id != first.session_id
                && messages(v)
                    .iter()
                    .any(|(from, _, complete)| *from == Author::Agent && *complete)
        })
        .await;
        assert!(is_open(&view), "RC-5: 404 means a new session");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_restart_resumes_the_same_session_from_what_was_persisted() {
    bounded(async {
        let server = mock(Config::default()).await;
        let dir = workdir();
        let mut client = InProcess::new(env_for(&server, None), dir.path());
        ok(&mut client, Command::Start { streaming: false }).await;
        let before = wait_for(&mut client, "the greeting", greeted).await;
        ok(&mut client, Command::Send { text: "before".into() }).await;
        wait_for(&mut client, "the reply", |v| {
            messages(v).iter().any(|(_, t, _)| t == "You said: before")
        })
        .await;
        ok(&mut client, Command::Restart).await;
        assert!(
            dir.path().join(conformance::reference::STATE_FILE).exists(),
            "the session is kept in the working directory"
        );
        let after = wait_for(&mut client, "the resumed session", is_open).await;
        assert_eq!(after.session_id, before.session_id, "the same session");
        assert_eq!(messages(&after).len(), 3, "the conversation so far is restored");
        ok(&mut client, Command::Send { text: "after".into() }).await;
        wait_for(&mut client, "the reply after the restart", |v| {
            messages(v).iter().any(|(_, t, _)| t == "You said: after")
        })
        .await;
        let session = after.session_id.flatten().expect("session");
        let journal = server.journal(&session).expect("journal");
        let joins = journal
            .iter()
            .filter(|e| matches!(&e.event, JournalEvent::ClientFrame { frame: Some(f), .. } if f.get().contains("EVENT_TYPE_REQUEST_POLY_AGENT_JOIN")))
            .count();
        assert_eq!(joins, 1, "no second join after the restart (WS-4)");
        let cursors: Vec<Option<String>> = journal
            .iter()
            .filter_map(|e| match &e.event {
                JournalEvent::Handshake { query, status: 101, .. } => Some(query.get("cursor").cloned()),
                _ => None,
            })
            .collect();
        assert_eq!(cursors.len(), 2);
        assert!(cursors[1].is_some(), "the resumed connection carries a cursor (RC-2)");
        assert_eq!(server.sessions().len(), 1, "no new session");
        server.shutdown().await;
    })
    .await;
}
