//! Hostile and careless input: every bad request gets its documented answer, nothing panics or
//! wedges, and the server still serves a normal session afterwards.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mock_server::{Config, MockServer};

use crate::support::{Client, JOIN, bounded, http, new_session, start, ws_url};

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

async fn put_scenario(server: &MockServer, scenario: &str) -> (StatusCode, String) {
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
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
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
