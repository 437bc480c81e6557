//! `GET /ws` through the proxy: the upstream handshake first (its refusal is the client's, with
//! the same status and body), then every frame forwarded both ways, journaled and checked.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest as _};

use super::faults::{Command, Out, SessionFaults};
use super::validate::{self, Broken, ServerRules};
use super::{Direction, Proxy};
use crate::journal::{Closer, JournalEvent, WireJson};
use crate::protocol::RawFrame;

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The query as the journal keeps it: `access_token` redacted.
fn redacted(query: &str) -> BTreeMap<String, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| {
            let value = if name == "access_token" {
                "[redacted]".to_owned()
            } else {
                value
            };
            (name, value)
        })
        .collect()
}

fn session_of(query: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap_or_default()
        .into_iter()
        .find_map(|(name, value)| (name == "session_id").then_some(value))
        .unwrap_or_default()
}

pub(super) async fn bridge(
    State(proxy): State<Proxy>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let query = query.unwrap_or_default();
    let session = session_of(&query);
    let (conn, faults) = proxy.next_conn(&session);
    let handshake = Handshake {
        proxy: &proxy,
        session: &session,
        conn,
        query: &query,
    };
    // A refusal injected as a fault answers before the upstream is asked.
    if let Some(refusal) = faults.refuse_handshake() {
        handshake.journal(refusal.status, Some(refusal.body.to_owned()));
        let status =
            StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return refused(status, refusal.body.to_owned());
    }
    let timeout = proxy.inner.config.timeout;
    let connected = match connect_upstream(&proxy, &query, &headers) {
        Ok(connecting) => tokio::time::timeout(timeout, connecting).await,
        Err(error) => {
            return (StatusCode::BAD_REQUEST, format!("bad /ws request: {error}")).into_response();
        }
    };
    match connected {
        Ok(Ok((upstream, _))) => {
            handshake.journal(101, None);
            upgrade
                .read_buffer_size(crate::ws::READ_BUFFER)
                .write_buffer_size(0)
                .max_message_size(crate::ws::LIBRARY_MAX_MESSAGE)
                .max_frame_size(crate::ws::LIBRARY_MAX_MESSAGE)
                .on_upgrade(move |client| pump(proxy, session, (conn, faults), client, upstream))
        }
        Ok(Err(error)) => handshake.upstream_error(error),
        Err(_) => {
            handshake.failed(
                StatusCode::GATEWAY_TIMEOUT,
                format!("/ws handshake: no answer in {timeout:?}"),
            );
            (
                StatusCode::GATEWAY_TIMEOUT,
                "upstream did not answer in time",
            )
                .into_response()
        }
    }
}

/// One client's `/ws` handshake through the proxy, whose answer the session's journal keeps.
struct Handshake<'a> {
    proxy: &'a Proxy,
    session: &'a str,
    conn: u64,
    query: &'a str,
}

impl Handshake<'_> {
    /// Journals the handshake's answer: its status and, for a refusal, why.
    fn journal(&self, status: u16, error: Option<String>) {
        let event = JournalEvent::Handshake {
            conn: Some(self.conn),
            query: redacted(self.query),
            status,
            error,
        };
        self.proxy.journal(self.session, event);
    }

    /// The upstream failed: listed as a violation, journaled as the handshake's answer.
    fn failed(&self, status: StatusCode, detail: String) {
        self.journal(status.as_u16(), Some(detail.clone()));
        self.proxy.violation(
            Direction::Upstream,
            Broken {
                rule: "upstream",
                detail,
            },
            (Some(self.session), Some(self.conn)),
            None,
        );
    }

    /// The client's answer when the upstream handshake ended in `error`: the upstream's own
    /// refusal passed on as it came, or 502 for any other failure.
    fn upstream_error(&self, error: tungstenite::Error) -> Response {
        match error {
            tungstenite::Error::Http(answer) => {
                let status = answer.status();
                let body = answer
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                self.journal(status.as_u16(), Some(body.clone()));
                refused(status, body)
            }
            error => {
                self.failed(StatusCode::BAD_GATEWAY, format!("/ws handshake: {error}"));
                (StatusCode::BAD_GATEWAY, format!("upstream failed: {error}")).into_response()
            }
        }
    }
}

