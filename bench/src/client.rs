//! The client side of a run: the REST handshake over a kept-alive HTTP/1.1 connection, the
//! WebSocket, and opening many sessions at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::proc::{Server, ServerProcess};

/// Longest wait for any single answer (an echo, a reply, an HTTP response).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

pub const HEARTBEAT: &str = r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{}}"#;
const JOIN: &str = r#"{"type":"EVENT_TYPE_REQUEST_POLY_AGENT_JOIN","payload":{}}"#;
pub const USER_MESSAGE: &str = r#"{"type":"EVENT_TYPE_USER_MESSAGE","payload":{"text":"hello"}}"#;

/// Markers that identify an answer without parsing it (the type is the first key the mock
/// and the reference write; the closing quote keeps `…_MESSAGE` from matching `…_MESSAGE_CHUNK`).
pub const HEARTBEAT_ECHO: &str = r#""EVENT_TYPE_HEARTBEAT""#;
pub const AGENT_MESSAGE: &str = r#""EVENT_TYPE_POLY_AGENT_MESSAGE""#;
const EVENT_BATCH: &str = r#""EVENT_TYPE_EVENT_BATCH""#;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A client TLS configuration trusting a server's CA alone.
pub type Tls = Arc<rustls::ClientConfig>;

/// What a session does once its socket is open, before the measured phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Warmup {
    /// One heartbeat and its echo.
    Heartbeat,
    /// Agent join and greeting (mock only; the reference echoes one heartbeat instead).
    Join,
    /// Join, greeting, then one user message and the agent's reply (mock only; the reference
    /// echoes one heartbeat instead).
    Turn,
}

/// One kept-alive HTTP/1.1 connection for sequential requests.
#[derive(Debug)]
pub struct HttpConn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: String,
}

impl HttpConn {
    /// A connection to `authority`, over TLS when `tls` is given.
    pub async fn connect_with(authority: &str, tls: Option<Tls>) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(authority)
            .await
            .with_context(|| format!("connecting to {authority}"))?;
        stream.set_nodelay(true)?;
        let stream = secure(authority, stream, tls).await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(connection);
        Ok(Self {
            sender,
            authority: authority.to_owned(),
        })
    }

    /// `POST path` with a JSON body: the status and the response body.
    pub async fn post(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &'static str,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut request = hyper::Request::post(path)
            .header("host", &self.authority)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from_static(body.as_bytes())))?;
        let exchange = async {
            self.sender.ready().await.context("HTTP connection lost")?;
            let response = self
                .sender
                .send_request(request)
                .await
                .with_context(|| format!("POST {path}"))?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        tokio::time::timeout(ANSWER_TIMEOUT, exchange)
            .await
            .with_context(|| format!("POST {path}: no answer in {ANSWER_TIMEOUT:?}"))?
    }

    /// `POST /api/v1/access-token` with the mock's default connector credentials: the token.
    pub async fn access_token(&mut self) -> anyhow::Result<String> {
        let (status, body) = self.token_request().await?;
        if status != 200 {
            bail!(
                "access-token answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        json_field(&body, "access_token")
    }

    /// The bare access-token request (also what the http mode measures).
    pub async fn token_request(&mut self) -> anyhow::Result<(u16, Bytes)> {
        self.post(
            "/api/v1/access-token",
            &[("x-token", "mock-connector-token"), ("x-host", "localhost")],
            "{}",
        )
        .await
    }

    /// `POST /api/v1/sessions` (non-streaming): the session id.
    pub async fn create_session(&mut self, token: &str) -> anyhow::Result<String> {
        let bearer = format!("Bearer {token}");
        let (status, body) = self
            .post(
                "/api/v1/sessions",
                &[("authorization", &bearer)],
                r#"{"streaming_enabled":false}"#,
            )
            .await?;
        if status != 200 && status != 201 {
            bail!(
                "sessions answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        json_field(&body, "session_id")
    }
}

fn json_field(body: &[u8], field: &str) -> anyhow::Result<String> {
    let value: serde_json::Value = serde_json::from_slice(body).context("response is not JSON")?;
    value
        .get(field)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("response has no `{field}`"))
}

/// `stream`, wrapped in TLS (verifying the server as the host of `authority`) when `tls` is
/// given.
async fn secure(
    authority: &str,
    stream: TcpStream,
    tls: Option<Tls>,
) -> anyhow::Result<MaybeTlsStream<TcpStream>> {
    let Some(tls) = tls else {
        return Ok(MaybeTlsStream::Plain(stream));
    };
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .with_context(|| format!("{host}: not a server name"))?;
    let stream = tokio::time::timeout(
        ANSWER_TIMEOUT,
        tokio_rustls::TlsConnector::from(tls).connect(name, stream),
    )
    .await
    .context("TLS handshake timed out")?
    .context("TLS handshake")?;
    Ok(MaybeTlsStream::Rustls(stream))
}

/// Opens a WebSocket to `ws://authority{path}` with small buffers (thousands are held at once).
pub async fn connect_ws(authority: &str, path: &str) -> anyhow::Result<Ws> {
    connect_ws_with(authority, path, None).await
}

/// [`connect_ws`], `wss://` when `tls` is given.
pub async fn connect_ws_with(authority: &str, path: &str, tls: Option<Tls>) -> anyhow::Result<Ws> {
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    stream.set_nodelay(true)?;
    let stream = secure(authority, stream, tls).await?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let url = format!("{scheme}://{authority}{path}");
    let (ws, _) = tokio::time::timeout(
        ANSWER_TIMEOUT,
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)),
    )
    .await
    .context("WebSocket handshake timed out")?
    .context("WebSocket handshake")?;
    Ok(ws)
}

