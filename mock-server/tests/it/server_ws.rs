//! The WebSocket endpoint over real loopback sockets (spec §3, §10.4, §10.6, §12 B–D).

use std::time::Duration;

use mock_server::Config;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{
    Client, JOIN, batch_events, bounded, new_session, new_session_client, new_session_url, start,
    types, user_message, ws_url,
};

#[tokio::test]
async fn each_handshake_error_row_has_its_status_and_plain_text() {
    bounded(async {
        let server = start(Config::default()).await;
        let (token, session) = new_session(&server, false).await;
        let (other_token, _) = new_session(&server, false).await;
        let base = server.ws_url();
        let cases = [
            (
                format!("{base}?access_token={token}"),
                400,
                "invalid connection parameters",
            ),
            (
                format!("{base}?session_id={session}"),
                400,
                "invalid connection parameters",
            ),
            (
                format!("{base}?session_id=&access_token={token}"),
                400,
                "invalid connection parameters",
            ),
            (
                format!("{base}?session_id={session}&access_token=forged"),
                401,
                "authentication failed",
            ),
            (
                format!(
                    "{base}?session_id=00000000-0000-4000-8000-000000000000&access_token={token}"
                ),
                404,
                "session not found",
            ),
            // A valid token that did not create this session (spec §12 A8).
            (
                format!("{base}?session_id={session}&access_token={other_token}"),
                401,
                "authentication failed",
            ),
        ];
        for (url, status, body) in cases {
            let refused = match Client::connect(&url).await {
                Ok(_) => panic!("{url}: accepted"),
                Err(refused) => refused,
            };
            assert_eq!(
                (refused.status, refused.body.as_str()),
                (status, body),
                "{url}"
            );
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_eleventh_socket_of_a_session_is_refused_with_429() {
    bounded(async {
        let server = start(Config::default()).await;
        let (_token, _session, url) = new_session_url(&server, false).await;
        let mut open = Vec::new();
        for _ in 0..10 {
            let mut client = Client::connect(&url).await.expect("within the limit");
            client.next_event().await;
            open.push(client);
        }
        let refused = Client::connect(&url).await.err().expect("11th refused");
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (429, "connection limit exceeded for session")
        );
        drop(open.pop());
        // The freed slot can be used again once the server saw the close.
        let mut reopened = None;
        for _ in 0..50 {
            if let Ok(client) = Client::connect(&url).await {
                reopened = Some(client);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(reopened.is_some(), "slot never freed");
        server.shutdown().await;
    })
    .await;
}

/// Joins, exchanges one message, and returns the highest sequence seen.
async fn converse(client: &mut Client) -> u64 {
    client.next_event().await;
    client.send(JOIN).await;
    client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
    client.send(&user_message("hello")).await;
    let events = client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
    events
        .iter()
        .filter_map(|e| e["sequence"].as_u64())
        .max()
        .expect("journaled events")
}

#[tokio::test]
async fn reconnecting_with_either_cursor_form_replays_exactly_the_later_events() {
    bounded(async {
        let server = start(Config::default()).await;
        let (token, session) = new_session(&server, false).await;
        let mut first = Client::connect(&ws_url(&server, &session, &token, None))
            .await
            .expect("open");
        let last = converse(&mut first).await;
        assert_eq!(last, 6, "start, join echo, joined, greeting, echo, reply");

        for (cursor, expected) in [
            (Some("4"), vec![1, 5, 6]),
            (Some("seq:4"), vec![1, 5, 6]),
            (Some("6"), vec![1]),
            (Some("0"), vec![1, 2, 3, 4, 5, 6]),
            (Some("banana"), vec![1, 2, 3, 4, 5, 6]),
            (None, vec![1, 2, 3, 4, 5, 6]),
        ] {
            let mut again = Client::connect(&ws_url(&server, &session, &token, cursor))
                .await
                .expect("reconnect");
            let batch = again.next_event().await;
            assert_eq!(batch["type"], "EVENT_TYPE_EVENT_BATCH");
            assert_eq!(batch["sequence"], Value::Null);
            let sequences: Vec<u64> = batch_events(&[batch])
                .iter()
                .map(|e| e["sequence"].as_u64().expect("journaled"))
                .collect();
            assert_eq!(sequences, expected, "cursor {cursor:?}");
        }

        // Replayed events keep their original ids and timestamps (spec §12 B3).
        let original = first
            .log
            .iter()
            .find(|(_, f)| f["type"] == "EVENT_TYPE_POLY_AGENT_JOINED")
            .expect("joined")
            .1
            .clone();
        let mut again = Client::connect(&ws_url(&server, &session, &token, None))
            .await
            .expect("reconnect");
        let replayed = batch_events(&[again.next_event().await]);
        assert_eq!(replayed[2], original);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn replay_is_split_into_batches_of_the_configured_size() {
    bounded(async {
        let server = start(Config {
            replay_batch_size: 2,
            ..Config::default()
        })
        .await;
        let (token, session) = new_session(&server, false).await;
        let mut first = Client::connect(&ws_url(&server, &session, &token, None))
            .await
            .expect("open");
        converse(&mut first).await;
        let mut again = Client::connect(&ws_url(&server, &session, &token, None))
            .await
            .expect("reconnect");
        let batches = vec![
            again.next_event().await,
            again.next_event().await,
            again.next_event().await,
        ];
        assert!(
            batches
                .iter()
                .all(|b| b["type"] == "EVENT_TYPE_EVENT_BATCH")
        );
        let sequences: Vec<u64> = batch_events(&batches)
            .iter()
            .filter_map(|e| e["sequence"].as_u64())
            .collect();
        assert_eq!(sequences, [1, 2, 3, 4, 5, 6]);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn every_socket_of_a_session_gets_its_events_but_errors_stay_with_their_sender() {
    bounded(async {
        let server = start(Config::default()).await;
        let (_token, _session, url) = new_session_url(&server, false).await;
        let mut a = Client::connect(&url).await.expect("a");
        let mut b = Client::connect(&url).await.expect("b");
        a.next_event().await;
        b.next_event().await;
        a.send(JOIN).await;
        let seen_a = a.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        let seen_b = b.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        assert_eq!(seen_a, seen_b, "identical fan-out, echo included");
        assert_eq!(types(&seen_b)[0], "REQUEST_POLY_AGENT_JOIN");

        b.send(r#"{"type":"EVENT_TYPE_NOPE","payload":{}}"#).await;
        let error = b.next_event().await;
        assert_eq!(
            error["payload"]["message"],
            "Unknown event type or invalid message format"
        );
        // `a` gets the next heartbeat echo, not b's error.
        a.send(r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{}}"#)
            .await;
        assert_eq!(a.next_event().await["type"], "EVENT_TYPE_HEARTBEAT");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn bad_frames_get_errors_with_metadata_and_the_socket_stays_open() {
    bounded(async {
        let server = start(Config::default()).await;
        let (_token, _session, mut client) = new_session_client(&server, false).await;
        client.next_event().await;
        let cases: Vec<(Message, &str, Option<&str>)> = vec![
            (Message::text("{not json"), "Unknown event type or invalid message format", None),
            (Message::binary(b"{}".to_vec()), "Unknown event type or invalid message format", None),
            (
                Message::text(r#"{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE","payload":{},"metadata":{"custom":{"local_id":"x1"}}}"#),
                "Event type not allowed: EVENT_TYPE_POLY_AGENT_MESSAGE",
                Some("x1"),
            ),
            (
                Message::text(r#"{"type":"EVENT_TYPE_USER_MESSAGE","payload":{"text":"early"},"metadata":{"custom":{"local_id":"x2"}}}"#),
                "Error: Conversation not found",
                Some("x2"),
            ),
            (Message::text(format!(r#"{{"type":"EVENT_TYPE_USER_MESSAGE","payload":{{"text":"{}"}}}}"#, "x".repeat(140_000))), "Message too large", None),
        ];
        for (message, expected, local_id) in cases {
            client.send_raw(message).await;
            let error = client.next_event().await;
            assert_eq!(error["type"], "EVENT_TYPE_SYSTEM_MESSAGE");
            assert_eq!(error["payload"]["level"], "SYSTEM_MESSAGE_LEVEL_ERROR");
            assert_eq!(error["payload"]["message"], expected);
            assert_eq!(error["sequence"], Value::Null);
            assert_eq!(error["metadata"]["custom"]["local_id"].as_str(), local_id);
        }
        client.send(JOIN).await;
        assert_eq!(client.next_event().await["type"], "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN", "still usable");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_oversized_frame_can_close_with_1009_instead() {
    bounded(async {
        let server = start(Config {
            close_on_oversized_frame: true,
            ..Config::default()
        })
        .await;
        let (_token, _session, mut client) = new_session_client(&server, false).await;
        client.next_event().await;
        client.send(&user_message(&"y".repeat(140_000))).await;
        assert_eq!(client.closed().await, 1009);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn user_end_closes_with_1000_and_a_later_reconnect_replays_the_end_then_closes() {
    bounded(async {
        let server = start(Config::default()).await;
        let (_token, _session, url) = new_session_url(&server, false).await;
        let mut client = Client::connect(&url).await.expect("open");
        converse(&mut client).await;
        client
            .send(r#"{"type":"EVENT_TYPE_USER_END_SESSION","payload":{}}"#)
            .await;
        let end = client.until("EVENT_TYPE_SESSION_END").await;
        assert_eq!(types(&end), ["USER_END_SESSION", "SESSION_END"]);
        assert_eq!(end[1]["payload"]["reason"], "REASON_USER_END");
        assert_eq!(client.closed().await, 1000);

        let mut late = Client::connect(&url)
            .await
            .expect("ended sessions still replay (spec §12 C8)");
        let replay = batch_events(&[late.next_event().await]);
        assert_eq!(
            replay.last().expect("events")["type"],
            "EVENT_TYPE_SESSION_END"
        );
        assert_eq!(late.closed().await, 1000);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_silent_socket_is_closed_with_1001_and_an_idle_session_is_abandoned() {
    bounded(async {
        let server = start(Config {
            connection_idle_timeout_seconds: 0.3,
            session_idle_timeout_seconds: 0.6,
            ..Config::default()
        })
        .await;
        let (_token, _session, url) = new_session_url(&server, false).await;
        let mut quiet = Client::connect(&url).await.expect("open");
        quiet.next_event().await;
        assert_eq!(quiet.closed().await, 1001, "per-connection idle");

        let mut watcher = Client::connect(&url).await.expect("session still alive");
        watcher.next_event().await;
        let end = watcher.until("EVENT_TYPE_SESSION_END").await;
        assert_eq!(
            end.last().expect("end")["payload"]["reason"],
            "REASON_USER_ABANDONED"
        );
        assert_eq!(watcher.closed().await, 1000);
        let refused = Client::connect(&url)
            .await
            .err()
            .expect("expired sessions are gone");
        assert_eq!(refused.status, 404);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn every_frame_restarts_the_connection_idle_timer() {
    bounded(async {
        let idle = Duration::from_millis(600);
        let server = start(Config {
            connection_idle_timeout_seconds: idle.as_secs_f64(),
            session_idle_timeout_seconds: 30.0,
            ..Config::default()
        })
        .await;
        let (_token, _session, mut client) = new_session_client(&server, false).await;
        client.next_event().await;
        // Twice the idle timeout of traffic, a frame every sixth of it: never idle.
        let heartbeat = r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{}}"#;
        for _ in 0..12 {
            tokio::time::sleep(idle / 6).await;
            client.send(heartbeat).await;
            let echo = client.next_event().await;
            assert_eq!(
                echo["type"], "EVENT_TYPE_HEARTBEAT",
                "still open, answering"
            );
        }
        let quiet_since = std::time::Instant::now();
        assert_eq!(client.closed().await, 1001, "idle once the frames stop");
        assert!(
            quiet_since.elapsed() >= idle - Duration::from_millis(100),
            "closed {:?} after the last frame, before the idle timeout ({idle:?})",
            quiet_since.elapsed()
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn shutdown_closes_open_sockets_with_1001() {
    bounded(async {
        let server = start(Config::default()).await;
        let (_token, _session, mut client) = new_session_client(&server, false).await;
        client.next_event().await;
        let stopping = tokio::spawn(server.shutdown());
        assert_eq!(client.closed().await, 1001);
        stopping.await.expect("shutdown finishes");
    })
    .await;
}

#[tokio::test]
async fn session_start_advertises_the_configured_capabilities() {
    bounded(async {
        let server = start(Config {
            heartbeat_interval_seconds: 2,
            max_reconnect_attempts: 3,
            context_id: Some("ctx-1".into()),
            ..Config::default()
        })
        .await;
        let (_token, _session, mut client) = new_session_client(&server, true).await;
        let start = &batch_events(&[client.next_event().await])[0];
        assert_eq!(start["type"], "EVENT_TYPE_SESSION_START");
        assert_eq!(start["sequence"], 1);
        assert_eq!(
            start["payload"],
            serde_json::json!({"capabilities": {"streaming": true, "max_message_size_bytes": 131072,
                "max_reconnect_attempts": 3, "heartbeat_interval_seconds": 2}, "context_id": "ctx-1"})
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn frames_over_the_websocket_rate_limit_are_dropped_silently() {
    bounded(async {
        let server = start(Config {
            rate_limits: Some(mock_server::config::RateLimits {
                http_requests_per_minute: 1000,
                ws_frames_per_second: 2,
            }),
            ..Config::default()
        })
        .await;
        let (_token, _session, mut client) = new_session_client(&server, false).await;
        client.next_event().await;
        let heartbeat = |n: u32| format!(r#"{{"type":"EVENT_TYPE_HEARTBEAT","payload":{{}},"metadata":{{"custom":{{"n":{n}}}}}}}"#);
        for n in 1..=5 {
            client.send(&heartbeat(n)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        client.send(&heartbeat(6)).await;
        let mut echoed = Vec::new();
        for _ in 0..3 {
            echoed.push(client.next_event().await["metadata"]["custom"]["n"].as_u64().expect("n"));
        }
        assert_eq!(echoed, [1, 2, 6], "3–5 dropped, the next window admits 6");
        server.shutdown().await;
    })
    .await;
}

/// `profile: 2026-05` serves the protocol as documented before June 2026 (spec §0): only the
/// `seq:N` cursor is understood (a plain `N` replays everything), and a language step sends no
/// `LANGUAGE_CHANGED`. The current profile, the control, does both.
#[tokio::test]
async fn the_2026_05_profile_takes_seq_cursors_only_and_has_no_language_changed() {
    use mock_server::config::Profile;
    use mock_server::scenario::raw::{RawReply, RawStep};
    bounded(async {
        for profile in [Profile::May2026, Profile::Current] {
            let server = start(Config {
                profile,
                ..Config::default()
            })
            .await;
            let (token, session) = new_session(&server, false).await;
            let mut first = Client::connect(&ws_url(&server, &session, &token, None))
                .await
                .expect("open");
            assert_eq!(converse(&mut first).await, 6);
            let plain_replays = match profile {
                Profile::May2026 => vec![1, 2, 3, 4, 5, 6],
                Profile::Current => vec![1, 5, 6],
            };
            for (cursor, expected) in [(Some("seq:4"), vec![1, 5, 6]), (Some("4"), plain_replays)] {
                let mut again = Client::connect(&ws_url(&server, &session, &token, cursor))
                    .await
                    .expect("reconnect");
                let sequences: Vec<u64> = batch_events(&[again.next_event().await])
                    .iter()
                    .map(|e| e["sequence"].as_u64().expect("journaled"))
                    .collect();
                assert_eq!(sequences, expected, "{profile:?}, cursor {cursor:?}");
            }
            let steps = vec![
                RawStep::Language("fr-FR".into()),
                RawStep::Reply(RawReply {
                    text: "after the language step".into(),
                    ..RawReply::default()
                }),
            ];
            server.push_steps(&session, steps).expect("steps play");
            let events = first.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
            let languages = events
                .iter()
                .filter(|e| e["type"] == "EVENT_TYPE_LANGUAGE_CHANGED")
                .count();
            let expected = usize::from(profile == Profile::Current);
            assert_eq!(languages, expected, "{profile:?}: {events:?}");
            server.shutdown().await;
        }
    })
    .await;
}