/// A refused handshake's answer: the status and a text body.
fn refused(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The upstream handshake for a client's `/ws?query`: the same query, the upstream's `Origin`
/// when the client sent one, the upstream's TLS roots. `Err`: the query makes no URL.
fn connect_upstream(
    proxy: &Proxy,
    query: &str,
    headers: &HeaderMap,
) -> Result<
    impl std::future::Future<
        Output = Result<(Upstream, tungstenite::handshake::client::Response), tungstenite::Error>,
    > + use<>,
    tungstenite::Error,
> {
    let upstream = &proxy.inner.config.upstream;
    let mut request = upstream
        .ws_url(&format!("/ws?{query}"))
        .into_client_request()?;
    if headers.contains_key(header::ORIGIN)
        && let Ok(origin) = upstream.origin().parse()
    {
        request.headers_mut().insert(header::ORIGIN, origin);
    }
    let connector = upstream
        .tls
        .as_ref()
        .map(|tls| tokio_tungstenite::Connector::Rustls(Arc::clone(tls)));
    // Small reads and unbuffered writes, as the mock's own sockets (`ws/`): the library's
    // default 128 KiB read buffer is zeroed on every read, most of a proxied frame's cost.
    let config = tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(crate::ws::READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(crate::ws::LIBRARY_MAX_MESSAGE))
        .max_frame_size(Some(crate::ws::LIBRARY_MAX_MESSAGE));
    Ok(tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(config),
        true,
        connector,
    ))
}

/// How a bridged connection ended.
enum End {
    /// A close frame from one side, passed to the other.
    Closed { code: u16, by: Closer },
    /// One side went away without a close frame: the other is dropped too.
    Dropped { by: Closer },
    /// `--strict`: a violation closed both sides with this code.
    Strict { code: u16, by: Closer },
}

async fn pump(
    proxy: Proxy,
    session: String,
    (conn, faults): (u64, Arc<SessionFaults>),
    mut client: WebSocket,
    mut upstream: Upstream,
) {
    let mut commands = faults.register(conn);
    let mut bridge = Bridge {
        strict: proxy.inner.config.strict,
        proxy,
        session,
        conn,
        faults,
        rules: ServerRules::default(),
        later: VecDeque::new(),
    };
    let end = loop {
        let due = bridge.later.front().map(|(at, _)| *at);
        let ended = tokio::select! {
            Some(command) = commands.recv() => {
                bridge.command(command, &mut client, &mut upstream).await
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                bridge.due(&mut client).await
            }
            message = client.recv() => bridge.client_sent(message, &mut upstream).await,
            message = upstream.next() => bridge.upstream_sent(message, &mut client).await,
        };
        if let Some(end) = ended {
            break end;
        }
    };
    bridge.finish(end, &mut client, &mut upstream).await;
}

/// One bridged connection's state between its two sockets: who it is, what its server frames
/// must keep, and the frames a fault holds back.
struct Bridge {
    proxy: Proxy,
    session: String,
    conn: u64,
    faults: Arc<SessionFaults>,
    rules: ServerRules,
    strict: bool,
    /// Frames a fault holds back (a delayed echo), in the order they fall due.
    later: VecDeque<(tokio::time::Instant, String)>,
}

impl Bridge {
    fn at(&self) -> (Option<&str>, Option<u64>) {
        (Some(self.session.as_str()), Some(self.conn))
    }

    /// A fault acting now on this connection.
    async fn command(
        &mut self,
        command: Command,
        client: &mut WebSocket,
        upstream: &mut Upstream,
    ) -> Option<End> {
        match command {
            Command::Send(frame) => send_text(client, frame).await,
            Command::Drop => Some(End::Dropped { by: Closer::Server }),
            Command::Close { code, reason } => {
                let close = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = client.send(Message::Close(Some(close))).await;
                let _ = upstream.close(Some(tungstenite_close(1000, reason))).await;
                Some(End::Closed {
                    code,
                    by: Closer::Server,
                })
            }
        }
    }

