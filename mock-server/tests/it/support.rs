//! Test glue: HTTP through the router without a socket, WebSocket clients on real loopback
//! sockets, time bounds, and transcript normalisation for snapshots.

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use mock_server::router::router;
use mock_server::{Config, MockServer};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tower::ServiceExt;

/// Every async test runs inside this bound.
pub async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), test)
        .await
        .expect("test exceeded its 20 s bound")
}

/// Polls `condition` every 10 ms until it holds (the caller's `bounded` limits the wait):
/// instead of a fixed sleep that a busy machine can outrun.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let mut polls = 0u64;
    while !condition() {
        polls += 1;
        if polls.is_multiple_of(500) {
            eprintln!("still waiting for {what} ({} s)", polls / 100);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// One request through the router, no socket (STYLE habit 4).
pub async fn http(
    server: &MockServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    // As from a loopback peer to this server's address, unless the test says otherwise.
    let mut request =
        Request::builder()
            .method(method)
            .uri(path)
            .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40_000,
            ))));
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request = request.header("host", server.addr().to_string());
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::from(body.to_owned())).expect("request");
    let response = router(server.state().clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    HttpResponse {
        status,
        headers,
        body,
    }
}

pub async fn access_token(server: &MockServer) -> String {
    let (token, host) = server.credentials();
    let response = http(
        server,
        "POST",
        "/api/v1/access-token",
        &[
            ("x-token", &token),
            ("x-host", &host),
            ("content-type", "application/json"),
        ],
        "{}",
    )
    .await;
    assert_eq!(response.status, StatusCode::OK);
    response.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

pub async fn create_session(server: &MockServer, token: &str, streaming: bool) -> String {
    let response = http(
        server,
        "POST",
        "/api/v1/sessions",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("content-type", "application/json"),
        ],
        &format!(r#"{{"streaming_enabled": {streaming}}}"#),
    )
    .await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned()
}

/// A fresh token and session.
pub async fn new_session(server: &MockServer, streaming: bool) -> (String, String) {
    let token = access_token(server).await;
    let session = create_session(server, &token, streaming).await;
    (token, session)
}

/// A fresh token and session, and the URL of a first connection to it.
pub async fn new_session_url(server: &MockServer, streaming: bool) -> (String, String, String) {
    let (token, session) = new_session(server, streaming).await;
    let url = ws_url(server, &session, &token, None);
    (token, session, url)
}

/// A fresh token and session, and a client connected to it.
pub async fn new_session_client(server: &MockServer, streaming: bool) -> (String, String, Client) {
    let (token, session, url) = new_session_url(server, streaming).await;
    let client = Client::connect(&url)
        .await
        .expect("the first connection opens");
    (token, session, client)
}

pub async fn start(config: Config) -> MockServer {
    MockServer::start_with(config).await.expect("server starts")
}

pub fn ws_url(server: &MockServer, session: &str, token: &str, cursor: Option<&str>) -> String {
    let mut url = format!(
        "{}?session_id={session}&access_token={token}",
        server.ws_url()
    );
    if let Some(cursor) = cursor {
        url.push_str(&format!("&cursor={cursor}"));
    }
    url
}

/// What a client saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Event(Value),
    Close(u16),
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every frame in both directions, for transcripts: `("→" | "←", frame)`.
    pub log: Vec<(&'static str, Value)>,
}

/// A handshake the server refused: status and plain-text body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

/// Why a connection did not open.
#[derive(Debug)]
pub enum ConnectError {
    Refused(Refused),
    /// Anything before an HTTP answer: TCP, TLS, a malformed handshake.
    Other(String),
}

impl Client {
    pub async fn connect(url: &str) -> Result<Self, Refused> {
        Self::connect_with(url, None).await.map_err(|e| match e {
            ConnectError::Refused(refused) => refused,
            ConnectError::Other(other) => panic!("connect failed: {other}"),
        })
    }

    /// `wss://` trusting `ca_pem` alone.
    pub async fn connect_tls(url: &str, ca_pem: &str) -> Result<Self, ConnectError> {
        let config = mock_server::tls::client_config(ca_pem.as_bytes()).expect("a CA");
        let connector = tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(config));
        Self::connect_with(url, Some(connector)).await
    }

    async fn connect_with(
        url: &str,
        connector: Option<tokio_tungstenite::Connector>,
    ) -> Result<Self, ConnectError> {
        match tokio_tungstenite::connect_async_tls_with_config(url, None, true, connector).await {
            Ok((ws, _)) => Ok(Self {
                ws,
                log: Vec::new(),
            }),
            Err(tungstenite::Error::Http(response)) => Err(ConnectError::Refused(Refused {
                status: response.status().as_u16(),
                body: response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default(),
            })),
            Err(other) => Err(ConnectError::Other(other.to_string())),
        }
    }

    pub async fn send(&mut self, json: &str) {
        self.log.push((
            "→",
            serde_json::from_str(json).unwrap_or(Value::String(json.into())),
        ));
        self.ws.send(Message::text(json)).await.expect("send");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// The next event or close; panics after 5 s of silence.
    pub async fn next(&mut self) -> Frame {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.ws.next())
                .await
                .expect("no frame within 5 s");
            match message {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("server frames are JSON");
                    self.log.push(("←", value.clone()));
                    return Frame::Event(value);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Frame::Close(frame.map_or(1005, |f| u16::from(f.code)));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Frame::Close(1006),
            }
        }
    }

    pub async fn next_event(&mut self) -> Value {
        match self.next().await {
            Frame::Event(value) => value,
            Frame::Close(code) => panic!("closed with {code} while waiting for an event"),
        }
    }

    /// Events until one of `event_type` arrives (inclusive).
    pub async fn until(&mut self, event_type: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let event = self.next_event().await;
            let done = event["type"] == event_type;
            seen.push(event);
            if done {
                return seen;
            }
        }
    }

    /// Waits for the close and returns its code.
    pub async fn closed(&mut self) -> u16 {
        loop {
            if let Frame::Close(code) = self.next().await {
                return code;
            }
        }
    }
}

