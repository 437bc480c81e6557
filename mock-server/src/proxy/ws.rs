//! `GET /ws` through the proxy: the upstream handshake first (its refusal is the client's, with
//! the same status and body), then every frame forwarded both ways, journaled and checked.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest as _};

use super::faults::{Command, Out, SessionFaults};
use super::validate::{self, Broken, ServerRules};
use super::{Direction, Proxy};
use crate::journal::{Closer, JournalEvent};
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
    let handshake = |status: u16, error: Option<String>| JournalEvent::Handshake {
        conn: Some(conn),
        query: redacted(&query),
        status,
        error,
    };
    // A refusal injected as a fault answers before the upstream is asked.
    if let Some(refusal) = faults.refuse_handshake() {
        proxy.journal(
            &session,
            handshake(refusal.status, Some(refusal.body.to_owned())),
        );
        let status =
            StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            refusal.body,
        )
            .into_response();
    }
    let upstream = &proxy.inner.config.upstream;
    let mut request = match upstream
        .ws_url(&format!("/ws?{query}"))
        .into_client_request()
    {
        Ok(request) => request,
        Err(error) => {
            return (StatusCode::BAD_REQUEST, format!("bad /ws request: {error}")).into_response();
        }
    };
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
    let timeout = proxy.inner.config.timeout;
    let connected = tokio::time::timeout(
        timeout,
        tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, connector),
    )
    .await;
    // The upstream failed: listed as a violation, journaled as the handshake's answer.
    let failed = |status: StatusCode, detail: String| {
        proxy.journal(&session, handshake(status.as_u16(), Some(detail.clone())));
        proxy.violation(
            Direction::Upstream,
            Broken {
                rule: "upstream",
                detail,
            },
            (Some(&session), Some(conn)),
            None,
        );
    };
    match connected {
        Ok(Ok((upstream, _))) => {
            proxy.journal(&session, handshake(101, None));
            upgrade
                .read_buffer_size(crate::ws::READ_BUFFER)
                .write_buffer_size(0)
                .max_message_size(crate::ws::LIBRARY_MAX_MESSAGE)
                .max_frame_size(crate::ws::LIBRARY_MAX_MESSAGE)
                .on_upgrade(move |client| pump(proxy, session, (conn, faults), client, upstream))
        }
        Ok(Err(tungstenite::Error::Http(refused))) => {
            let status = refused.status();
            let body = refused
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            proxy.journal(&session, handshake(status.as_u16(), Some(body.clone())));
            (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                body,
            )
                .into_response()
        }
        Ok(Err(error)) => {
            failed(StatusCode::BAD_GATEWAY, format!("/ws handshake: {error}"));
            (StatusCode::BAD_GATEWAY, format!("upstream failed: {error}")).into_response()
        }
        Err(_) => {
            failed(
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
    let mut rules = ServerRules::default();
    let strict = proxy.inner.config.strict;
    let at = (Some(session.as_str()), Some(conn));
    let mut commands = faults.register(conn);
    // Frames a fault holds back (a delayed echo), in the order they fall due.
    let mut later: std::collections::VecDeque<(tokio::time::Instant, String)> =
        std::collections::VecDeque::new();
    let end = 'pump: loop {
        let due = later.front().map(|(at, _)| *at);
        tokio::select! {
            Some(command) = commands.recv() => match command {
                Command::Send(frame) => {
                    if client.send(Message::Text(frame.into())).await.is_err() {
                        break End::Dropped { by: Closer::Client };
                    }
                }
                Command::Drop => break End::Dropped { by: Closer::Server },
                Command::Close { code, reason } => {
                    let _ = client
                        .send(Message::Close(Some(CloseFrame { code, reason: reason.into() })))
                        .await;
                    let _ = upstream.close(Some(tungstenite_close(1000, reason))).await;
                    break End::Closed { code, by: Closer::Server };
                }
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                if let Some((_, frame)) = later.pop_front()
                    && client.send(Message::Text(frame.into())).await.is_err()
                {
                    break End::Dropped { by: Closer::Client };
                }
            },
            from_client = client.recv() => match from_client {
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_str();
                    let broken = validate::client_frame(RawFrame::Text(text), &proxy.inner.decode);
                    proxy.journal(&session, client_frame(conn, text, broken.as_ref()));
                    if let Some(broken) = broken {
                        proxy.violation(Direction::Client, broken, at, Some(text));
                        if strict {
                            break End::Strict { code: 1008, by: Closer::Client };
                        }
                    }
                    if !faults.forward_client(text) {
                        continue;
                    }
                    if upstream.send(tungstenite::Message::text(text)).await.is_err() {
                        break End::Dropped { by: Closer::Server };
                    }
                }
                Some(Ok(Message::Binary(bytes))) => {
                    let broken = validate::client_frame(RawFrame::Binary(&bytes), &proxy.inner.decode);
                    if let Some(broken) = broken {
                        proxy.violation(Direction::Client, broken, at, None);
                        if strict {
                            break End::Strict { code: 1008, by: Closer::Client };
                        }
                    }
                    if upstream.send(tungstenite::Message::binary(bytes)).await.is_err() {
                        break End::Dropped { by: Closer::Server };
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.as_ref().map_or(1005, |f| f.code);
                    let reason = frame.as_ref().map(|f| f.reason.as_str().to_owned()).unwrap_or_default();
                    let _ = upstream.close(Some(tungstenite_close(code, &reason))).await;
                    break End::Closed { code, by: Closer::Client };
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Err(_)) | None => break End::Dropped { by: Closer::Client },
            },
            from_upstream = upstream.next() => match from_upstream {
                Some(Ok(tungstenite::Message::Text(text))) => {
                    let text = text.as_str();
                    let checked = rules.check_frame(text);
                    let live_id = checked.id.as_deref().filter(|_| !checked.batch);
                    proxy.journal_server_frame(&session, conn, text, live_id);
                    let any = !checked.broken.is_empty();
                    for broken in checked.broken {
                        proxy.violation(Direction::Server, broken, at, Some(text));
                    }
                    if any && strict {
                        break End::Strict { code: 1011, by: Closer::Server };
                    }
                    let Some(outs) = faults.deliver(text, checked.batch, super::unix_ms()) else {
                        if client.send(Message::Text(text.into())).await.is_err() {
                            break End::Dropped { by: Closer::Client };
                        }
                        continue;
                    };
                    for out in outs {
                        match out {
                            Out::Send(frame) => {
                                if client.send(Message::Text(frame.into())).await.is_err() {
                                    break 'pump End::Dropped { by: Closer::Client };
                                }
                            }
                            Out::Later(delay, frame) => {
                                let at = tokio::time::Instant::now() + delay;
                                let place = later.partition_point(|(t, _)| *t <= at);
                                later.insert(place, (at, frame));
                            }
                            Out::Drop => break 'pump End::Dropped { by: Closer::Server },
                        }
                    }
                }
                Some(Ok(tungstenite::Message::Binary(bytes))) => {
                    proxy.violation(
                        Direction::Server,
                        Broken { rule: "server-frame-json", detail: "a binary frame".into() },
                        at,
                        None,
                    );
                    if client.send(Message::Binary(bytes)).await.is_err() {
                        break End::Dropped { by: Closer::Client };
                    }
                }
                Some(Ok(tungstenite::Message::Close(frame))) => {
                    let code = frame.as_ref().map_or(1005, |f| u16::from(f.code));
                    let reason = frame.as_ref().map(|f| f.reason.as_str().to_owned()).unwrap_or_default();
                    if let Some(broken) = validate::close_code(code) {
                        proxy.violation(Direction::Server, broken, at, None);
                    }
                    let _ = client
                        .send(Message::Close(Some(CloseFrame { code, reason: reason.into() })))
                        .await;
                    break End::Closed { code, by: Closer::Server };
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break End::Dropped { by: Closer::Server },
            },
        }
    };
    faults.unregister(conn);
    let event = match end {
        End::Closed { code, by } => JournalEvent::Close {
            conn: Some(conn),
            code: Some(code),
            by,
        },
        End::Dropped { by } => JournalEvent::Close {
            conn: Some(conn),
            code: None,
            by,
        },
        End::Strict { code, by } => {
            let reason = "protocol violation (proxy --strict)";
            let _ = client
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                })))
                .await;
            let _ = upstream.close(Some(tungstenite_close(1000, reason))).await;
            JournalEvent::Close {
                conn: Some(conn),
                code: Some(code),
                by,
            }
        }
    };
    proxy.journal(&session, event);
}

fn tungstenite_close(code: u16, reason: &str) -> tungstenite::protocol::CloseFrame {
    tungstenite::protocol::CloseFrame {
        code: code.into(),
        reason: reason.to_owned().into(),
    }
}

fn client_frame(conn: u64, text: &str, broken: Option<&Broken>) -> JournalEvent {
    let kept = crate::journal::prefix(text, 64 * 1024);
    let frame = (kept.len() == text.len())
        .then(|| RawValue::from_string(text.to_owned()).ok())
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