/// Sends `frame` and reads until a text frame containing `marker` arrives.
pub async fn exchange(ws: &mut Ws, frame: &'static str, marker: &str) -> anyhow::Result<()> {
    ws.send(Message::text(frame)).await.context("sending")?;
    wait_for(ws, marker).await
}

/// Reads frames until a text frame containing `marker`; errors on close or timeout.
pub async fn wait_for(ws: &mut Ws, marker: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .with_context(|| format!("no {marker} in {ANSWER_TIMEOUT:?}"))?;
        match next {
            Some(Ok(Message::Text(text))) if text.as_str().contains(marker) => return Ok(()),
            Some(Ok(Message::Close(frame))) => bail!("server closed the socket: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error).context("reading"),
            None => bail!("connection ended"),
        }
    }
}

/// Opens one session on `server`: for the mock the whole handshake (token, session,
/// WebSocket, replay), for the reference just the socket; then runs `warmup`.
pub async fn open_session(
    server: Server,
    target: &Target,
    http: &mut Option<HttpConn>,
    warmup: Warmup,
) -> anyhow::Result<Ws> {
    let mut ws = match server {
        Server::Reference => target.ws("/ws").await?,
        Server::Mock | Server::Proxied | Server::Forwarded => {
            let conn = match http {
                Some(conn) => conn,
                None => http.insert(target.http().await?),
            };
            let token = conn.access_token().await?;
            let session = conn.create_session(&token).await?;
            let path = format!("/ws?session_id={session}&access_token={token}");
            let mut ws = target.ws(&path).await?;
            wait_for(&mut ws, EVENT_BATCH)
                .await
                .context("waiting for the replay")?;
            ws
        }
    };
    match (server, warmup) {
        (Server::Reference, _)
        | (Server::Mock | Server::Proxied | Server::Forwarded, Warmup::Heartbeat) => {
            exchange(&mut ws, HEARTBEAT, HEARTBEAT_ECHO).await?;
        }
        (Server::Mock | Server::Proxied | Server::Forwarded, Warmup::Join | Warmup::Turn) => {
            exchange(&mut ws, JOIN, AGENT_MESSAGE)
                .await
                .context("joining")?;
            if warmup == Warmup::Turn {
                exchange(&mut ws, USER_MESSAGE, AGENT_MESSAGE)
                    .await
                    .context("first turn")?;
            }
        }
    }
    Ok(ws)
}

/// Where a server listens.
#[derive(Debug, Clone)]
pub struct Target {
    pub http_authority: String,
    pub ws_authority: String,
    /// Over TLS: trusts the server's CA alone.
    pub tls: Option<Tls>,
}

impl Target {
    pub fn of(process: &ServerProcess) -> anyhow::Result<Self> {
        let tls = match &process.ca_file {
            None => None,
            Some(file) => {
                let pem = std::fs::read(file)
                    .with_context(|| format!("reading the CA file {}", file.display()))?;
                Some(Arc::new(mock_server::tls::client_config(&pem)?))
            }
        };
        Ok(Self {
            http_authority: process.http_authority().to_owned(),
            ws_authority: process.ws_authority().to_owned(),
            tls,
        })
    }

    /// A WebSocket to `path` (`wss://` over TLS).
    pub async fn ws(&self, path: &str) -> anyhow::Result<Ws> {
        connect_ws_with(&self.ws_authority, path, self.tls.clone()).await
    }

    /// A kept-alive HTTP connection (`https://` over TLS).
    pub async fn http(&self) -> anyhow::Result<HttpConn> {
        HttpConn::connect_with(&self.http_authority, self.tls.clone()).await
    }
}

/// Sessions opened by [`open_many`], and what went wrong on the way.
#[derive(Debug, Default)]
pub struct Opened {
    pub sockets: Vec<Ws>,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// Opens `count` sessions with `parallel` openers (each reusing one HTTP connection), printing
/// progress on stderr. Gives up on the rest after `deadline`.
pub async fn open_many(
    server: Server,
    target: &Target,
    count: usize,
    parallel: usize,
    warmup: Warmup,
    deadline: Duration,
    progress: &crate::progress::Progress,
) -> Opened {
    let next = Arc::new(AtomicUsize::new(0));
    let opened = Arc::new(Mutex::new(Opened::default()));
    let mut openers = Vec::new();
    for _ in 0..parallel.min(count).max(1) {
        let next = Arc::clone(&next);
        let opened = Arc::clone(&opened);
        let target = target.clone();
        openers.push(tokio::spawn(async move {
            let mut http = None;
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let result = open_session(server, &target, &mut http, warmup).await;
                let mut opened = opened.lock().await;
                match result {
                    Ok(ws) => opened.sockets.push(ws),
                    Err(error) => {
                        opened.errors += 1;
                        opened
                            .first_error
                            .get_or_insert_with(|| format!("{error:#}"));
                        // A broken HTTP connection is replaced on the next session.
                        http = None;
                    }
                }
            }
        }));
    }
    let watch = async {
        loop {
            let (done, errors) = {
                let opened = opened.lock().await;
                (opened.sockets.len(), opened.errors)
            };
            progress.line(&format!("opening sessions {done}/{count}, {errors} errors"));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let all = futures_util::future::join_all(openers.iter_mut());
    let timed_out = tokio::select! {
        _ = all => false,
        () = watch => false,
        () = tokio::time::sleep(deadline) => true,
    };
    for opener in &openers {
        opener.abort();
    }
    let mut opened = std::mem::take(&mut *opened.lock().await);
    if timed_out {
        let missing = count.saturating_sub(opened.sockets.len()) as u64;
        opened.errors = opened.errors.max(missing);
        opened.first_error.get_or_insert_with(|| {
            format!("opening {count} sessions took longer than {deadline:?}")
        });
    }
    opened
}
