//! `messaging-mock proxy`: in front of an upstream mock (over TLS with its generated CA), a
//! conversation is forwarded and recorded, and the recording replays offline to the same
//! transcript; a drifting upstream's and a broken client's violations are listed with the
//! frame and the rule; `--strict` closes; an unreachable upstream answers 502.

use std::path::Path;

use mock_server::proxy::{Proxy, ProxyConfig, Upstream};
use mock_server::scenario::raw::RawFault;
use mock_server::{Config, MockServer};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::{Client, JOIN, bounded, converse, normalise, request, user_message};

/// A proxy on a port of its own in front of `upstream`; stopped when the token is cancelled.
async fn start_proxy(
    upstream: Upstream,
    record: Option<&Path>,
    strict: bool,
) -> (String, Proxy, CancellationToken) {
    serve_proxy(
        ProxyConfig {
            record_dir: record.map(Path::to_owned),
            strict,
            ..ProxyConfig::new(upstream)
        },
        None,
    )
    .await
}

/// A proxy with `config` on a port of its own; stopped when the token is cancelled.
async fn serve_proxy(
    config: ProxyConfig,
    tls: Option<mock_server::tls::TlsIdentity>,
) -> (String, Proxy, CancellationToken) {
    let proxy = Proxy::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("an address").to_string();
    let stop = CancellationToken::new();
    let signal = stop.clone();
    tokio::spawn(mock_server::proxy::serve(
        listener,
        proxy.clone(),
        tls,
        async move {
            signal.cancelled().await;
        },
    ));
    (addr, proxy, stop)
}

/// A mock, and a proxy in front of it (plain `http://`, no recording).
async fn proxied(strict: bool) -> (MockServer, String, Proxy, CancellationToken) {
    let upstream = MockServer::start().await.expect("starts");
    let (addr, proxy, stop) = start_proxy(
        Upstream::new(&upstream.base_url(), None).expect("an upstream"),
        None,
        strict,
    )
    .await;
    (upstream, addr, proxy, stop)
}

/// A token request through `addr` with good credentials, in plain HTTP: (status, body).
async fn token_request(addr: &str) -> (u16, String) {
    request(
        addr,
        None,
        "POST",
        "/api/v1/access-token",
        &CREDENTIALS,
        "{}",
    )
    .await
    .expect("answers")
}

/// The statuses a token request and a handshake for `session` get through `addr`, when
/// neither succeeds.
async fn refusals(addr: &str, session: &str) -> (u16, u16) {
    let (status, _) = request(
        addr,
        None,
        "POST",
        "/api/v1/access-token",
        &CREDENTIALS,
        "{}",
    )
    .await
    .expect("answers");
    let url = format!("ws://{addr}/ws?session_id={session}&access_token=t");
    let refused = Client::connect(&url).await.err().expect("refused");
    (status, refused.status)
}

/// Token and session through `addr`: (session id, token).
async fn session_through(addr: &str, headers: &[(&str, &str)]) -> (String, String) {
    let (status, body) = request(addr, None, "POST", "/api/v1/access-token", headers, "{}")
        .await
        .expect("answers");
    assert_eq!(status, 200, "{body}");
    let token: Value = serde_json::from_str(&body).expect("JSON");
    let token = token["access_token"].as_str().expect("a token").to_owned();
    let bearer = format!("Bearer {token}");
    let (status, body) = request(
        addr,
        None,
        "POST",
        "/api/v1/sessions",
        &[
            ("authorization", &bearer),
            ("content-type", "application/json"),
        ],
        r#"{"streaming_enabled": false}"#,
    )
    .await
    .expect("answers");
    assert_eq!(status, 200, "{body}");
    let session: Value = serde_json::from_str(&body).expect("JSON");
    (
        session["session_id"].as_str().expect("an id").to_owned(),
        token,
    )
}

const CREDENTIALS: [(&str, &str); 3] = [
    ("x-token", "mock-connector-token"),
    ("x-host", "localhost"),
    ("content-type", "application/json"),
];

/// A session through `addr`, its socket open and the agent joined: (client, session id).
async fn joined_through(addr: &str) -> (Client, String) {
    let (session, token) = session_through(addr, &CREDENTIALS).await;
    let url = format!("ws://{addr}/ws?session_id={session}&access_token={token}");
    let mut client = Client::connect(&url).await.expect("opens");
    client.next_event().await;
    client.send(JOIN).await;
    client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
    (client, session)
}

