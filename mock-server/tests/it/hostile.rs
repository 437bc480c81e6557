//! Hostile and careless input: every bad request gets its documented answer, nothing panics or
//! wedges, and the server still serves a normal session afterwards.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mock_server::{Config, MockServer};

use crate::support::{Client, JOIN, bounded, http, new_session, new_session_client, start, ws_url};

/// A whole ordinary conversation still works: the server survived what came before.
pub async fn still_serves(server: &MockServer) {
    let (token, session) = new_session(server, false).await;
    let mut client = Client::connect(&ws_url(server, &session, &token, None))
        .await
        .expect("a normal handshake is accepted");
    client.next_event().await;
    client.send(JOIN).await;
    client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// A request and the status it must get: method, path, headers.
type Refusal<'a> = (&'a str, &'a str, Vec<(&'a str, String)>, StatusCode);

/// `PUT /_mock/next-scenario`: its status and message.
pub async fn put_scenario(server: &MockServer, scenario: &str) -> (StatusCode, String) {
    let body = serde_json::json!({ "scenario": scenario }).to_string();
    let response = http(server, "PUT", "/_mock/next-scenario", &[JSON], &body).await;
    let message = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (response.status, message)
}

/// Finding 1: `/dev/zero` as a scenario grew RSS by 1.4 GB/s and wedged every endpoint.
#[tokio::test]
async fn scenario_paths_are_read_bounded_and_unreadable_ones_get_one_answer() {
    bounded(async {
        let server = start(Config::default()).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; 5 * 1024 * 1024]).expect("written");
        let started = Instant::now();
        let mut answers = Vec::new();
        for path in [
            "/dev/zero".to_owned(),
            "/no/such/file.json".to_owned(),
            dir.path().display().to_string(),
            big.display().to_string(),
            "/proc/self/mem".to_owned(),
        ] {
            let (status, message) = put_scenario(&server, &path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {message}");
            answers.push(message.replace(&path, "<path>"));
        }
        assert!(started.elapsed() < Duration::from_secs(3), "bounded reads");
        answers.dedup();
        assert_eq!(
            answers.len(),
            1,
            "one answer for every unreadable path: {answers:?}"
        );
        let health = http(&server, "GET", "/_mock/health", &[], "").await;
        assert_eq!(health.status, StatusCode::OK);
        still_serves(&server).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn with_scenario_dirs_configured_a_path_outside_them_is_refused_like_a_missing_one() {
    bounded(async {
        let inside = tempfile::tempdir().expect("temp dir");
        let outside = tempfile::tempdir().expect("temp dir");
        let text = r#"{"description": "mine", "greeting": {"text": "Mine"}}"#;
        for dir in [&inside, &outside] {
            std::fs::write(dir.path().join("mine.json"), text).expect("written");
        }
        let server = start(Config {
            scenario_dirs: vec![inside.path().to_owned()],
            ..Config::default()
        })
        .await;
        let ok = inside.path().join("mine.json").display().to_string();
        assert_eq!(put_scenario(&server, &ok).await.0, StatusCode::OK);
        let out = outside.path().join("mine.json").display().to_string();
        let (status, message) = put_scenario(&server, &out).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            message.contains("not a readable scenario file"),
            "{message}"
        );
        let dotdot = format!(
            "{}/../{}/mine.json",
            inside.path().display(),
            outside
                .path()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
        );
        assert_eq!(
            put_scenario(&server, &dotdot).await.0,
            StatusCode::BAD_REQUEST
        );
        server.shutdown().await;
    })
    .await;
}

/// Finding 1, second half: any web page could drive `/_mock/`.
#[tokio::test]
async fn the_control_api_refuses_browsers_other_hosts_unknown_peers_and_non_json_writes() {
    bounded(async {
        let server = start(Config::default()).await;
        let own = server.addr().to_string();
        let port = server.addr().port();
        let refused: Vec<Refusal<'_>> = vec![
            (
                "GET",
                "/_mock/sessions",
                vec![("origin", "https://evil.example".into())],
                StatusCode::FORBIDDEN,
            ),
            (
                "GET",
                "/_mock/sessions",
                vec![("origin", "null".into())],
                StatusCode::FORBIDDEN,
            ),
            (
                "GET",
                "/_mock/sessions",
                vec![("origin", format!("http://attacker.example:{port}"))],
                StatusCode::FORBIDDEN,
            ),
            (
                "GET",
                "/_mock/sessions",
                vec![("host", format!("attacker.example:{port}"))],
                StatusCode::FORBIDDEN,
            ),
            (
                "GET",
                "/_mock/sessions",
                vec![("host", "127.0.0.1:1".into())],
                StatusCode::FORBIDDEN,
            ),
            (
                "GET",
                "/_mock/sessions",
                vec![("host", "127.0.0.1".into())],
                StatusCode::FORBIDDEN,
            ),
            (
                "POST",
                "/_mock/reset",
                vec![("content-type", "text/plain".into())],
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                "POST",
                "/_mock/reset",
                vec![],
                StatusCode::UNSUPPORTED_MEDIA_TYPE, // a body, and no type
            ),
            (
                "POST",
                "/_mock/clock",
                vec![("content-type", "application/x-www-form-urlencoded".into())],
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                "PUT",
                "/_mock/next-scenario",
                vec![("content-type", "multipart/form-data".into())],
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
        ];
        for (method, path, headers, status) in refused {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let response = http(&server, method, path, &headers, r#"{"advance_ms": 1}"#).await;
            assert_eq!(response.status, status, "{method} {path} {headers:?}");
        }
        // A write with no body needs no type (`curl -X POST …/reset`); a cross-site one is
        // still refused by its Origin.
        let bodiless = http(&server, "POST", "/_mock/reset", &[], "").await;
        assert_eq!(bodiless.status, StatusCode::OK, "a bodiless reset");
        let cross_site = [("origin", "https://evil.example")];
        let bodiless = http(&server, "POST", "/_mock/reset", &cross_site, "").await;
        assert_eq!(bodiless.status, StatusCode::FORBIDDEN, "a cross-site reset");
        for host in [
            own.clone(),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ] {
            let response = http(&server, "GET", "/_mock/health", &[("host", &host)], "").await;
            assert_eq!(response.status, StatusCode::OK, "{host}");
        }
        let same_origin = format!("http://{own}");
        let response = http(
            &server,
            "GET",
            "/_mock/health",
            &[("origin", &same_origin)],
            "",
        )
        .await;
        assert_eq!(response.status, StatusCode::OK, "the console's own origin");
        // No CORS on the control API; the protocol endpoints keep theirs (spec §12 A10).
        let preflight = [
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ];
        let control = http(&server, "OPTIONS", "/_mock/reset", &preflight, "").await;
        assert!(control.headers.get("access-control-allow-origin").is_none());
        let protocol = http(&server, "OPTIONS", "/api/v1/access-token", &preflight, "").await;
        assert!(
            protocol
                .headers
                .get("access-control-allow-origin")
                .is_some()
        );
        // Without a visible peer the guard refuses (it used to let the request through).
        let router = mock_server::router::router(server.state().clone());
        let request = axum::http::Request::get("/_mock/health")
            .header("host", &own)
            .body(axum::body::Body::empty())
            .expect("request");
        let response = tower::ServiceExt::oneshot(router, request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        still_serves(&server).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn with_a_control_token_presented_other_origins_and_hosts_are_allowed() {
    bounded(async {
        let server = start(Config {
            control_token: Some("s3cret-control-token".into()),
            ..Config::default()
        })
        .await;
        let ok = [
            ("authorization", "Bearer s3cret-control-token"),
            ("origin", "https://dashboard.example"),
            ("host", "mock.internal:9999"),
        ];
        assert_eq!(
            http(&server, "GET", "/_mock/health", &ok, "").await.status,
            StatusCode::OK
        );
        let wrong = [("authorization", "Bearer nope")];
        assert_eq!(
            http(&server, "GET", "/_mock/health", &wrong, "")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        server.shutdown().await;
    })
    .await;
}

/// Finding 6: `{"scale": 1e-20}` made every session's timer task panic; huge `advance_ms`
/// overflowed the clock arithmetic, after which requests panicked.
#[tokio::test]
async fn clock_input_that_would_overflow_is_refused_naming_its_field() {
    bounded(async {
        let server = start(Config::default()).await;
        let (_token, _session, mut client) = new_session_client(&server, false).await;
        client.next_event().await;
        let bad = [
            (r#"{"scale": 1e-20}"#, "scale"),
            (r#"{"scale": 0}"#, "scale"),
            (r#"{"scale": -3}"#, "scale"),
            (r#"{"scale": 1e300}"#, "scale"),
            (r#"{"advance_ms": 18446744073709551615}"#, "advance_ms"),
            (r#"{"advance_ms": -1}"#, "advance_ms"),
            (r#"{"advance_ms": "soon"}"#, "advance_ms"),
            (r#"{"advance_ms": 1.5}"#, "advance_ms"),
            (r#"{}"#, "advance_ms"),
        ];
        for (body, field) in bad {
            let response = http(&server, "POST", "/_mock/clock", &[JSON], body).await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}");
            let text = String::from_utf8_lossy(&response.body);
            assert!(text.contains(field), "{body}: {text}");
        }
        // Repeated large advances stop at the cap with an answer, never a panic.
        let year = 365u64 * 24 * 3600 * 1000;
        let mut refused = false;
        for _ in 0..120 {
            let body = format!(r#"{{"advance_ms": {year}}}"#);
            let response = http(&server, "POST", "/_mock/clock", &[JSON], &body).await;
            if response.status == StatusCode::BAD_REQUEST {
                refused = true;
                break;
            }
            assert_eq!(response.status, StatusCode::OK);
        }
        assert!(refused, "the clock stops somewhere");
        assert_eq!(
            http(&server, "GET", "/_mock/health", &[], "").await.status,
            StatusCode::OK
        );
        // The slowest accepted rate leaves timers working.
        let slow = http(
            &server,
            "POST",
            "/_mock/clock",
            &[JSON],
            r#"{"scale": 0.001}"#,
        )
        .await;
        assert_eq!(slow.status, StatusCode::OK);
        let fresh = start(Config::default()).await;
        still_serves(&fresh).await;
        fresh.shutdown().await;
        server.shutdown().await;
    })
    .await;
}

/// Finding 7: `--jwt-secret ''` was accepted (tokens signed with an empty key).
#[test]
fn a_short_jwt_secret_is_refused_at_start() {
    for secret in ["", "short", "thirty-one-bytes-long-secret-xx"] {
        let error = Config {
            jwt_secret: Some(secret.into()),
            ..Config::default()
        }
        .validate()
        .expect_err(secret)
        .to_string();
        assert!(error.contains("jwt_secret"), "{error}");
    }
    Config {
        jwt_secret: Some("x".repeat(32)),
        ..Config::default()
    }
    .validate()
    .expect("32 bytes are enough");
}

/// Reads from `stream` until the server closes it (`Ok(n)` bytes), or `Err` after `limit`.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> Result<usize, ()> {
    use tokio::io::AsyncReadExt;
    let mut total = 0;
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(total),
            Ok(Ok(n)) => total += n,
            Err(_) => return Err(()),
        }
    }
}

/// Finding 7, second half: 200 half-sent requests stayed open indefinitely.
#[tokio::test]
async fn half_sent_requests_and_idle_keep_alive_connections_are_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    bounded(async {
        let server = start(Config {
            http_header_timeout_seconds: 0.3,
            ..Config::default()
        })
        .await;
        let mut half_sent = Vec::new();
        for _ in 0..200 {
            let mut stream = tokio::net::TcpStream::connect(server.addr())
                .await
                .expect("connect");
            stream
                .write_all(b"POST /api/v1/access-token HTTP/1.1\r\nHost: x\r\nX-Tok")
                .await
                .expect("write");
            half_sent.push(stream);
        }
        let mut idle = tokio::net::TcpStream::connect(server.addr())
            .await
            .expect("connect");
        idle.write_all(b"GET /_mock/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        for stream in &mut half_sent {
            assert!(
                closed_within(stream, Duration::from_secs(3)).await.is_ok(),
                "a half-sent request is closed"
            );
        }
        let answered = closed_within(&mut idle, Duration::from_secs(3)).await;
        assert!(
            answered.is_ok_and(|n| n > 0),
            "answered, then the idle connection closed"
        );
        still_serves(&server).await;
        server.shutdown().await;
    })
    .await;
}

/// Round three, finding 7: a second `Host` or `Origin`, or an absolute-form target naming
/// another host, slipped past the guard (it read only the first header).
#[tokio::test]
async fn duplicate_host_or_origin_headers_and_foreign_absolute_targets_are_refused() {
    bounded(async {
        let server = start(Config::default()).await;
        let own = server.addr().to_string();
        let same_origin = format!("http://{own}");
        type Probe<'a> = (String, Vec<(&'a str, &'a str)>, StatusCode);
        let refused: [Probe<'_>; 3] = [
            (
                "/_mock/sessions".into(),
                vec![("host", &own), ("host", "evil.example")],
                StatusCode::BAD_REQUEST,
            ),
            (
                "/_mock/sessions".into(),
                vec![("origin", &same_origin), ("origin", "https://evil.example")],
                StatusCode::FORBIDDEN,
            ),
            (
                "http://evil.example/_mock/sessions".into(),
                vec![("host", &own)],
                StatusCode::FORBIDDEN,
            ),
        ];
        for (target, headers, status) in &refused {
            let response = http(&server, "GET", target, headers, "").await;
            assert_eq!(response.status, *status, "{target} {headers:?}");
        }
        // Controls: one of each, and an absolute-form target naming this server, still pass.
        let own_target = format!("http://{own}/_mock/sessions");
        for (target, headers) in [
            ("/_mock/sessions", vec![("host", own.as_str())]),
            ("/_mock/sessions", vec![("origin", same_origin.as_str())]),
            (own_target.as_str(), vec![("host", own.as_str())]),
        ] {
            let response = http(&server, "GET", target, &headers, "").await;
            assert_eq!(response.status, StatusCode::OK, "{target} {headers:?}");
        }
        server.shutdown().await;
    })
    .await;
}

/// Round three, finding 4: with the headers sent in time, a body trickled at a byte a second
/// held the connection open indefinitely.
#[tokio::test]
async fn a_request_body_must_arrive_within_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    bounded(async {
        let server = start(Config {
            http_header_timeout_seconds: 0.5,
            ..Config::default()
        })
        .await;
        for path in ["/api/v1/access-token", "/api/v1/sessions", "/_mock/clock"] {
            let mut stream = tokio::net::TcpStream::connect(server.addr())
                .await
                .expect("connect");
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
                server.addr()
            );
            stream.write_all(head.as_bytes()).await.expect("write");
            let started = Instant::now();
            let mut answer = Vec::new();
            let mut buffer = [0u8; 1024];
            // A byte every 100 ms, for far longer than the timeout, reading what comes back.
            for _ in 0..40 {
                if stream.write_all(b" ").await.is_err() {
                    break;
                }
                match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer))
                    .await
                {
                    Ok(Ok(0) | Err(_)) => break,
                    Ok(Ok(n)) => answer.extend_from_slice(&buffer[..n]),
                    Err(_) => {}
                }
            }
            let elapsed = started.elapsed();
            let _ = closed_within(&mut stream, Duration::from_secs(2)).await;
            let answer = String::from_utf8_lossy(&answer);
            assert!(
                answer.starts_with("HTTP/1.1 408"),
                "{path}: answered {answer:?} after {elapsed:?}"
            );
            assert!(elapsed < Duration::from_secs(3), "{path}: {elapsed:?}");
        }
        // A body that arrives in time is served as before.
        let response = http(&server, "POST", "/_mock/clock", &[JSON], r#"{"advance_ms": 1}"#).await;
        assert_eq!(response.status, StatusCode::OK);
        still_serves(&server).await;
        server.shutdown().await;
    })
    .await;
}