pub const JOIN: &str = r#"{"type":"EVENT_TYPE_REQUEST_POLY_AGENT_JOIN","payload":{}}"#;

pub fn user_message(text: &str) -> String {
    serde_json::json!({"type": "EVENT_TYPE_USER_MESSAGE", "payload": {"text": text}}).to_string()
}

pub fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e["type"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("EVENT_TYPE_")
                .to_owned()
        })
        .collect()
}

/// The events inside one or more batch frames, flattened.
pub fn batch_events(batches: &[Value]) -> Vec<Value> {
    batches
        .iter()
        .flat_map(|b| {
            b["payload"]["events"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// Replaces what differs run to run (event ids, timestamps, message ids) with stable
/// placeholders; message ids are numbered by first appearance so chunks still group.
pub fn normalise(transcript: &[(&'static str, Value)]) -> Value {
    let mut message_ids: Vec<String> = Vec::new();
    let frames = transcript
        .iter()
        .map(|(dir, frame)| {
            let mut frame = frame.clone();
            redact(&mut frame, &mut message_ids);
            serde_json::json!({ "dir": dir, "frame": frame })
        })
        .collect();
    Value::Array(frames)
}

fn redact(value: &mut Value, message_ids: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match (key.as_str(), &*child) {
                    ("id", Value::String(s)) if uuid::Uuid::parse_str(s).is_ok() => {
                        *child = Value::String("[event-id]".into());
                    }
                    ("timestamp", Value::String(_)) => *child = Value::String("[timestamp]".into()),
                    ("message_id", Value::String(s)) => {
                        let n = match message_ids.iter().position(|m| m == s) {
                            Some(n) => n,
                            None => {
                                message_ids.push(s.clone());
                                message_ids.len() - 1
                            }
                        };
                        *child = Value::String(format!("[message-{}]", n + 1));
                    }
                    _ => redact(child, message_ids),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact(item, message_ids)),
        _ => {}
    }
}

/// Spawns the `messaging-mock` binary with `args` and waits for its readiness line.
pub async fn spawn_binary(args: &[&std::ffi::OsStr]) -> (std::process::Child, Value) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_messaging-mock"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("joined")
    .expect("a readiness line");
    let ready = serde_json::from_str(&line).expect("the readiness line is JSON");
    (child, ready)
}

/// One HTTP/1.1 request to `addr` on a connection of its own (HTTPS trusting `ca_pem` alone
/// when given): status and body.
pub async fn request(
    addr: &str,
    ca_pem: Option<&str>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String), String> {
    let tls = match ca_pem {
        Some(ca_pem) => Some(std::sync::Arc::new(
            mock_server::tls::client_config(ca_pem.as_bytes()).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let mut sender = mock_server::http_client::connect(addr, tls)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(http_body_util::Full::new(hyper::body::Bytes::from(
            body.to_owned(),
        )))
        .expect("request");
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Opens `url`, joins, asks for the opening hours, and returns the client's transcript once
/// the answer is in.
pub async fn converse(url: &str) -> Vec<(&'static str, Value)> {
    let mut client = Client::connect(url).await.expect("opens");
    client.next_event().await;
    client.send(JOIN).await;
    client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
    client
        .send(&user_message("What are your opening hours?"))
        .await;
    client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
    client.log
}