    /// The held-back frame that fell due.
    async fn due(&mut self, client: &mut WebSocket) -> Option<End> {
        let (_, frame) = self.later.pop_front()?;
        send_text(client, frame).await
    }

    /// A frame (or the end) from the client: checked, journaled, forwarded.
    async fn client_sent(
        &mut self,
        message: Option<Result<Message, axum::Error>>,
        upstream: &mut Upstream,
    ) -> Option<End> {
        let forward = match message {
            Some(Ok(Message::Text(text))) => {
                let text = text.as_str();
                let broken = validate::client_frame(RawFrame::Text(text), &self.proxy.inner.decode);
                self.journal_client_frame(text, broken.as_ref());
                if let Some(end) = self.client_broke(broken, Some(text)) {
                    return Some(end);
                }
                if !self.faults.forward_client(text) {
                    return None;
                }
                tungstenite::Message::text(text)
            }
            Some(Ok(Message::Binary(bytes))) => {
                let broken =
                    validate::client_frame(RawFrame::Binary(&bytes), &self.proxy.inner.decode);
                if let Some(end) = self.client_broke(broken, None) {
                    return Some(end);
                }
                tungstenite::Message::binary(bytes)
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame.as_ref().map_or(1005, |f| f.code);
                let reason = frame
                    .as_ref()
                    .map(|f| f.reason.as_str())
                    .unwrap_or_default();
                let _ = upstream.close(Some(tungstenite_close(code, reason))).await;
                return Some(End::Closed {
                    code,
                    by: Closer::Client,
                });
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return None,
            Some(Err(_)) | None => return Some(End::Dropped { by: Closer::Client }),
        };
        match upstream.send(forward).await {
            Ok(()) => None,
            Err(_) => Some(End::Dropped { by: Closer::Server }),
        }
    }

    /// Journals a client frame: one the decoder took is JSON, whole, and goes to the journal
    /// as the mock's echo path sends it; any other keeps its text or prefix and the error.
    fn journal_client_frame(&self, text: &str, broken: Option<&Broken>) {
        if broken.is_none() && text.len() <= CLIENT_FRAME_KEPT {
            let frame = crate::journal::EchoFrame::Client {
                conn: self.conn,
                before_history: false,
                bytes: text.len() as u64,
            };
            return self.proxy.journal_frame(&self.session, frame, text);
        }
        self.proxy
            .journal(&self.session, client_frame(self.conn, text, broken));
    }

    /// Lists a client frame's broken rule; under `--strict`, the end it brings.
    fn client_broke(&self, broken: Option<Broken>, frame: Option<&str>) -> Option<End> {
        let broken = broken?;
        self.proxy
            .violation(Direction::Client, broken, self.at(), frame);
        self.strict.then_some(End::Strict {
            code: 1008,
            by: Closer::Client,
        })
    }

    /// A frame (or the end) from the upstream: checked, journaled, passed through the armed
    /// faults to the client.
    async fn upstream_sent(
        &mut self,
        message: Option<Result<tungstenite::Message, tungstenite::Error>>,
        client: &mut WebSocket,
    ) -> Option<End> {
        match message {
            Some(Ok(tungstenite::Message::Text(text))) => {
                let text = text.as_str();
                let checked = self.rules.check_frame(text);
                let frame = super::ServerText {
                    text,
                    json: checked.json,
                    live_id: checked.id.as_deref().filter(|_| !checked.batch),
                };
                self.proxy
                    .journal_server_frame(&self.session, self.conn, frame);
                let any = !checked.broken.is_empty();
                for broken in checked.broken {
                    self.proxy
                        .violation(Direction::Server, broken, self.at(), Some(text));
                }
                if any && self.strict {
                    return Some(End::Strict {
                        code: 1011,
                        by: Closer::Server,
                    });
                }
                self.deliver(text, checked.batch, client).await
            }
            Some(Ok(tungstenite::Message::Binary(bytes))) => {
                let broken = Broken {
                    rule: "server-frame-json",
                    detail: "a binary frame".into(),
                };
                self.proxy
                    .violation(Direction::Server, broken, self.at(), None);
                match client.send(Message::Binary(bytes)).await {
                    Ok(()) => None,
                    Err(_) => Some(End::Dropped { by: Closer::Client }),
                }
            }
            Some(Ok(tungstenite::Message::Close(frame))) => {
                let code = frame.as_ref().map_or(1005, |f| u16::from(f.code));
                let reason = frame
                    .as_ref()
                    .map(|f| f.reason.as_str())
                    .unwrap_or_default();
                if let Some(broken) = validate::close_code(code) {
                    self.proxy
                        .violation(Direction::Server, broken, self.at(), None);
                }
                let close = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = client.send(Message::Close(Some(close))).await;
                Some(End::Closed {
                    code,
                    by: Closer::Server,
                })
            }
            Some(Ok(_)) => None,
            Some(Err(_)) | None => Some(End::Dropped { by: Closer::Server }),
        }
    }

    /// Sends an upstream frame on to the client, as the armed faults have it.
    async fn deliver(&mut self, text: &str, batch: bool, client: &mut WebSocket) -> Option<End> {
        let Some(outs) = self.faults.deliver(text, batch, super::unix_ms()) else {
            return send_text(client, text.to_owned()).await;
        };
        for out in outs {
            match out {
                Out::Send(frame) => {
                    if let Some(end) = send_text(client, frame).await {
                        return Some(end);
                    }
                }
                Out::Later(delay, frame) => {
                    let at = tokio::time::Instant::now() + delay;
                    let place = self.later.partition_point(|(t, _)| *t <= at);
                    self.later.insert(place, (at, frame));
                }
                Out::Drop => return Some(End::Dropped { by: Closer::Server }),
            }
        }
        None
    }

    /// Journals how the connection ended; under `--strict`, closes both sides first.
    async fn finish(self, end: End, client: &mut WebSocket, upstream: &mut Upstream) {
        self.faults.unregister(self.conn);
        let (code, by) = match end {
            End::Closed { code, by } => (Some(code), by),
            End::Dropped { by } => (None, by),
            End::Strict { code, by } => {
                let reason = "protocol violation (proxy --strict)";
                let close = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = client.send(Message::Close(Some(close))).await;
                let _ = upstream.close(Some(tungstenite_close(1000, reason))).await;
                (Some(code), by)
            }
        };
        let event = JournalEvent::Close {
            conn: Some(self.conn),
            code,
            by,
        };
        self.proxy.journal(&self.session, event);
    }
}

/// Sends a text frame to the client; the end it brings when the client has gone.
async fn send_text(client: &mut WebSocket, frame: String) -> Option<End> {
    match client.send(Message::Text(frame.into())).await {
        Ok(()) => None,
        Err(_) => Some(End::Dropped { by: Closer::Client }),
    }
}

fn tungstenite_close(code: u16, reason: &str) -> tungstenite::protocol::CloseFrame {
    tungstenite::protocol::CloseFrame {
        code: code.into(),
        reason: reason.to_owned().into(),
    }
}

/// The most of a client frame's text the journal keeps.
const CLIENT_FRAME_KEPT: usize = 64 * 1024;

fn client_frame(conn: u64, text: &str, broken: Option<&Broken>) -> JournalEvent {
    let kept = crate::journal::prefix(text, CLIENT_FRAME_KEPT);
    let frame = (kept.len() == text.len())
        .then(|| WireJson::copied(text))
        .flatten();
    JournalEvent::ClientFrame {
        conn,
        before_history: false,
        bytes: text.len() as u64,
        text: frame.is_none().then(|| kept.to_owned()),
        frame,
        truncated: kept.len() < text.len(),
        error: broken.map(|b| b.detail.clone()),
    }
}
