//! What the mock records and offers for judging clients: the server-wide HTTP log, armed 429s,
//! the close grace after `SESSION_END`, an unadvertised heartbeat interval, and scenarios
//! handed over in memory.

use axum::http::StatusCode;
use mock_server::Config;
use mock_server::http_log::{AuthorizationForm, Endpoint, HttpFailures, RateLimited};
use mock_server::journal::{Closer, JournalEvent};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{
    Client, Frame, JOIN, bounded, http, new_session, new_session_client, start, ws_url,
};

#[tokio::test]
async fn the_http_log_keeps_refused_calls_without_their_secrets() {
    bounded(async {
        let server = start(Config::default()).await;
        let (connector, _) = server.credentials();
        // No X-Host: refused before any session exists, so no session journal sees it.
        let refused = http(
            &server,
            "POST",
            "/api/v1/access-token",
            &[("x-token", &connector), ("content-type", "text/plain")],
            "{}",
        )
        .await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        let (token, session) = new_session(&server, false).await;
        let unknown = Client::connect(&ws_url(&server, "no-such-session", &token, None)).await;
        assert_eq!(unknown.err().map(|r| r.status), Some(404));
        let mut client = Client::connect(&ws_url(&server, &session, &token, Some("seq:0")))
            .await
            .expect("accepted");
        client.next_event().await;

        let calls = server.http_calls();
        let endpoints: Vec<(Endpoint, u16)> =
            calls.iter().map(|c| (c.endpoint, c.status)).collect();
        assert_eq!(
            endpoints,
            [
                (Endpoint::AccessToken, 401),
                (Endpoint::AccessToken, 200),
                (Endpoint::Sessions, 200),
                (Endpoint::WebSocket, 404),
                (Endpoint::WebSocket, 101),
            ]
        );
        let first = &calls[0];
        assert!(first.request.x_token && first.request.x_host.is_none());
        assert_eq!(
            first.error.as_deref(),
            Some("Missing authentication headers")
        );
        assert_eq!(first.request.content_type.as_deref(), Some("text/plain"));
        let minted = calls[1].token.clone().expect("the minted token's jti");
        assert_eq!(calls[2].token.as_deref(), Some(minted.as_str()));
        assert_eq!(
            calls[2].request.authorization,
            Some(AuthorizationForm::Bearer)
        );
        assert_eq!(calls[2].session_id.as_deref(), Some(session.as_str()));
        assert_eq!(calls[4].request.query["cursor"], "seq:0");
        assert_eq!(calls[4].token.as_deref(), Some(minted.as_str()));
        let everything = serde_json::to_string(&calls).expect("serialises");
        assert!(
            !everything.contains(&token),
            "an access token leaked into the log"
        );
        assert!(
            !everything.contains(&connector),
            "the connector token leaked into the log"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn armed_429s_carry_retry_after_and_come_before_armed_500s() {
    bounded(async {
        let server = start(Config::default()).await;
        server.arm_http_failures(HttpFailures {
            access_token: 1,
            access_token_429: Some(RateLimited {
                count: 1,
                retry_after_seconds: 3,
            }),
            ..HttpFailures::default()
        });
        let (connector, host) = server.credentials();
        let headers = [
            ("x-token", connector.as_str()),
            ("x-host", host.as_str()),
            ("content-type", "application/json"),
        ];
        let limited = http(&server, "POST", "/api/v1/access-token", &headers, "{}").await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.headers["retry-after"], "3");
        let failed = http(&server, "POST", "/api/v1/access-token", &headers, "{}").await;
        assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
        let ok = http(&server, "POST", "/api/v1/access-token", &headers, "{}").await;
        assert_eq!(ok.status, StatusCode::OK);
        let logged: Vec<(u16, Option<u64>)> = server
            .http_calls()
            .iter()
            .map(|c| (c.status, c.retry_after))
            .collect();
        assert_eq!(logged, [(429, Some(3)), (500, None), (200, None)]);
        server.shutdown().await;
    })
    .await;
}

async fn ended_session(grace_ms: u64) -> (mock_server::MockServer, String, Client) {
    let server = start(Config {
        session_end_close_grace_ms: grace_ms,
        ..Config::default()
    })
    .await;
    let (_token, session, mut client) = new_session_client(&server, false).await;
    client.next_event().await;
    client.send(JOIN).await;
    client
        .send(r#"{"type":"EVENT_TYPE_USER_END_SESSION","payload":{}}"#)
        .await;
    client.until("EVENT_TYPE_SESSION_END").await;
    (server, session, client)
}

fn last_close(server: &mock_server::MockServer, session: &str) -> (Option<u16>, Closer) {
    server
        .journal(session)
        .expect("journal")
        .into_iter()
        .rev()
        .find_map(|e| match e.event {
            JournalEvent::Close { code, by, .. } => Some((code, by)),
            _ => None,
        })
        .expect("a close")
}

#[tokio::test]
async fn with_a_grace_a_client_that_closes_after_session_end_is_journaled_as_closing() {
    bounded(async {
        let (server, session, mut client) = ended_session(2_000).await;
        client
            .send_raw(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            })))
            .await;
        // The server answers the close (a clean close at the client, not 1006).
        assert_eq!(client.closed().await, 1000);
        crate::support::eventually("the close in the journal", || {
            server
                .journal(&session)
                .expect("journal")
                .iter()
                .any(|e| matches!(e.event, JournalEvent::Close { .. }))
        })
        .await;
        assert_eq!(last_close(&server, &session), (Some(1000), Closer::Client));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn with_a_grace_a_client_that_never_closes_is_closed_by_the_server_after_it() {
    bounded(async {
        let (server, session, mut client) = ended_session(300).await;
        let started = std::time::Instant::now();
        assert_eq!(client.next().await, Frame::Close(1000));
        assert!(started.elapsed() >= std::time::Duration::from_millis(250));
        assert_eq!(last_close(&server, &session), (Some(1000), Closer::Server));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_heartbeat_interval_can_be_left_out_of_session_start() {
    bounded(async {
        let server = start(Config {
            advertise_heartbeat_interval: false,
            max_reconnect_attempts: 2,
            ..Config::default()
        })
        .await;
        let (_token, _session, mut client) = new_session_client(&server, false).await;
        let batch = client.next_event().await;
        let capabilities = &batch["payload"]["events"][0]["payload"]["capabilities"];
        assert!(
            capabilities.get("heartbeat_interval_seconds").is_none(),
            "{capabilities}"
        );
        assert_eq!(capabilities["max_reconnect_attempts"], 2);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_scenario_handed_over_in_memory_is_the_default() {
    bounded(async {
        let text = r#"{"description": "in memory", "persona": {"name": "Zoe", "avatar_url": "z"},
            "greeting": {"text": "Made in memory."}}"#;
        let script = mock_server::scenario::parse("case", "case.json", text).expect("valid");
        let server = mock_server::MockServer::start_with_scenarios(
            Config {
                scenario: "case/in-memory".into(),
                ..Config::default()
            },
            vec![("case/in-memory".into(), script)],
        )
        .await
        .expect("starts");
        let (_token, _session, mut client) = new_session_client(&server, false).await;
        client.next_event().await;
        client.send(JOIN).await;
        let events = client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        let joined = events
            .iter()
            .find(|e| e["type"] == "EVENT_TYPE_POLY_AGENT_JOINED")
            .expect("joined");
        assert_eq!(joined["payload"]["agent_name"], "Zoe");
        assert_eq!(
            events.last().expect("message")["payload"]["text"],
            "Made in memory."
        );
        assert_eq!(server.sessions()[0].scenario, "case/in-memory");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_drop_is_journaled_when_ordered_so_later_frames_went_to_no_one() {
    bounded(async {
        let text = r#"{"description": "drop mid-stream", "greeting": {"text": "Hi"},
            "rules": [{"when": {"message": {}}, "steps": [
                {"stream": {"chunks": [{"text": "one "}, {"text": "two "}, {"text": "three"}],
                            "chunk_interval_ms": 0, "drop_after": 1}}]}]}"#;
        let script = mock_server::scenario::parse("drop", "drop.json", text).expect("valid");
        let server = mock_server::MockServer::start_with_scenarios(
            Config {
                scenario: "drop".into(),
                ..Config::default()
            },
            vec![("drop".into(), script)],
        )
        .await
        .expect("starts");
        let (_token, session, mut client) = new_session_client(&server, true).await;
        client.next_event().await;
        client.send(JOIN).await;
        client.until("EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK").await;
        client.send(&crate::support::user_message("go")).await;
        assert_eq!(client.closed().await, 1006, "dropped");
        crate::support::eventually(
            "the drop and the stream's last chunk in the journal",
            || {
                let journal = server.journal(&session).expect("journal");
                let closed = journal
                    .iter()
                    .any(|e| matches!(e.event, JournalEvent::Close { .. }));
                let finished = journal.iter().any(|e| {
                    matches!(&e.event, JournalEvent::ServerFrame { frame, .. }
                    if frame.get().contains(r#""three""#))
                });
                closed && finished
            },
        )
        .await;
        let journal = server.journal(&session).expect("journal");
        let close = journal
            .iter()
            .position(|e| {
                matches!(
                    e.event,
                    JournalEvent::Close {
                        by: Closer::Server,
                        code: None,
                        ..
                    }
                )
            })
            .expect("the drop is journaled");
        let chunk_texts = |entries: &[mock_server::journal::JournalEntry]| -> Vec<String> {
            entries
                .iter()
                .filter_map(|e| match &e.event {
                    JournalEvent::ServerFrame { frame, .. } => {
                        serde_json::from_str::<serde_json::Value>(frame.get()).ok()
                    }
                    _ => None,
                })
                .filter(|v| v["type"] == "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK")
                .filter_map(|v| v["payload"]["text"].as_str().map(str::to_owned))
                .filter(|t| ["one ", "two ", "three"].contains(&t.as_str()))
                .collect()
        };
        assert_eq!(chunk_texts(&journal[..close]), ["one "]);
        assert_eq!(chunk_texts(&journal[close..]), ["two ", "three"]);
        let closes = journal
            .iter()
            .filter(|e| matches!(e.event, JournalEvent::Close { .. }))
            .count();
        assert_eq!(closes, 1, "one close, not two");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_plain_get_learns_why_a_handshake_would_be_refused_without_using_a_refusal() {
    bounded(async {
        let server = start(Config::default()).await;
        let (token, session) = new_session(&server, false).await;
        server
            .inject_faults(
                &session,
                vec![mock_server::scenario::raw::RawFault::RefuseHandshakes(
                    mock_server::scenario::raw::RawRefusal {
                        count: 1,
                        status: 503,
                    },
                )],
            )
            .expect("armed");
        let url = format!("/ws?session_id={session}&access_token={token}");
        for _ in 0..2 {
            let probe = http(&server, "GET", &url, &[], "").await;
            assert_eq!(
                probe.status.as_u16(),
                503,
                "the refusal a handshake would get"
            );
        }
        let refused = Client::connect(&ws_url(&server, &session, &token, None)).await;
        assert_eq!(
            refused.err().map(|r| r.status),
            Some(503),
            "the one refusal is still armed"
        );
        let mut accepted = Client::connect(&ws_url(&server, &session, &token, None))
            .await
            .expect("then accepted");
        accepted.next_event().await;
        server
            .inject_faults(
                &session,
                vec![mock_server::scenario::raw::RawFault::ExpireToken],
            )
            .expect("expired");
        let probe = http(&server, "GET", &url, &[], "").await;
        assert_eq!(probe.status.as_u16(), 401);
        let ws: Vec<(bool, u16)> = server
            .http_calls()
            .iter()
            .filter(|c| c.endpoint == Endpoint::WebSocket)
            .map(|c| (c.request.upgrade, c.status))
            .collect();
        assert_eq!(
            ws,
            [
                (false, 503),
                (false, 503),
                (true, 503),
                (true, 101),
                (false, 401)
            ],
            "plain GETs are logged, but not as connection attempts"
        );
        server.shutdown().await;
    })
    .await;
}
