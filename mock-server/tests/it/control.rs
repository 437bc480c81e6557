//! The control API (`/_mock/`), the typed journal and recordings.

use axum::http::StatusCode;
use mock_server::Config;
use mock_server::journal::{JournalEvent, read_recording};
use mock_server::scenario::raw::RawStep;
use serde_json::{Value, json};

use crate::support::{
    Client, JOIN, bounded, http, new_session, new_session_client, normalise, start, user_message,
};

async fn silent_session(config: Config) -> (mock_server::MockServer, String, Client) {
    let server = start(Config {
        scenario: "control/silent-agent".into(),
        ..config
    })
    .await;
    let (_token, session, mut client) = new_session_client(&server, false).await;
    client.next_event().await;
    client.send(JOIN).await;
    client.until("EVENT_TYPE_POLY_AGENT_JOINED").await;
    (server, session, client)
}

async fn post(server: &mock_server::MockServer, path: &str, body: &str) -> (StatusCode, Value) {
    let response = http(
        server,
        "POST",
        path,
        &[("content-type", "application/json")],
        body,
    )
    .await;
    (response.status, response.json())
}

#[tokio::test]
async fn a_conversation_driven_entirely_through_the_control_api() {
    bounded(async {
        let (server, session, mut client) = silent_session(Config::default()).await;
        let steps = format!("/_mock/sessions/{session}/steps");
        let (status, body) = post(&server, &steps, r#"[{"think_ms": 1}, {"reply": {"text": "Hi, I'm scripted from the test."}}]"#).await;
        assert_eq!((status, body["accepted"].as_u64()), (StatusCode::OK, Some(2)), "{body}");
        assert_eq!(client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await.last().expect("reply")["payload"]["text"], "Hi, I'm scripted from the test.");

        client.send(&user_message("I need a person")).await;
        client.until("EVENT_TYPE_USER_MESSAGE").await;
        let handoff = r#"["trigger_handoff", "agent_left", "handoff_accepted",
            {"live_agent_join": {"id": "agent_9", "name": "Kim", "avatar_url": "https://example.com/kim.png"}}]"#;
        assert_eq!(post(&server, &steps, handoff).await.0, StatusCode::OK);
        client.until("EVENT_TYPE_LIVE_AGENT_JOINED").await;

        // The typed handle does the same without HTTP.
        server
            .push_steps(&session, vec![serde_json::from_value::<RawStep>(json!({"live_agent_message": {"text": "Kim here."}})).expect("step")])
            .expect("fits");
        let message = client.until("EVENT_TYPE_LIVE_AGENT_MESSAGE").await;
        assert_eq!(message.last().expect("message")["payload"]["agent_id"], "agent_9");

        let (status, _) = post(&server, &format!("/_mock/sessions/{session}/end"), r#"{"reason": "REASON_NATURAL_END"}"#).await;
        assert_eq!(status, StatusCode::OK);
        let end = client.until("EVENT_TYPE_SESSION_END").await;
        assert_eq!(end.last().expect("end")["payload"]["reason"], "REASON_NATURAL_END");
        assert_eq!(client.closed().await, 1000);

        let journal = server.journal(&session).expect("journal");
        let controls = journal.iter().filter(|e| matches!(e.event, JournalEvent::Control { .. })).count();
        assert_eq!(controls, 4, "every control action is journaled");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn bad_control_requests_are_refused_and_change_nothing() {
    bounded(async {
        let (server, session, _client) = silent_session(Config::default()).await;
        let steps = format!("/_mock/sessions/{session}/steps");
        let before = server.journal(&session).expect("journal").len();

        let (status, body) = post(&server, "/_mock/sessions/nope/steps", r#""think""#).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(
            http(&server, "GET", "/_mock/sessions/nope", &[], "")
                .await
                .status,
            StatusCode::NOT_FOUND
        );

        let (status, body) = post(
            &server,
            &steps,
            r#"[{"reply": {"text": "ok"}}, {"reply": {"txt": "typo"}}]"#,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["pointer"], "/1/reply/txt", "{body}");
        assert!(
            body["message"].as_str().expect("message").contains("txt"),
            "{body}"
        );

        let (status, body) = post(&server, &steps, r#"{"fault": {"close": 1006}}"#).await;
        assert_eq!(
            (status, body["pointer"].as_str()),
            (StatusCode::BAD_REQUEST, Some("/0/fault/close")),
            "{body}"
        );

        let (status, body) = post(
            &server,
            &steps,
            r#"{"live_agent_message": {"text": "nobody is here"}}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            body["message"]
                .as_str()
                .expect("message")
                .contains("no live agent"),
            "{body}"
        );
        let (status, _) = post(
            &server,
            &steps,
            r#"["agent_left", {"reply": {"text": "gone"}}]"#,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "the whole list is refused");

        let (status, _) = post(
            &server,
            &format!("/_mock/sessions/{session}/faults"),
            r#"{"explode": true}"#,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = post(&server, "/_mock/clock", "{}").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = post(&server, "/_mock/clock", r#"{"scale": -1}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let response = http(
            &server,
            "PUT",
            "/_mock/next-scenario",
            &[("content-type", "application/json")],
            r#"{"scenario": "no/such"}"#,
        )
        .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        let response = http(
            &server,
            "PUT",
            "/_mock/connectors/nope/scenario",
            &[("content-type", "application/json")],
            r#"{"scenario": "playground"}"#,
        )
        .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            http(&server, "GET", "/_mock/nothing", &[], "").await.status,
            StatusCode::NOT_FOUND
        );

        let after = server.journal(&session).expect("journal").len();
        assert_eq!(
            before, after,
            "refused requests leave no trace in the session"
        );
        assert_eq!(server.sessions()[0].state, "agent");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn sessions_journal_health_and_openapi_describe_the_server() {
    bounded(async {
        let (server, session, mut client) = silent_session(Config::default()).await;
        client
            .send(r#"{"type":"EVENT_TYPE_BOGUS","payload":{}}"#)
            .await;
        client.next_event().await;
        let list = http(&server, "GET", "/_mock/sessions", &[], "")
            .await
            .json();
        assert_eq!(list[0]["session_id"], session.as_str());
        assert_eq!(list[0]["scenario"], "control/silent-agent");
        assert_eq!(list[0]["open_sockets"], 1);
        assert_eq!(list[0]["state"], "agent");
        assert_eq!(list[0]["last_sequence"], 3);

        let journal = http(
            &server,
            "GET",
            &format!("/_mock/sessions/{session}/journal"),
            &[],
            "",
        )
        .await
        .json();
        let kinds: Vec<&str> = journal
            .as_array()
            .expect("array")
            .iter()
            .map(|e| e["kind"].as_str().expect("kind"))
            .collect();
        assert_eq!(
            &kinds[..4],
            ["http", "http", "handshake", "server_frame"],
            "{kinds:?}"
        );
        let handshake = &journal[2];
        assert_eq!(handshake["query"]["access_token"], "[redacted]");
        assert!(
            !journal.to_string().contains("eyJ"),
            "no token in clear anywhere"
        );
        let rejected = journal
            .as_array()
            .expect("array")
            .iter()
            .find(|e| e["kind"] == "client_frame" && e.get("error").is_some())
            .expect("the bad frame");
        assert_eq!(rejected["frame"]["type"], "EVENT_TYPE_BOGUS");
        assert!(
            rejected["error"]
                .as_str()
                .expect("error")
                .starts_with("Unknown event type or invalid message format")
        );

        let health = http(&server, "GET", "/_mock/health", &[], "").await.json();
        assert_eq!(
            (health["ok"].as_bool(), health["sessions"].as_u64()),
            (Some(true), Some(1))
        );
        let openapi = http(&server, "GET", "/_mock/openapi.json", &[], "")
            .await
            .json();
        assert_eq!(openapi["openapi"], "3.1.0");
        assert!(openapi["paths"]["/_mock/sessions/{id}/steps"]["post"].is_object());
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_journal_can_be_followed_as_json_lines() {
    bounded(async {
        let (server, session, mut client) = silent_session(Config::default()).await;
        let url = format!(
            "{}/_mock/sessions/{session}/journal?follow=true",
            server.base_url()
        );
        let authority = server.addr().to_string();
        let (subscribed, following) = tokio::sync::oneshot::channel();
        let follower = tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(
                url.trim_start_matches("http://")
                    .split('/')
                    .next()
                    .expect("authority"),
            )
            .await
            .expect("connect");
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(connection);
            let path = url
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{p}"))
                .expect("path");
            let request = hyper::Request::get(path)
                .header("host", authority)
                .body(http_body_util::Empty::<hyper::body::Bytes>::new())
                .expect("request");
            let mut response = sender.send_request(request).await.expect("response");
            assert_eq!(response.headers()["content-type"], "application/x-ndjson");
            let mut seen = String::new();
            let mut subscribed = Some(subscribed);
            use http_body_util::BodyExt;
            while let Some(frame) = response.body_mut().frame().await {
                if let Some(data) = frame.expect("frame").data_ref() {
                    seen.push_str(&String::from_utf8_lossy(data));
                    // The entries so far have arrived: the follow is live.
                    if let Some(subscribed) = subscribed.take() {
                        let _ = subscribed.send(());
                    }
                }
                if seen.contains("follow-me") {
                    break;
                }
            }
            seen
        });
        following.await.expect("the follow starts");
        client.send(&user_message("follow-me")).await;
        let seen = follower.await.expect("follower");
        for line in seen.lines() {
            serde_json::from_str::<Value>(line).expect("every line is JSON");
        }
        assert!(seen.lines().count() >= 5);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn advancing_the_clock_fires_the_idle_timeout_now() {
    bounded(async {
        let (server, session, mut client) = silent_session(Config::default()).await;
        let (status, body) = post(&server, "/_mock/clock", r#"{"advance_ms": 600000}"#).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["clock_ms"].as_u64().expect("clock") >= 600_000);
        let end = client.until("EVENT_TYPE_SESSION_END").await;
        assert_eq!(
            end.last().expect("end")["payload"]["reason"],
            "REASON_USER_ABANDONED"
        );
        assert_eq!(client.closed().await, 1000);
        assert!(server.sessions().iter().all(|s| s.session_id != session));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn next_scenario_connector_scenario_and_reset() {
    bounded(async {
        let server = start(Config::default()).await;
        let response = http(
            &server,
            "PUT",
            "/_mock/next-scenario",
            &[("content-type", "application/json")],
            r#"{"scenario": "handoff/client-managed"}"#,
        )
        .await;
        assert_eq!(response.status, StatusCode::OK);
        let (_, first) = new_session(&server, false).await;
        let (_, second) = new_session(&server, false).await;
        let scenario_of = |id: &str| {
            server
                .sessions()
                .into_iter()
                .find(|s| s.session_id == id)
                .expect("listed")
                .scenario
        };
        assert_eq!(scenario_of(&first), "handoff/client-managed");
        assert_eq!(
            scenario_of(&second),
            "playground",
            "next-scenario applies once"
        );

        let (token, _) = server.credentials();
        server
            .set_connector_scenario(&token, "faults/tolerance")
            .await
            .expect("known connector");
        let (_, third) = new_session(&server, false).await;
        assert_eq!(scenario_of(&third), "faults/tolerance");

        let (status, body) = post(&server, "/_mock/reset", "").await;
        assert_eq!(
            (status, body["sessions"].as_u64()),
            (StatusCode::OK, Some(0))
        );
        let (_, fourth) = new_session(&server, false).await;
        assert_eq!(
            scenario_of(&fourth),
            "playground",
            "reset forgets control choices"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn reset_closes_open_sockets_with_1001() {
    bounded(async {
        let (server, _session, mut client) = silent_session(Config::default()).await;
        server.reset();
        assert_eq!(client.closed().await, 1001);
        assert!(server.sessions().is_empty());
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_control_token_is_required_when_configured() {
    bounded(async {
        let server = start(Config {
            control_token: Some("s3cret".into()),
            ..Config::default()
        })
        .await;
        assert_eq!(
            http(&server, "GET", "/_mock/health", &[], "").await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            http(
                &server,
                "GET",
                "/_mock/health",
                &[("authorization", "Bearer wrong")],
                ""
            )
            .await
            .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            http(
                &server,
                "GET",
                "/_mock/health",
                &[("authorization", "Bearer s3cret")],
                ""
            )
            .await
            .status,
            StatusCode::OK
        );
        server.shutdown().await;
    })
    .await;
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mm-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[cfg(unix)]
#[tokio::test]
async fn a_recording_survives_sigkill_with_every_event_the_client_received() {
    bounded(async {
        let dir = temp_dir("record");
        let args = [
            std::ffi::OsStr::new("--bind"),
            std::ffi::OsStr::new("127.0.0.1:0"),
            std::ffi::OsStr::new("--record"),
            dir.as_os_str(),
        ];
        let (mut child, ready) = crate::support::spawn_binary(&args).await;
        let base = ready["base_url"].as_str().expect("base").to_owned();

        // A separate process: the handshake goes over real HTTP.
        let token = raw_post(
            &base,
            "/api/v1/access-token",
            &[("x-token", "mock-connector-token"), ("x-host", "localhost")],
            "{}",
        )
        .await["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
        let session = raw_post(
            &base,
            "/api/v1/sessions",
            &[("authorization", &format!("Bearer {token}"))],
            "{}",
        )
        .await["session_id"]
            .as_str()
            .expect("session")
            .to_owned();
        let ws = format!(
            "{}/ws?session_id={session}&access_token={token}",
            base.replace("http://", "ws://")
        );
        let mut client = Client::connect(&ws).await.expect("open");
        let mut received = vec![client.next_event().await];
        client.send(JOIN).await;
        received.extend(client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await);
        client.send(&user_message("hello")).await;
        received.extend(client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await);

        child.kill().expect("SIGKILL");
        let _ = child.wait();

        let text = std::fs::read_to_string(dir.join(format!("{session}.jsonl")))
            .expect("recording exists");
        let entries = read_recording(&text).expect("parses");
        let recorded: Vec<String> = entries
            .iter()
            .filter_map(|e| match &e.event {
                JournalEvent::ServerFrame { frame, .. } => {
                    serde_json::from_str::<Value>(frame.get()).ok()
                }
                _ => None,
            })
            .map(|f| f["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        for event in &received {
            let id = event["id"].as_str().expect("id");
            assert!(
                recorded.iter().any(|r| r == id),
                "{} missing from the recording",
                event["type"]
            );
        }
        assert!(!text.contains(&token), "the token is never recorded");
    })
    .await;
}

async fn raw_post(base: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Value {
    use http_body_util::BodyExt;
    let authority = base.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let mut request = hyper::Request::post(path)
        .header("host", authority)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(
            request
                .body(http_body_util::Full::new(hyper::body::Bytes::from(
                    body.to_owned(),
                )))
                .expect("request"),
        )
        .await
        .expect("response");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&bytes).expect("JSON")
}

#[tokio::test]
async fn a_recording_replayed_as_a_scenario_reproduces_the_transcript() {
    for fixture in [
        "lifecycle/basic-conversation",
        "handoff/server-managed",
        "lifecycle/streaming-conversation",
    ] {
        let dir = temp_dir("replay");
        let original = bounded(crate::scenarios::run_exercise_with(
            fixture,
            fixture,
            5,
            Some(dir.clone()),
        ))
        .await;
        let recording = std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .expect("one recording");
        let replayed = bounded(crate::scenarios::run_exercise_with(
            fixture,
            &recording.display().to_string(),
            5,
            None,
        ))
        .await;
        assert_eq!(normalise(&replayed), normalise(&original), "{fixture}");
    }
}

/// `GET /_mock/requests`: every REST call and handshake, refused ones included before any
/// session exists, filtered by endpoint, status, session and time, or counted.
#[tokio::test]
async fn the_request_log_answers_over_http_with_refused_calls_filters_and_counts() {
    bounded(async {
        let server = start(Config::default()).await;
        // Refused before any session: a token call without headers, a handshake to nowhere.
        let refused = http(&server, "POST", "/api/v1/access-token", &[], "{}").await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        let nowhere = http(&server, "GET", "/ws?session_id=none", &[], "").await;
        assert_eq!(nowhere.status, StatusCode::BAD_REQUEST);
        let (_, session) = new_session(&server, false).await;
        let get = |query: &str| {
            let path = format!("/_mock/requests{query}");
            let server = &server;
            async move {
                let response = http(server, "GET", &path, &[], "").await;
                (response.status, response.json())
            }
        };
        let (status, all) = get("").await;
        assert_eq!(status, StatusCode::OK);
        let statuses: Vec<u64> = all
            .as_array()
            .expect("an array")
            .iter()
            .map(|c| c["status"].as_u64().unwrap_or(0))
            .collect();
        assert_eq!(
            statuses,
            [401, 400, 200, 200],
            "oldest first, refused ones too: {all}"
        );
        let (_, refused) = get("?endpoint=access-token&status=401").await;
        assert_eq!(refused.as_array().map(Vec::len), Some(1), "{refused}");
        assert_eq!(refused[0]["error"], "Missing authentication headers");
        let (_, by_path) = get("?endpoint=/api/v1/sessions").await;
        assert_eq!(by_path[0]["session_id"], session.as_str(), "{by_path}");
        let (_, counted) = get("?endpoint=ws&count=true").await;
        assert_eq!(counted, json!({ "count": 1 }));
        let (_, mine) = get(&format!("?session_id={session}&count=true")).await;
        assert_eq!(
            mine,
            json!({ "count": 1 }),
            "the sessions call names its session"
        );
        let last = all[3]["at_ms"].as_u64().expect("at_ms");
        let (_, late) = get(&format!("?since_ms={}&count=true", last + 1)).await;
        assert_eq!(late, json!({ "count": 0 }));
        let (_, early) = get(&format!("?until_ms={}&count=true", last + 1)).await;
        assert_eq!(early, json!({ "count": 4 }));
        // Malformed filters are refused with what is wrong.
        let (status, body) = get("?endpoint=chat").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains("chat")),
            "{body}"
        );
        assert_eq!(get("?status=abc").await.0, StatusCode::BAD_REQUEST);
        assert_eq!(get("?colour=red").await.0, StatusCode::BAD_REQUEST);
        server.shutdown().await;
    })
    .await;
}
