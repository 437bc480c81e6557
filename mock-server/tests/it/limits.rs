//! The bounds a client cannot push the server past (docs/mock.md, "Limits and hostile input"):
//! journal bytes, sessions held, sockets open, a socket that stops reading, shutdown.

use std::time::{Duration, Instant};

use mock_server::journal::{Closer, JournalEvent};
use mock_server::{Config, MockServer};
use serde_json::json;

use crate::hostile::still_serves;
use crate::hostile_frames::{RawSocket, TEXT, frame};
use crate::support::{
    Client, JOIN, access_token, bounded, create_session, http, new_session, new_session_client,
    new_session_url, start, user_message, ws_url,
};

fn weights(server: &MockServer, session: &str) -> usize {
    server
        .journal(session)
        .expect("journal")
        .iter()
        .map(mock_server::journal::JournalEntry::weight)
        .sum()
}

/// Finding 4: a valid frame up to 16 MiB was journaled whole and the cap counted entries, so a
/// few clients could make the process hold gigabytes.
#[tokio::test]
async fn the_journal_is_bounded_by_bytes_and_long_frames_are_kept_truncated_with_their_length() {
    bounded(async {
        let server = start(Config {
            journal_max_bytes: 256 * 1024,
            ..Config::default()
        })
        .await;
        let (_token, session, mut client) = new_session_client(&server, false).await;
        client.next_event().await;
        client.send(JOIN).await;
        client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        let long = "x".repeat(100_000);
        for _ in 0..40 {
            client.send(&user_message(&long)).await;
            client.until("EVENT_TYPE_USER_MESSAGE").await;
        }
        // 40 frames of 100 kB went in; the journal holds its budget at most.
        let held = weights(&server, &session);
        assert!(held <= 256 * 1024, "journal holds {held} bytes");
        let journal = server.journal(&session).expect("journal");
        let truncated: Vec<_> = journal
            .iter()
            .filter_map(|e| match &e.event {
                JournalEvent::ClientFrame {
                    bytes,
                    text,
                    truncated,
                    frame,
                    ..
                } => Some((*bytes, text.clone(), *truncated, frame.is_some())),
                _ => None,
            })
            .collect();
        assert!(!truncated.is_empty(), "client frames are still journaled");
        for (bytes, text, was_truncated, whole) in truncated {
            assert!(bytes > 100_000, "the length is the frame's: {bytes}");
            assert!(was_truncated && !whole, "a long frame is marked truncated");
            let text = text.expect("its start is kept");
            assert_eq!(text.len(), mock_server::journal::DEFAULT_FRAME_MAX_BYTES);
            assert!(text.starts_with(r#"{"type":"EVENT_TYPE_USER_MESSAGE""#));
        }
        // Short frames stay whole (negative control).
        client.send(&user_message("short")).await;
        client.until("EVENT_TYPE_USER_MESSAGE").await;
        let last = server
            .journal(&session)
            .expect("journal")
            .into_iter()
            .rev()
            .find_map(|e| match e.event {
                JournalEvent::ClientFrame {
                    frame, truncated, ..
                } => Some((frame.is_some(), truncated)),
                _ => None,
            });
        assert_eq!(last, Some((true, false)));
        still_serves(&server).await;
    })
    .await;
}

#[tokio::test]
async fn sessions_share_the_total_journal_budget() {
    bounded(async {
        let server = start(Config {
            journal_max_bytes: 1 << 20,
            journal_total_max_bytes: 64 * 1024,
            ..Config::default()
        })
        .await;
        let mut sessions = Vec::new();
        for _ in 0..8 {
            sessions.push(new_session(&server, false).await);
        }
        let mut total = 0;
        for (token, session) in &sessions {
            let mut client = Client::connect(&ws_url(&server, session, token, None))
                .await
                .expect("open");
            client.next_event().await;
            client.send(JOIN).await;
            client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
            for _ in 0..20 {
                client.send(&user_message(&"y".repeat(2_000))).await;
                client.until("EVENT_TYPE_USER_MESSAGE").await;
            }
            let held = weights(&server, session);
            // 64 KiB shared by 8 (or more, with still_serves' sessions) sessions.
            assert!(held <= 64 * 1024 / 8, "{session} holds {held} bytes");
            total += held;
        }
        assert!(total <= 64 * 1024, "all sessions hold {total} bytes");
    })
    .await;
}

/// Finding 4: no limit on sessions; 20 000 ended sessions held 243 MB.
#[tokio::test]
async fn at_the_session_cap_the_oldest_ended_session_goes_first_then_creation_is_refused_with_429()
{
    bounded(async {
        let server = start(Config {
            max_sessions: 3,
            ..Config::default()
        })
        .await;
        let token = access_token(&server).await;
        let first = create_session(&server, &token, false).await;
        let second = create_session(&server, &token, false).await;
        let _third = create_session(&server, &token, false).await;
        let auth = ("authorization", format!("Bearer {token}"));
        let refused = http(
            &server,
            "POST",
            "/api/v1/sessions",
            &[
                ("content-type", "application/json"),
                (auth.0, auth.1.as_str()),
            ],
            "{}",
        )
        .await;
        assert_eq!(refused.status.as_u16(), 429, "full of live sessions");
        assert_eq!(
            refused
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
        // End the second, then the first: the one that ended first makes room first.
        for id in [&second, &first] {
            let ended = http(
                &server,
                "POST",
                &format!("/_mock/sessions/{id}/end"),
                &[("content-type", "application/json")],
                "{}",
            )
            .await;
            assert_eq!(
                ended.status.as_u16(),
                200,
                "{}",
                String::from_utf8_lossy(&ended.body)
            );
        }
        let fourth = create_session(&server, &token, false).await;
        assert!(!fourth.is_empty());
        let still_there = Client::connect(&ws_url(&server, &first, &token, None)).await;
        assert!(
            still_there.is_ok(),
            "the later-ended session is still retained"
        );
        let gone = Client::connect(&ws_url(&server, &second, &token, None))
            .await
            .err()
            .expect("forgotten");
        assert_eq!(
            (gone.status, gone.body.as_str()),
            (404, "session not found")
        );
        let journal = server
            .sessions_with_journals()
            .into_iter()
            .find(|(s, _)| s.session_id == second)
            .expect("archived")
            .1;
        assert!(journal.iter().any(
            |e| matches!(&e.event, JournalEvent::Timer { what } if what.contains("session cap"))
        ));
    })
    .await;
}

#[tokio::test]
async fn at_the_socket_cap_a_handshake_is_refused_with_503_until_one_closes() {
    bounded(async {
        let server = start(Config {
            max_connections: 2,
            ..Config::default()
        })
        .await;
        let (_token, _session, url) = new_session_url(&server, false).await;
        let mut a = Client::connect(&url).await.expect("first");
        let _b = Client::connect(&url).await.expect("second");
        let refused = Client::connect(&url).await.err().expect("third refused");
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (503, "server connection limit reached")
        );
        a.send_raw(tokio_tungstenite::tungstenite::Message::Close(None))
            .await;
        a.closed().await;
        let mut reopened = None;
        for _ in 0..100 {
            if let Ok(client) = Client::connect(&url).await {
                reopened = Some(client);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(reopened.is_some(), "a closed socket gives its permit back");
    })
    .await;
}

/// Waits until the agent's greeting is journaled (replies fit from then on).
async fn agent_joined(server: &MockServer, session: &str) {
    for _ in 0..500 {
        let journal = server.journal(session).expect("journal");
        if journal.iter().any(|e| matches!(&e.event, JournalEvent::ServerFrame { frame, .. } if frame.get().contains("EVENT_TYPE_POLY_AGENT_MESSAGE"))) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the agent never joined {session}");
}

/// Pushes replies of `size` bytes until the server journals the socket's close.
async fn flood_until_closed(
    server: &MockServer,
    session: &str,
    size: usize,
) -> (Option<u16>, Closer) {
    let step: mock_server::scenario::raw::RawStep =
        serde_json::from_value(json!({"reply": {"text": "z".repeat(size)}})).expect("step");
    agent_joined(server, session).await;
    for _ in 0..2_000 {
        server
            .push_steps(session, vec![step.clone()])
            .expect("a reply fits");
        let close = server
            .journal(session)
            .expect("journal")
            .into_iter()
            .find_map(|e| match e.event {
                JournalEvent::Close { code, by, .. } => Some((code, by)),
                _ => None,
            });
        if let Some(close) = close {
            return close;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the stalled socket was never closed");
}

/// Whether a new socket opens within about a second (on a server whose only permit a closed
/// socket held).
async fn permit_comes_back(server: &MockServer) -> bool {
    let (token, other) = new_session(server, false).await;
    let url = ws_url(server, &other, &token, None);
    for _ in 0..50 {
        if Client::connect(&url).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Finding 5: a client that stops reading blocked its connection task for ever.
#[tokio::test]
async fn a_socket_that_stops_reading_is_closed_with_1008_and_its_slot_freed() {
    bounded(async {
        let server = start(Config {
            write_timeout_seconds: 0.3,
            max_connections: 1,
            ..Config::default()
        })
        .await;
        let (mut stalled, session) = RawSocket::open(&server).await;
        stalled.send(&[frame(TEXT, JOIN.as_bytes().to_vec())]).await;
        // It never reads: the server's writes back up, then time out.
        let close = flood_until_closed(&server, &session, 60_000).await;
        assert_eq!(close, (Some(1008), Closer::Server));
        // Its permit (the only one) is free again once the task has let TCP go.
        assert!(
            permit_comes_back(&server).await,
            "the stalled socket's permit came back within a second"
        );
    })
    .await;
}

/// Finding 5: on shutdown a socket that does not read got no 1001 and held shutdown up.
#[tokio::test]
async fn shutdown_is_not_held_up_by_a_socket_that_stops_reading() {
    bounded(async {
        let server = start(Config {
            write_timeout_seconds: 60.0,
            ..Config::default()
        })
        .await;
        let (mut stalled, session) = RawSocket::open(&server).await;
        stalled.send(&[frame(TEXT, JOIN.as_bytes().to_vec())]).await;
        let step: mock_server::scenario::raw::RawStep =
            serde_json::from_value(json!({"reply": {"text": "z".repeat(60_000)}})).expect("step");
        agent_joined(&server, &session).await;
        for _ in 0..400 {
            server
                .push_steps(&session, vec![step.clone()])
                .expect("a reply fits");
        }
        // Far more than the socket buffers hold: the connection task is stuck writing.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (token, other) = new_session(&server, false).await;
        let mut reader = Client::connect(&ws_url(&server, &other, &token, None))
            .await
            .expect("open");
        reader.next_event().await;
        let started = Instant::now();
        let stopping = tokio::spawn(server.shutdown());
        assert_eq!(reader.closed().await, 1001, "a reading client gets 1001");
        stopping.await.expect("shutdown finishes");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "shutdown took {:?}",
            started.elapsed()
        );
    })
    .await;
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// Found by the soak: each held session kept its recording open, so 20 000 ended sessions ran
/// out of descriptors and later sessions were silently not recorded.
#[tokio::test]
async fn held_sessions_without_sockets_hold_no_recording_descriptor() {
    bounded(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = start(Config {
            record_dir: Some(dir.path().to_path_buf()),
            ..Config::default()
        })
        .await;
        let token = access_token(&server).await;
        let before = open_descriptors();
        let mut sessions = Vec::new();
        for _ in 0..300 {
            sessions.push(create_session(&server, &token, false).await);
        }
        let grown = open_descriptors().saturating_sub(before);
        assert!(
            grown < 50,
            "300 idle sessions hold {grown} more descriptors"
        );
        // Every one of them is still recorded, and a reconnect records on.
        for session in &sessions {
            assert!(dir.path().join(format!("{session}.jsonl")).is_file());
        }
        let mut client = Client::connect(&ws_url(&server, &sessions[0], &token, None))
            .await
            .expect("open");
        client.next_event().await;
        client.send(JOIN).await;
        client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        let recording = std::fs::read_to_string(dir.path().join(format!("{}.jsonl", sessions[0])))
            .expect("recording");
        assert!(recording.contains("EVENT_TYPE_POLY_AGENT_MESSAGE"));
        assert!(
            server
                .sessions()
                .iter()
                .all(|s| s.recording_error.is_none())
        );
    })
    .await;
}

/// Round three, finding 5: a socket whose queue overflowed lost its slot at once, but nothing
/// was journaled, and the recording later said 1008 (write timeout), not 1011.
#[tokio::test]
async fn a_socket_whose_queue_overflows_is_journaled_and_closed_with_1011_at_once() {
    bounded(async {
        let server = start(Config {
            // Far beyond the test's bound: only the overflow can close it in time.
            write_timeout_seconds: 600.0,
            max_connections: 1,
            ..Config::default()
        })
        .await;
        let (mut stalled, session) = RawSocket::open(&server).await;
        stalled.send(&[frame(TEXT, JOIN.as_bytes().to_vec())]).await;
        let close = flood_until_closed(&server, &session, 20_000).await;
        assert_eq!(close, (Some(1011), Closer::Server));
        let closes = server
            .journal(&session)
            .expect("journal")
            .into_iter()
            .filter(|e| matches!(e.event, JournalEvent::Close { .. }))
            .count();
        assert_eq!(closes, 1, "the close is journaled once");
        // The task let go of the socket too: its permit (the only one) is free again.
        assert!(
            permit_comes_back(&server).await,
            "the overflowed socket's permit came back within a second"
        );
        server.shutdown().await;
    })
    .await;
}
