//! The REST handshake (spec §2, §10.1–10.5, §12 A1–A11), through the router without a socket.

use axum::http::StatusCode;
use mock_server::Config;
use mock_server::auth::{Connector, TokenIssuer};
use mock_server::config::RateLimits;

use crate::support::{bounded, http, start};

fn connectors() -> Vec<Connector> {
    vec![
        Connector {
            id: "acme".into(),
            token: "tok-acme".into(),
            host: Some("https://www.acme.example".into()),
            scenario: None,
        },
        Connector {
            id: "nohost".into(),
            token: "tok-nohost".into(),
            host: None,
            scenario: None,
        },
    ]
}

fn config() -> Config {
    Config {
        connectors: connectors(),
        jwt_secret: Some("test-secret-of-at-least-thirty-two-bytes".into()),
        ..Config::default()
    }
}

async fn token_request(
    config: Config,
    headers: &[(&str, &str)],
) -> (StatusCode, serde_json::Value) {
    let server = start(config).await;
    let response = http(&server, "POST", "/api/v1/access-token", headers, "{}").await;
    let body = response.json();
    server.shutdown().await;
    (response.status, body)
}

#[tokio::test]
async fn each_access_token_error_row_has_its_status_and_string() {
    bounded(async {
        type Headers<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(&str, Headers<'_>, StatusCode, &str)] = &[
            (
                "no headers",
                &[],
                StatusCode::UNAUTHORIZED,
                "Missing authentication headers",
            ),
            (
                "no X-Host",
                &[("x-token", "tok-acme")],
                StatusCode::UNAUTHORIZED,
                "Missing authentication headers",
            ),
            (
                "no X-Token",
                &[("x-host", "www.acme.example")],
                StatusCode::UNAUTHORIZED,
                "Missing authentication headers",
            ),
            (
                "unknown token",
                &[("x-token", "nope"), ("x-host", "www.acme.example")],
                StatusCode::UNAUTHORIZED,
                "Connector token does not exist",
            ),
            (
                "wrong host",
                &[("x-token", "tok-acme"), ("x-host", "evil.example")],
                StatusCode::UNAUTHORIZED,
                "Failed to validate connector",
            ),
            (
                "look-alike host",
                &[("x-token", "tok-acme"), ("x-host", "notwww.acme.example")],
                StatusCode::UNAUTHORIZED,
                "Failed to validate connector",
            ),
            (
                "no host registered",
                &[("x-token", "tok-nohost"), ("x-host", "a.example")],
                StatusCode::UNAUTHORIZED,
                "Connector missing host domain",
            ),
        ];
        for (case, headers, status, message) in cases {
            let (got, body) = token_request(config(), headers).await;
            assert_eq!(got, *status, "{case}");
            assert_eq!(body["error"], *message, "{case}");
            assert_eq!(body["message"], *message, "{case}: both keys (spec §12 A1)");
        }
    })
    .await;
}

#[tokio::test]
async fn a_registered_host_and_its_subdomains_get_a_bearer_jwt() {
    bounded(async {
        for host in [
            "https://www.acme.example",
            "www.acme.example",
            "app.www.acme.example:8443",
            "WWW.ACME.EXAMPLE.",
        ] {
            let (status, body) =
                token_request(config(), &[("x-token", "tok-acme"), ("x-host", host)]).await;
            assert_eq!(status, StatusCode::OK, "{host}: {body}");
            assert_eq!(body["token_type"], "Bearer");
            assert_eq!(body["expires_in"], 86_400);
            let token = body["access_token"].as_str().expect("token");
            assert_eq!(token.split('.').count(), 3, "a JWT");
            let claims = TokenIssuer::new(b"test-secret-of-at-least-thirty-two-bytes", 86_400)
                .verify(token, 0)
                .expect("signed with the configured key");
            assert_eq!(claims.sub, "acme");
        }
    })
    .await;
}

async fn session_request(headers: &[(&str, &str)], body: &str) -> (StatusCode, serde_json::Value) {
    let server = start(config()).await;
    let response = http(&server, "POST", "/api/v1/sessions", headers, body).await;
    let json = response.json();
    server.shutdown().await;
    (response.status, json)
}

fn valid_token() -> String {
    let acme = &connectors()[0];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    TokenIssuer::new(b"test-secret-of-at-least-thirty-two-bytes", 3600)
        .issue(acme, "www.acme.example", None, now)
        .expect("mint")
        .0
}