#[tokio::test]
async fn a_conversation_through_the_proxy_is_recorded_and_replays_offline_to_the_same_transcript() {
    bounded(async {
        let config = Config {
            seed: Some(7),
            ..Config::default()
        };
        let identity = mock_server::tls::TlsIdentity::generate().expect("generates");
        let upstream = MockServer::start_tls_with(config, identity)
            .await
            .expect("starts");
        let ca = upstream.ca_pem().expect("a CA").to_owned();
        let dir = tempfile::tempdir().expect("a directory");
        let (addr, proxy, stop) = start_proxy(
            Upstream::new(&upstream.base_url(), Some(ca.as_bytes())).expect("an upstream"),
            Some(dir.path()),
            false,
        )
        .await;
        let (session, token) = session_through(&addr, &CREDENTIALS).await;
        let url = format!("ws://{addr}/ws?session_id={session}&access_token={token}");
        let through = converse(&url).await;
        // A faithful upstream and a correct client: nothing to report.
        assert!(proxy.violations().is_empty(), "{:?}", proxy.violations());
        // The session went to the upstream: it is there, with the user's message.
        assert!(upstream.sessions().iter().any(|s| s.session_id == session));

        let recording = dir.path().join(format!("{session}.jsonl"));
        let text = std::fs::read_to_string(&recording).expect("recorded");
        let entries = mock_server::journal::read_recording(&text).expect("a recording");
        let kinds: Vec<String> = entries
            .iter()
            .map(|e| {
                serde_json::to_value(e).expect("JSON")["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        for kind in ["http", "handshake", "client_frame", "server_frame"] {
            assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
        }
        assert!(!text.contains(&token), "the access token is redacted");

        // Offline: a mock serving the recording answers the same conversation the same way.
        let replay = crate::support::start(Config {
            scenario: recording.display().to_string(),
            ..Config::default()
        })
        .await;
        let (replayed_token, replayed_session) = crate::support::new_session(&replay, false).await;
        let offline = converse(&crate::support::ws_url(
            &replay,
            &replayed_session,
            &replayed_token,
            None,
        ))
        .await;
        assert_eq!(normalise(&offline), normalise(&through));
        // And `drift` finds the recording of the upstream mock the same as a fresh mock.
        let report = mock_server::drift::drift(
            &entries,
            Config {
                seed: Some(7),
                time_scale: 20.0,
                ..Config::default()
            },
        )
        .await
        .expect("runs");
        assert_eq!(report.differences, vec![], "{report:?}");
        assert_eq!(report.client_frames, 2);
        stop.cancel();
        replay.shutdown().await;
        upstream.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_drifting_upstream_and_a_broken_client_are_listed_with_the_frame_and_the_rule() {
    bounded(async {
        let (upstream, addr, proxy, stop) = proxied(false).await;
        // AUTH-1: no X-Host on the token request (the upstream refuses it too).
        let (status, _) = request(
            &addr,
            None,
            "POST",
            "/api/v1/access-token",
            &[("x-token", "mock-connector-token")],
            "{}",
        )
        .await
        .expect("answers");
        assert_eq!(status, 401, "the upstream's answer passes through");
        let (mut client, session) = joined_through(&addr).await;
        let rules = |proxy: &Proxy| -> Vec<String> {
            proxy.violations().into_iter().map(|v| v.rule).collect()
        };
        assert_eq!(rules(&proxy), ["AUTH-1"]);
        // The upstream drifts: the next event is sent twice.
        upstream
            .inject_faults(&session, vec![RawFault::DuplicateNext])
            .expect("injected");
        client.send(&user_message("hello")).await;
        client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        // The client breaks WS-5: an event type the protocol does not have.
        client
            .send(r#"{"type":"EVENT_TYPE_SHOUT","payload":{}}"#)
            .await;
        crate::support::eventually("the violations are listed", || rules(&proxy).len() >= 3).await;
        let (status, body) = request(&addr, None, "GET", "/_mock/violations", &[], "")
            .await
            .expect("answers");
        assert_eq!(status, 200);
        let listed: Value = serde_json::from_str(&body).expect("JSON");
        let find = |rule: &str| {
            listed
                .as_array()
                .expect("a list")
                .iter()
                .find(|v| v["rule"] == rule)
                .cloned()
                .unwrap_or_else(|| panic!("no {rule} in {listed}"))
        };
        let sequence = find("server-duplicate");
        assert_eq!(sequence["direction"], "server");
        assert_eq!(sequence["session_id"], session.as_str());
        assert!(
            sequence["frame"]
                .as_str()
                .is_some_and(|f| f.contains("sequence")),
            "{sequence}"
        );
        let shout = find("WS-5");
        assert_eq!(shout["direction"], "client");
        assert!(
            shout["frame"]
                .as_str()
                .is_some_and(|f| f.contains("EVENT_TYPE_SHOUT"))
        );
        stop.cancel();
        upstream.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn strict_closes_a_connection_on_its_first_violation() {
    bounded(async {
        let (upstream, addr, _proxy, stop) = proxied(true).await;
        // A good frame passes (the join); a bad one closes with 1008.
        let (mut client, _) = joined_through(&addr).await;
        client.send("not json").await;
        assert_eq!(client.closed().await, 1008);
        stop.cancel();
        upstream.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_upstream_answers_502_and_is_listed() {
    bounded(async {
        // A port that was free a moment ago: nothing listens there now.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
            listener.local_addr().expect("an address").port()
        };
        let (addr, proxy, stop) = start_proxy(
            Upstream::new(&format!("http://127.0.0.1:{port}"), None).expect("an upstream"),
            None,
            false,
        )
        .await;
        assert_eq!(refusals(&addr, "s").await, (502, 502));
        let upstream_failures = proxy
            .violations()
            .iter()
            .filter(|v| v.rule == "upstream")
            .count();
        assert_eq!(upstream_failures, 2, "{:?}", proxy.violations());
        // Bad upstream URLs are refused before anything starts.
        for bad in ["ftp://x", "https://", "localhost:80"] {
            assert!(Upstream::new(bad, None).is_err(), "{bad}");
        }
        stop.cancel();
    })
    .await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_binary_proxies_prints_a_readiness_line_and_sums_up_at_exit() {
    bounded(async {
        use std::io::{BufRead as _, Read as _};
        use std::process::{Command, Stdio};
        let upstream = MockServer::start().await.expect("starts");
        let mut child = Command::new(env!("CARGO_BIN_EXE_messaging-mock"))
            .args([
                "proxy",
                "--bind",
                "127.0.0.1:0",
                "--upstream",
                &upstream.base_url(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let stdout = child.stdout.take().expect("stdout");
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map(|_| line)
        })
        .await
        .expect("joined")
        .expect("a readiness line");
        let ready: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(ready["proxy"], true, "{ready}");
        let addr = ready["base_url"]
            .as_str()
            .and_then(|u| u.strip_prefix("http://"))
            .expect("a base URL")
            .to_owned();
        // A client breaking AUTH-1 through it, then SIGTERM: the summary names it.
        let (status, _) = request(&addr, None, "POST", "/api/v1/access-token", &[], "{}")
            .await
            .expect("answers");
        assert_eq!(status, 401);
        let (status, health) = request(&addr, None, "GET", "/_mock/health", &[], "")
            .await
            .expect("answers");
        assert_eq!(status, 200, "{health}");
        assert!(health.contains(r#""violations":2"#), "{health}");
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        let mut stderr = child.stderr.take().expect("stderr");
        let (exit, text) = tokio::task::spawn_blocking(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            (child.wait().expect("waits"), text)
        })
        .await
        .expect("joined");
        assert!(exit.success(), "{exit:?}: {text}");
        assert!(
            text.contains("2 violation(s)") && text.contains("AUTH-1"),
            "{text}"
        );

        // A URL that is not one ends the start with exit 2.
        let refused = Command::new(env!("CARGO_BIN_EXE_messaging-mock"))
            .args([
                "proxy",
                "--bind",
                "127.0.0.1:0",
                "--upstream",
                "ftp://example.test",
            ])
            .output()
            .expect("runs");
        assert_eq!(refused.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("not an http:// or https:// URL")
        );
        upstream.shutdown().await;
    })
    .await;
}

/// `POST /_mock/sessions/{id}/faults` on the proxy, as JSON: (status, body).
async fn inject(addr: &str, session: &str, fault: &str) -> (u16, String) {
    request(
        addr,
        None,
        "POST",
        &format!("/_mock/sessions/{session}/faults"),
        &[("content-type", "application/json")],
        fault,
    )
    .await
    .expect("answers")
}

#[tokio::test]
async fn faults_injected_into_proxied_traffic_reach_the_client_and_the_journal_not_the_violations()
{
    bounded(async {
        let (upstream, addr, proxy, stop) = proxied(false).await;
        let (session, token) = session_through(&addr, &CREDENTIALS).await;
        let url = format!("ws://{addr}/ws?session_id={session}&access_token={token}");
        let mut client = Client::connect(&url).await.expect("opens");
        client.next_event().await;
        client.send(JOIN).await;
        client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;

        // Duplicate: some event of the next answer arrives twice, with the same id.
        assert_eq!(
            inject(&addr, &session, r#""duplicate_next""#).await,
            (200, r#"{"accepted":1}"#.to_owned())
        );
        client.send(&user_message("one")).await;
        let events = client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        let mut seen = std::collections::HashSet::new();
        let answer: Vec<String> = events
            .iter()
            .filter(|e| seen.insert(e["id"].to_string()))
            .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            answer.len() + 1,
            events.len(),
            "one event twice: {events:?}"
        );

        // Swap: the same answer's first two events arrive the other way round.
        inject(&addr, &session, r#""swap_next""#).await;
        client.send(&user_message("two")).await;
        let events = client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        let swapped: Vec<String> = events
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
            .collect();
        let mut expected = answer.clone();
        expected.swap(0, 1);
        assert_eq!(swapped, expected, "the unswapped answer was {answer:?}");
        let sequences: Vec<u64> = events
            .iter()
            .filter_map(|e| e["sequence"].as_u64())
            .collect();

        // Delay: the echo of the next message comes at least 400 ms after it was sent.
        inject(&addr, &session, r#"{"delay_next_echo_ms": 400}"#).await;
        let sent = std::time::Instant::now();
        client.send(&user_message("three")).await;
        client.until("EVENT_TYPE_USER_MESSAGE").await;
        assert!(sent.elapsed() >= std::time::Duration::from_millis(400));

        // Resend the newest event: its id again.
        let newest = sequences.last().copied().expect("events");
        inject(&addr, &session, r#"{"resend_previous": 1}"#).await;
        let again = client.next_event().await;
        assert!(
            again["sequence"].as_u64().is_some_and(|s| s > newest),
            "{again}"
        );

        // Refuse the next handshake, then drop: the client sees no close frame, its next
        // attempt gets 503 from the proxy, the one after reaches the upstream.
        inject(
            &addr,
            &session,
            r#"[{"refuse_handshakes": {"count": 1, "status": 503}}, "drop"]"#,
        )
        .await;
        assert_eq!(client.closed().await, 1006);
        let refused = Client::connect(&url).await.err().expect("refused");
        assert_eq!(refused.status, 503);
        // Split the next replay into batches of one event.
        inject(&addr, &session, r#"{"split_next_replay": 1}"#).await;
        let mut client = Client::connect(&url).await.expect("opens");
        let first = client.next_event().await;
        let second = client.next_event().await;
        for batch in [&first, &second] {
            assert_eq!(batch["type"], "EVENT_TYPE_EVENT_BATCH", "{batch}");
            assert_eq!(
                batch["payload"]["events"].as_array().map(Vec::len),
                Some(1),
                "{batch}"
            );
        }
        // Close with a code.
        inject(&addr, &session, r#"{"close": 4002}"#).await;
        assert_eq!(client.closed().await, 4002);

        // The faults are in the session's journal; the upstream broke no rule.
        let (status, body) = request(
            &addr,
            None,
            "GET",
            &format!("/_mock/sessions/{session}/journal"),
            &[],
            "",
        )
        .await
        .expect("answers");
        assert_eq!(status, 200);
        let journal: Value = serde_json::from_str(&body).expect("JSON");
        let faults = journal
            .as_array()
            .expect("a list")
            .iter()
            .filter(|e| e["kind"] == "fault")
            .count();
        assert_eq!(faults, 8, "{journal}");
        assert!(proxy.violations().is_empty(), "{:?}", proxy.violations());
        let (_, listed) = request(&addr, None, "GET", "/_mock/sessions", &[], "")
            .await
            .expect("answers");
        assert!(listed.contains(&session), "{listed}");
        stop.cancel();
        upstream.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_proxys_control_api_refuses_bad_faults_unknown_sessions_and_foreign_pages() {
    bounded(async {
        let (upstream, addr, _proxy, stop) = proxied(false).await;
        let (_client, session) = joined_through(&addr).await;
        let (status, body) = inject(&addr, &session, r#"["drop", {"close": 99}]"#).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains(r#""pointer":"/1"#), "{body}");
        let (status, body) = inject(&addr, &session, r#""no_such_fault""#).await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = inject(&addr, "never-seen", r#""drop""#).await;
        assert_eq!(status, 404, "{body}");
        // A web page elsewhere, or a rebound DNS name, is refused as by the mock.
        let path = format!("/_mock/sessions/{session}/faults");
        for headers in [
            vec![
                ("content-type", "application/json"),
                ("origin", "http://evil.example"),
            ],
            vec![("content-type", "text/plain")],
        ] {
            let (status, body) = request(&addr, None, "POST", &path, &headers, r#""drop""#)
                .await
                .expect("answers");
            let expected = if headers.len() == 2 { 403 } else { 415 };
            assert_eq!(status, expected, "{headers:?}: {body}");
        }
        // Every fault the console offers is one the proxy takes.
        let (status, templates) = request(&addr, None, "GET", "/_mock/ui/templates.json", &[], "")
            .await
            .expect("answers");
        assert_eq!(status, 200);
        let templates: Value = serde_json::from_str(&templates).expect("JSON");
        let offered = templates["faults"].as_array().expect("faults");
        assert!(offered.len() > 20);
        for fault in offered {
            let (status, body) = inject(&addr, &session, &fault["fault"].to_string()).await;
            assert_eq!(status, 200, "{fault}: {body}");
        }
        let (status, page) = request(&addr, None, "GET", "/_mock/ui/", &[], "")
            .await
            .expect("answers");
        assert_eq!(status, 200);
        assert!(page.contains("proxy.js"), "{page}");
        stop.cancel();
        upstream.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_slow_an_untrusted_and_a_malformed_upstream_each_get_a_clear_answer_and_an_entry() {
    bounded(async {
        use futures_util::{SinkExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;

        // Slow: it accepts connections and never answers. 504 at the proxy's timeout.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let silent_addr = silent.local_addr().expect("an address");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        let (addr, proxy, stop) = serve_proxy(
            ProxyConfig {
                timeout: std::time::Duration::from_millis(300),
                ..ProxyConfig::new(
                    Upstream::new(&format!("http://{silent_addr}"), None).expect("an upstream"),
                )
            },
            None,
        )
        .await;
        assert_eq!(refusals(&addr, "slow").await, (504, 504));
        let journal = proxy.journal_of("slow");
        let answered = serde_json::to_value(&journal).expect("JSON");
        assert_eq!(answered[0]["kind"], "handshake", "{answered}");
        assert_eq!(answered[0]["status"], 504, "{answered}");
        assert_eq!(
            proxy
                .violations()
                .iter()
                .filter(|v| v.detail.contains("no answer"))
                .count(),
            2
        );
        stop.cancel();

        // Untrusted: a TLS upstream whose certificate chains to another CA. 502, saying TLS.
        let identity = mock_server::tls::TlsIdentity::generate().expect("generates");
        let tls_upstream = MockServer::start_tls_with(Config::default(), identity)
            .await
            .expect("starts");
        let other = mock_server::tls::TlsIdentity::generate().expect("generates");
        let (addr, proxy, stop) = start_proxy(
            Upstream::new(&tls_upstream.base_url(), other.ca_pem().map(str::as_bytes))
                .expect("an upstream"),
            None,
            false,
        )
        .await;
        let (status, body) = token_request(&addr).await;
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("TLS"), "{body}");
        assert!(
            proxy
                .violations()
                .iter()
                .any(|v| v.rule == "upstream" && v.detail.contains("TLS"))
        );
        stop.cancel();
        tls_upstream.shutdown().await;

        // Malformed: an upstream that accepts the socket, then sends a frame that is not
        // JSON, one without an envelope, and closes with a code the protocol does not have.
        // Each reaches the client as sent, and each is listed.
        let fake = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let fake_addr = fake.local_addr().expect("an address");
        tokio::spawn(async move {
            let (socket, _) = fake.accept().await.expect("accepts");
            let mut ws = tokio_tungstenite::accept_async(socket)
                .await
                .expect("upgrades");
            for frame in ["not json", r#"{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE"}"#] {
                ws.send(Message::text(frame)).await.expect("sends");
            }
            let close = CloseFrame {
                code: 3999.into(),
                reason: "bye".into(),
            };
            ws.send(Message::Close(Some(close))).await.expect("closes");
            while ws.next().await.is_some() {}
        });
        let (addr, proxy, stop) = start_proxy(
            Upstream::new(&format!("http://{fake_addr}"), None).expect("an upstream"),
            None,
            false,
        )
        .await;
        let (mut ws, _) = tokio_tungstenite::connect_async(format!(
            "ws://{addr}/ws?session_id=bad&access_token=t"
        ))
        .await
        .expect("opens");
        let mut texts = Vec::new();
        let code = loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => texts.push(text.to_string()),
                Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break None,
            }
        };
        assert_eq!(
            texts,
            ["not json", r#"{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE"}"#]
        );
        assert_eq!(code, Some(3999));
        crate::support::eventually("three rules listed", || proxy.violations().len() >= 3).await;
        let rules: Vec<String> = proxy.violations().into_iter().map(|v| v.rule).collect();
        let details: Vec<String> = proxy.violations().into_iter().map(|v| v.detail).collect();
        let mut rules = rules;
        rules.dedup();
        assert_eq!(
            rules,
            ["server-frame-json", "server-envelope", "server-close-code"],
            "{details:?}"
        );
        stop.cancel();
    })
    .await;
}

#[tokio::test]
async fn the_proxy_serves_https_and_wss_and_refuses_plain_http_as_ws_1() {
    bounded(async {
        let upstream = MockServer::start().await.expect("starts");
        let identity = mock_server::tls::TlsIdentity::generate().expect("generates");
        let ca = identity.ca_pem().expect("a CA").to_owned();
        let (addr, proxy, stop) = serve_proxy(
            ProxyConfig::new(Upstream::new(&upstream.base_url(), None).expect("an upstream")),
            Some(identity),
        )
        .await;
        let (status, body) = request(
            &addr,
            Some(&ca),
            "POST",
            "/api/v1/access-token",
            &CREDENTIALS,
            "{}",
        )
        .await
        .expect("answers over TLS");
        assert_eq!(status, 200, "{body}");
        let token: Value = serde_json::from_str(&body).expect("JSON");
        let token = token["access_token"].as_str().expect("a token").to_owned();
        let bearer = format!("Bearer {token}");
        let (status, body) = request(
            &addr,
            Some(&ca),
            "POST",
            "/api/v1/sessions",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            "{}",
        )
        .await
        .expect("answers over TLS");
        assert_eq!(status, 200, "{body}");
        let session: Value = serde_json::from_str(&body).expect("JSON");
        let session = session["session_id"].as_str().expect("an id");
        let url = format!("wss://{addr}/ws?session_id={session}&access_token={token}");
        let mut client = Client::connect_tls(&url, &ca)
            .await
            .expect("opens over wss");
        client.next_event().await;
        client.send(JOIN).await;
        client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        assert!(proxy.violations().is_empty(), "{:?}", proxy.violations());
        // Plain HTTP to the TLS port: 400, and listed as the client's WS-1.
        let (status, body) = token_request(&addr).await;
        assert_eq!(status, 400, "{body}");
        let rules: Vec<String> = proxy.violations().into_iter().map(|v| v.rule).collect();
        assert_eq!(rules, ["WS-1"]);
        stop.cancel();
        upstream.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_https_upstream_without_upstream_ca_is_checked_against_the_platforms_roots() {
    bounded(async {
        let identity = mock_server::tls::TlsIdentity::generate().expect("generates");
        let tls_upstream = MockServer::start_tls_with(Config::default(), identity)
            .await
            .expect("starts");
        match Upstream::new(&tls_upstream.base_url(), None) {
            // A machine without a system store: said at start-up, with the way out.
            Err(error) => assert!(error.to_string().contains("--upstream-ca"), "{error}"),
            // The platform's roots do not hold a CA made a moment ago: refused as TLS.
            Ok(upstream) => {
                let (addr, proxy, stop) = start_proxy(upstream, None, false).await;
                let (status, body) = token_request(&addr).await;
                assert_eq!(status, 502, "{body}");
                assert!(body.contains("TLS"), "{body}");
                assert!(proxy.violations().iter().any(|v| v.rule == "upstream"));
                stop.cancel();
            }
        }
        tls_upstream.shutdown().await;
    })
    .await;
}
