//! The reference server: the cheapest possible version of the mock's echo path on the same
//! stack, and a static-JSON axum route as the ceiling for the token endpoint.
//!
//! WebSocket: tokio-tungstenite with a 4 KiB read buffer; every text frame is parsed as a JSON
//! object, gets `id` (UUIDv7), `sequence` (per connection) and `timestamp` (RFC 3339, ms), and
//! is written back. HTTP: `POST /api/v1/access-token` answers a fixed JSON body of the same
//! shape as the mock's. Run as `loadgen reference-server`; prints the same readiness line as
//! the mock. With `--tls --tls-ca-out FILE`, the WebSocket is `wss://` with the same kind of
//! generated certificate as the mock's `--tls` (rustls through tokio-rustls, accepted with the
//! same acceptor code path: the cost of TLS itself, the same on both sides).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Router;
use axum::http::header;
use axum::routing::post;
use futures_util::{SinkExt, StreamExt};
use mock_server::protocol::{EventId, Timestamp};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The body of the static route: an access-token response of realistic size.
const STATIC_TOKEN: &str = concat!(
    r#"{"access_token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."#,
    r#"eyJzdWIiOiJtb2NrLWNvbm5lY3RvciIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ."#,
    r#"c2lnbmF0dXJlLW9mLWEtc3RhdGljLXJlc3BvbnNlLXdpdGgtYS1yZWFsaXN0aWMtc2l6ZQ","expires_in":3600}"#
);

pub async fn run(ca_out: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let tls = match &ca_out {
        None => None,
        Some(path) => {
            let identity = mock_server::tls::TlsIdentity::generate()?;
            std::fs::write(path, identity.ca_pem().unwrap_or_default())
                .with_context(|| format!("writing {}", path.display()))?;
            Some(identity)
        }
    };
    let ws = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the WebSocket port")?;
    let http = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the HTTP port")?;
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let mut ready = serde_json::json!({
        "ready": true,
        "base_url": format!("http://{}", http.local_addr()?),
        "ws_url": format!("{scheme}://{}/ws", ws.local_addr()?),
    });
    if let Some(path) = &ca_out {
        ready["ca_file"] = path.display().to_string().into();
    }
    println!("{ready}");
    let app = Router::new().route(
        "/api/v1/access-token",
        post(|| async { ([(header::CONTENT_TYPE, "application/json")], STATIC_TOKEN) }),
    );
    tokio::spawn(async move { axum::serve(http, app).await });
    loop {
        let (stream, _) = ws.accept().await.context("accepting")?;
        let _ = stream.set_nodelay(true);
        match &tls {
            None => {
                tokio::spawn(echo(stream));
            }
            Some(identity) => {
                let acceptor = identity.acceptor().clone();
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        echo(stream).await;
                    }
                });
            }
        }
    }
}

async fn echo<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let mut sequence = 0_u64;
    while let Some(Ok(message)) = ws.next().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let Ok(mut frame) = serde_json::from_str::<Map<String, Value>>(text.as_str()) else {
            continue;
        };
        sequence += 1;
        let now = unix_millis();
        frame.insert("id".into(), EventId::new_v7(now).0.into());
        frame.insert("sequence".into(), sequence.into());
        frame.insert(
            "timestamp".into(),
            Timestamp::from_unix_millis(now).0.into(),
        );
        let Ok(answer) = serde_json::to_string(&frame) else {
            continue;
        };
        if ws.send(Message::text(answer)).await.is_err() {
            break;
        }
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