#[tokio::test]
async fn each_session_error_row_has_its_status_and_string() {
    bounded(async {
        let good = format!("Bearer {}", valid_token());
        let expired = format!(
            "Bearer {}",
            TokenIssuer::new(b"test-secret-of-at-least-thirty-two-bytes", 60)
                .issue(&connectors()[0], "www.acme.example", None, 1_000)
                .expect("mint")
                .0
        );
        let foreign = format!(
            "Bearer {}",
            TokenIssuer::new(b"other-secret", 3600)
                .issue(&connectors()[0], "www.acme.example", None, 1_000)
                .expect("mint")
                .0
        );
        type Headers<'a> = Vec<(&'a str, &'a str)>;
        let cases: Vec<(&str, Headers<'_>, &str, StatusCode, &str)> = vec![
            (
                "no Authorization",
                vec![],
                "{}",
                StatusCode::BAD_REQUEST,
                "Missing access token",
            ),
            (
                "not Bearer",
                vec![("authorization", "Basic abc")],
                "{}",
                StatusCode::UNAUTHORIZED,
                "Missing authentication headers",
            ),
            (
                "Bearer without token",
                vec![("authorization", "Bearer")],
                "{}",
                StatusCode::UNAUTHORIZED,
                "Missing authentication headers",
            ),
            (
                "garbage token",
                vec![("authorization", "Bearer abc.def.ghi")],
                "{}",
                StatusCode::UNAUTHORIZED,
                "Invalid access token",
            ),
            (
                "expired token",
                vec![("authorization", &expired)],
                "{}",
                StatusCode::UNAUTHORIZED,
                "Invalid access token",
            ),
            (
                "other key",
                vec![("authorization", &foreign)],
                "{}",
                StatusCode::UNAUTHORIZED,
                "Invalid access token",
            ),
            (
                "body not JSON",
                vec![("authorization", &good)],
                "{nope",
                StatusCode::BAD_REQUEST,
                "Error parsing request",
            ),
            (
                "wrong field type",
                vec![("authorization", &good)],
                r#"{"streaming_enabled":"yes"}"#,
                StatusCode::BAD_REQUEST,
                "Error parsing request",
            ),
        ];
        for (case, headers, body, status, message) in cases {
            let (got, json) = session_request(&headers, body).await;
            assert_eq!(got, status, "{case}: {json}");
            assert_eq!(json["message"], message, "{case}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_session_is_created_with_or_without_a_body() {
    bounded(async {
        let good = format!("Bearer {}", valid_token());
        for body in [
            "",
            "{}",
            r#"{"streaming_enabled": true, "platform": "ios"}"#,
            r#"{"platform":"smart-fridge"}"#,
        ] {
            let (status, json) = session_request(&[("authorization", &good)], body).await;
            assert_eq!(status, StatusCode::OK, "{body:?}: {json}");
            let id = json["session_id"].as_str().expect("session_id");
            let parsed = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 4);
            assert_eq!(id, id.to_lowercase());
        }
    })
    .await;
}

#[tokio::test]
async fn strict_platform_rejects_unknown_platforms() {
    bounded(async {
        let server = start(Config {
            strict_platform: true,
            ..config()
        })
        .await;
        let good = format!("Bearer {}", valid_token());
        let response = http(
            &server,
            "POST",
            "/api/v1/sessions",
            &[("authorization", &good)],
            r#"{"platform":"smart-fridge"}"#,
        )
        .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn correlation_ids_are_echoed_or_minted() {
    bounded(async {
        let server = start(config()).await;
        let echoed = http(
            &server,
            "POST",
            "/api/v1/access-token",
            &[("x-polyai-correlation-id", "corr-1")],
            "",
        )
        .await;
        assert_eq!(echoed.headers["x-polyai-correlation-id"], "corr-1");
        let minted = http(&server, "POST", "/api/v1/access-token", &[], "").await;
        let id = minted.headers["x-polyai-correlation-id"]
            .to_str()
            .expect("ascii");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn cors_preflight_is_answered() {
    bounded(async {
        let server = start(config()).await;
        let response = http(
            &server,
            "OPTIONS",
            "/api/v1/access-token",
            &[
                ("origin", "https://www.acme.example"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "x-token, x-host, content-type",
                ),
            ],
            "",
        )
        .await;
        assert!(response.status.is_success(), "{}", response.status);
        assert_eq!(response.headers["access-control-allow-origin"], "*");
        let allowed = response.headers["access-control-allow-headers"]
            .to_str()
            .expect("ascii");
        assert!(
            allowed.contains("x-token") && allowed.contains("x-host"),
            "{allowed}"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_when_enabled() {
    bounded(async {
        let server = start(Config {
            rate_limits: Some(RateLimits {
                http_requests_per_minute: 2,
                ws_frames_per_second: 100,
            }),
            ..config()
        })
        .await;
        let headers = [("x-token", "tok-acme"), ("x-host", "www.acme.example")];
        for _ in 0..2 {
            let ok = http(&server, "POST", "/api/v1/access-token", &headers, "{}").await;
            assert_eq!(ok.status, StatusCode::OK);
        }
        let limited = http(&server, "POST", "/api/v1/access-token", &headers, "{}").await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = limited.headers["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=60).contains(&retry), "{retry}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    bounded(async {
        let server = start(config()).await;
        let response = http(&server, "GET", "/api/v2/nothing", &[], "").await;
        assert_eq!(response.status, StatusCode::NOT_FOUND);
        assert_eq!(response.json()["message"], "Not found");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_500_rows_answer_when_failures_are_armed() {
    bounded(async {
        let server = start(config()).await;
        let armed = http(
            &server,
            "POST",
            "/_mock/http-failures",
            &[("content-type", "application/json")],
            r#"{"access_token": 1, "sessions": 1}"#,
        )
        .await;
        assert_eq!(armed.status, StatusCode::OK);
        let headers = [("x-token", "tok-acme"), ("x-host", "www.acme.example")];
        let failed = http(&server, "POST", "/api/v1/access-token", &headers, "{}").await;
        assert_eq!(
            (failed.status, failed.json()["message"].as_str()),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("Failed to create access token")
            )
        );
        let token = http(&server, "POST", "/api/v1/access-token", &headers, "{}").await;
        assert_eq!(token.status, StatusCode::OK, "one failure was armed");
        let bearer = format!(
            "Bearer {}",
            token.json()["access_token"].as_str().expect("token")
        );
        let failed = http(
            &server,
            "POST",
            "/api/v1/sessions",
            &[("authorization", &bearer)],
            "{}",
        )
        .await;
        assert_eq!(
            (failed.status, failed.json()["message"].as_str()),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("Failed to create session")
            )
        );
        let created = http(
            &server,
            "POST",
            "/api/v1/sessions",
            &[("authorization", &bearer)],
            "{}",
        )
        .await;
        assert_eq!(created.status, StatusCode::OK);
        server.shutdown().await;
    })
    .await;
}
