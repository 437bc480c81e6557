//! The WebSocket endpoint (spec §3): the handshake checks, then one task per connection that
//! selects over socket reads, its outbound queue, its idle timer and server shutdown. This is
//! the only code that sees WebSocket frames.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{
    CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{FutureExt as _, SinkExt as _};
use serde::Deserialize;
use tokio::time::Instant;

use crate::engine::history::parse_cursor;
use crate::engine::{CLOSE_SESSION_ENDED, ConnId};
use crate::http_log::{Endpoint, HttpCall, RequestFacts};
use crate::journal::Closer;
use crate::protocol::{
    ClientFrameError, ClientFrameRejection, RawFrame, catalog, decode_client_frame,
};
use crate::state::{
    AppState, CLOSE_OVERFLOW, Outbound, ReserveError, SessionSlot, Stop, StopReason,
};

/// tungstenite's own read buffer default is 128 KiB per connection; 4 KiB keeps idle sockets
/// small and costs nothing for chat-sized frames.
pub(crate) const READ_BUFFER: usize = 4 * 1024;
/// Hard ceiling enforced by the WebSocket library. Frames between the advertised limit and
/// this get `Message too large` and the socket stays open (spec §12 B13).
pub(crate) const LIBRARY_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// How long a final Close frame may take to write before the socket is dropped.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// The close code for a client that stopped reading (docs/mock.md, Limits).
pub const CLOSE_STALLED: u16 = 1008;

/// Query of `GET /ws` (spec §3.1).
#[derive(Debug, Deserialize)]
pub struct ConnectParams {
    session_id: Option<String>,
    access_token: Option<String>,
    cursor: Option<String>,
}

impl ConnectParams {
    /// The query for the journal, with the access token redacted.
    fn redacted(&self) -> BTreeMap<String, String> {
        let mut query = BTreeMap::new();
        if let Some(id) = &self.session_id {
            query.insert("session_id".into(), id.clone());
        }
        if self.access_token.is_some() {
            query.insert("access_token".into(), "[redacted]".into());
        }
        if let Some(cursor) = &self.cursor {
            query.insert("cursor".into(), cursor.clone());
        }
        query
    }
}

/// A handshake failure: plain-text catalog string (spec §3.2, §12 C6).
fn reject(status: StatusCode, message: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// `GET /ws?session_id=…&access_token=…[&cursor=…]`. Every attempt, accepted or refused, goes
/// into the HTTP log.
pub async fn connect(
    State(state): State<AppState>,
    params: Result<Query<ConnectParams>, axum::extract::rejection::QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let mut call = HttpCall {
        at_ms: 0,
        endpoint: Endpoint::WebSocket,
        status: 0,
        error: None,
        retry_after: None,
        request: RequestFacts::default(),
        token: None,
        session_id: None,
    };
    let response = handshake(&state, params, upgrade, &mut call);
    call.status = response.status().as_u16();
    state.note_http_call(call);
    response
}

/// The handshake's answer: a refusal, or the upgrade to a connection task.
fn handshake(
    state: &AppState,
    params: Result<Query<ConnectParams>, axum::extract::rejection::QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    call: &mut HttpCall,
) -> Response {
    match find_session(state, params, upgrade.is_ok(), call) {
        Ok(known) => admit(state, known, upgrade, call),
        Err((status, message)) => {
            call.error = Some(message.to_owned());
            reject(status, message)
        }
    }
}

/// A handshake that named a session the mock holds.
struct Known {
    slot: Arc<SessionSlot>,
    verified: Result<crate::auth::AccessClaims, crate::auth::AuthError>,
    cursor: Option<String>,
    query: BTreeMap<String, String>,
}

/// Checks the query and the token far enough to find the session; notes what it learns in
/// `call`. Its refusals go to the HTTP log only (there is no session to journal them in).
fn find_session(
    state: &AppState,
    params: Result<Query<ConnectParams>, axum::extract::rejection::QueryRejection>,
    upgrading: bool,
    call: &mut HttpCall,
) -> Result<Known, (StatusCode, &'static str)> {
    let Ok(Query(params)) = params else {
        return Err((
            StatusCode::BAD_REQUEST,
            catalog::INVALID_CONNECTION_PARAMETERS,
        ));
    };
    let query = params.redacted();
    call.request.query = query.clone();
    call.request.upgrade = upgrading;
    call.session_id = params.session_id.clone().filter(|s| !s.is_empty());
    let verified = params
        .access_token
        .as_deref()
        .map(|token| state.issuer().verify(token, state.clock().unix_seconds()));
    call.token = verified
        .as_ref()
        .and_then(|v| v.as_ref().ok())
        .map(|claims| claims.jti.clone());
    let (Some(session_id), Some(verified)) = (
        params.session_id.clone().filter(|s| !s.is_empty()),
        verified.filter(|_| {
            params
                .access_token
                .as_deref()
                .is_some_and(|t| !t.is_empty())
        }),
    ) else {
        return Err((
            StatusCode::BAD_REQUEST,
            catalog::INVALID_CONNECTION_PARAMETERS,
        ));
    };
    let Some(slot) = state.session(&session_id) else {
        let (status, message) = match verified {
            Ok(_) => (StatusCode::NOT_FOUND, catalog::SESSION_NOT_FOUND),
            Err(_) => (StatusCode::UNAUTHORIZED, catalog::AUTHENTICATION_FAILED),
        };
        return Err((status, message));
    };
    Ok(Known {
        slot,
        verified,
        cursor: params.cursor,
        query,
    })
}

/// Admits a connection to a known session: the token must fit it, then the upgrade takes a
/// socket permit and a connection slot and hands the socket to a connection task. Refusals
/// from here on go into the session's journal too.
fn admit(
    state: &AppState,
    known: Known,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    call: &mut HttpCall,
) -> Response {
    let Known {
        slot,
        verified,
        cursor,
        query,
    } = known;
    let mut refused = |status: StatusCode, message: &'static str| {
        call.error = Some(message.to_owned());
        reject(status, message)
    };
    let mut refuse = |status: StatusCode, message: &'static str| {
        state.refused_handshake(&slot, query.clone(), status.as_u16(), message);
        refused(status, message)
    };
    let Ok(claims) = verified else {
        return refuse(StatusCode::UNAUTHORIZED, catalog::AUTHENTICATION_FAILED);
    };
    if !slot.accepts(&claims, state.config().session_binding) {
        return refuse(StatusCode::UNAUTHORIZED, catalog::AUTHENTICATION_FAILED);
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            // Not a connection attempt: tell why one would be refused, counting nothing.
            let refusal = slot.lock().engine.refusal();
            return match refusal {
                Some(refusal) => refused(
                    StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                    refusal.body,
                ),
                None => rejection.into_response(),
            };
        }
    };
    let plain = state.config().profile.accepts_plain_cursor();
    let cursor = parse_cursor(cursor.as_deref(), plain).unwrap_or_else(|_| {
        tracing::warn!(?cursor, session = %slot.id, "invalid cursor; replaying everything");
        0
    });
    let permit = match reserve(state, &slot) {
        Ok(permit) => permit,
        Err((status, message)) => return refuse(status, message),
    };
    let state = state.clone();
    let failed_state = state.clone();
    let failed_slot = Arc::clone(&slot);
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(LIBRARY_MAX_MESSAGE)
        .max_frame_size(LIBRARY_MAX_MESSAGE)
        .on_failed_upgrade(move |error| {
            tracing::debug!(%error, "websocket upgrade failed");
            failed_state.release_reservation(&failed_slot);
        })
        .on_upgrade(move |socket| {
            let tasks = state.tasks().clone();
            tasks.track_future(async move {
                run_connection(socket, state, slot, cursor, query).await;
                drop(permit);
            })
        })
}

/// Takes a permit under the server-wide socket cap (docs/mock.md, Limits; held until the
/// connection task ends) and reserves a connection of the session, or says why not.
fn reserve(
    state: &AppState,
    slot: &SessionSlot,
) -> Result<tokio::sync::OwnedSemaphorePermit, (StatusCode, &'static str)> {
    let permit = state.socket_permit().ok_or((
        StatusCode::SERVICE_UNAVAILABLE,
        catalog::SERVER_CONNECTION_LIMIT,
    ))?;
    match state.reserve_connection(slot) {
        Ok(()) => Ok(permit),
        Err(ReserveError::Full) => Err((
            StatusCode::TOO_MANY_REQUESTS,
            catalog::CONNECTION_LIMIT_EXCEEDED,
        )),
        Err(ReserveError::Gone) => Err((StatusCode::NOT_FOUND, catalog::SESSION_NOT_FOUND)),
        Err(ReserveError::Refused(refusal)) => Err((
            StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            refusal.body,
        )),
    }
}

/// How a connection loop ended.
enum End {
    /// This task decided to close with this frame (journaled as it happens).
    Close(u16, &'static str),
    /// The session ordered this close (journaled when ordered, except the close after
    /// `SESSION_END` when the client has a grace to close first).
    Ordered(u16, &'static str),
    /// The peer closed with this code (`None`: reset or error, no close frame).
    Gone(Option<u16>),
    /// The session ordered a drop without a close frame (a scenario fault; journaled).
    Drop,
    /// The client stopped taking frames for `write_timeout_seconds`.
    Stalled,
    /// The session dropped this connection for falling too far behind (journaled then).
    Overflowed,
}

async fn run_connection(
    mut socket: WebSocket,
    state: AppState,
    slot: Arc<SessionSlot>,
    cursor: u64,
    query: BTreeMap<String, String>,
) {
    // With `replay_delay_ms`, frames the client sends before the history are collected
    // first, so the journal can show a client that did not wait for it (spec §11 WS-2).
    let mut early = Vec::new();
    let delay = Duration::from_millis(state.config().replay_delay_ms);
    if !delay.is_zero() {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => break,
                received = socket.recv() => match received {
                    Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => early.push(message),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    _ => {
                        state.release_reservation(&slot);
                        return;
                    }
                },
            }
        }
    }
    let opened = state.open_connection(&slot, cursor, query);
    let (conn, mut queue) = (opened.id, opened.queue);
    let out = Writer {
        state: &state,
        stop: &opened.stop,
    };
    let mut end = out.write_all(&mut socket, opened.replay).await;
    for message in &early {
        if end.is_some() {
            break;
        }
        end = match handle(&state, &slot, conn, message, true) {
            Ok(own) => out.write_all(&mut socket, own).await,
            Err(stop) => Some(stop),
        };
    }
    let end = match end {
        Some(end) => end,
        None => serve(&mut socket, &out, &slot, conn, &mut queue).await,
    };
    finish(socket, &state, &slot, conn, end).await;
}

/// Ends a connection the way `end` says: journals the close and sends the Close frame (or
/// none, for a drop).
async fn finish(
    mut socket: WebSocket,
    state: &AppState,
    slot: &SessionSlot,
    conn: ConnId,
    end: End,
) {
    match end {
        End::Gone(code) => {
            state.close_connection(slot, conn, code, Closer::Client);
            // The library queued the answer to a client's Close; send it (RFC 6455 §5.5.1).
            let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, socket.flush()).await;
        }
        End::Ordered(CLOSE_SESSION_ENDED, _) if !end_grace(state).is_zero() => {
            let closed = await_client_close(&mut socket, state, slot, conn).await;
            match closed {
                Some(code) => state.close_connection(slot, conn, code, Closer::Client),
                None => {
                    state.close_connection(slot, conn, Some(CLOSE_SESSION_ENDED), Closer::Server);
                    send_close(&mut socket, CLOSE_SESSION_ENDED, "session ended").await;
                }
            }
            let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, socket.flush()).await;
        }
        // Dropping the socket without a close frame: the client sees 1006.
        End::Drop => drop(socket),
        End::Ordered(code, reason) => send_close(&mut socket, code, reason).await,
        End::Close(code, reason) => {
            state.close_connection(slot, conn, Some(code), Closer::Server);
            send_close(&mut socket, code, reason).await;
        }
        // Journaled by the session when it dropped the connection's queue.
        End::Overflowed => send_close(&mut socket, CLOSE_OVERFLOW, "send queue overflow").await,
        End::Stalled => {
            state.close_connection(slot, conn, Some(CLOSE_STALLED), Closer::Server);
            // It is not reading: a Close frame gets one short chance, then TCP goes.
            let frame = CloseFrame {
                code: CLOSE_STALLED,
                reason: "not reading".into(),
            };
            let close = socket.send(Message::Close(Some(frame)));
            let _ = tokio::time::timeout(Duration::from_millis(50), close).await;
        }
    }
}

fn end_grace(state: &AppState) -> Duration {
    Duration::from_millis(state.config().session_end_close_grace_ms)
}

/// After `SESSION_END`, gives the client the configured grace to close the socket itself:
/// `Some(code)` when it did (`None` inside: the TCP connection went without a close frame),
/// `None` when the grace ran out. Frames racing the close are journaled and discarded.
async fn await_client_close(
    socket: &mut WebSocket,
    state: &AppState,
    slot: &SessionSlot,
    conn: ConnId,
) -> Option<Option<u16>> {
    let until = Instant::now() + end_grace(state);
    let shutdown = state.shutdown_token().clone();
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(until) => return None,
            () = shutdown.cancelled() => return None,
            received = socket.recv() => match received {
                Some(Ok(Message::Close(frame))) => {
                    return Some(Some(frame.as_ref().map_or(1005, |f| f.code)));
                }
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    let _ = handle(state, slot, conn, &message, false);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Some(None),
            },
        }
    }
}

async fn serve(
    socket: &mut WebSocket,
    out: &Writer<'_>,
    slot: &SessionSlot,
    conn: ConnId,
    queue: &mut tokio::sync::mpsc::Receiver<Outbound>,
) -> End {
    let state = out.state;
    let idle = state.config().connection_idle_timeout();
    // The waiters live as long as the loop, and the idle timer is re-armed only when it fires
    // early (a frame just moves `last_frame`): set up afresh on every turn of the loop, they
    // cost a timer-wheel entry and four lock round trips per frame on the echo path.
    let mut last_frame = Instant::now();
    let mut idle_timer = std::pin::pin!(tokio::time::sleep(idle));
    // Shutdown and overflow come as one lock-free signal, looked at on every turn.
    let mut stop = std::pin::pin!(out.stop.tripped());
    loop {
        tokio::select! {
            biased;
            reason = &mut stop => return stopped(reason),
            queued = queue.recv() => match queued {
                Some(outbound) => {
                    if let Some(end) = out.write_all(socket, [outbound]).await {
                        return end;
                    }
                }
                // Dropped from the session for falling too far behind.
                None => return End::Overflowed,
            },
            received = socket.recv() => {
                let message = match received {
                    Some(Ok(message)) => message,
                    Some(Err(error)) => return violation(error),
                    None => return End::Gone(None),
                };
                match &message {
                    // Pings are answered by the library; neither resets any timer (spec §12 C7).
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Close(frame) => return End::Gone(Some(frame.as_ref().map_or(1005, |f| f.code))),
                    Message::Text(_) | Message::Binary(_) => {}
                }
                last_frame = Instant::now();
                let own = match handle(state, slot, conn, &message, false) {
                    Ok(own) => own,
                    Err(end) => return end,
                };
                if let Some(end) = out.write_all(socket, own).await {
                    return end;
                }
            }
            () = &mut idle_timer => {
                let deadline = last_frame + idle;
                if deadline <= Instant::now() {
                    return End::Close(1001, "idle timeout");
                }
                idle_timer.as_mut().reset(deadline);
            }
        }
    }
}

/// A read error: a frame that breaks RFC 6455 is answered with the close code the RFC names
/// (RFC 6455 §7.4.1: 1002 protocol error, 1007 invalid UTF-8, 1009 too big); anything else is the
/// connection going away without a close frame.
fn violation(error: axum::Error) -> End {
    use tungstenite::Error;
    let Ok(error) = error.into_inner().downcast::<Error>() else {
        return End::Gone(None);
    };
    match *error {
        Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            End::Gone(None)
        }
        Error::Protocol(_) => End::Close(1002, "protocol error"),
        Error::Utf8(_) => End::Close(1007, "invalid UTF-8 in a text frame"),
        Error::Capacity(_) => End::Close(1009, "message too big"),
        _ => End::Gone(None),
    }
}

/// Decodes one data frame and feeds it to the session; the frames for this socket come back.
fn handle(
    state: &AppState,
    slot: &SessionSlot,
    conn: ConnId,
    message: &Message,
    before_history: bool,
) -> Result<Vec<Outbound>, End> {
    let (raw, text) = match message {
        Message::Text(text) => (RawFrame::Text(text.as_str()), Some(text.as_str())),
        Message::Binary(bytes) => (RawFrame::Binary(bytes), None),
        _ => return Ok(Vec::new()),
    };
    let decoded = decode_client_frame(raw, state.decode_options());
    if state.config().close_on_oversized_frame && is_too_large(&decoded) {
        return Err(End::Close(1009, "message too large"));
    }
    Ok(state.receive(slot, conn, text, raw.len(), decoded, before_history))
}

fn is_too_large<T>(decoded: &Result<T, ClientFrameRejection>) -> bool {
    matches!(decoded, Err(r) if matches!(r.error, ClientFrameError::TooLarge { .. }))
}

/// Writes one connection's frames, watching for shutdown and for the session dropping it.
struct Writer<'a> {
    state: &'a AppState,
    stop: &'a Stop,
}

impl Writer<'_> {
    /// Writes frames in order; `Some` when the connection must end. A frame the client does
    /// not take within `write_timeout_seconds` ends it (`End::Stalled`), and so do shutdown and
    /// an overflowing queue (other tasks' frames piling up meanwhile).
    async fn write_all(
        &self,
        socket: &mut WebSocket,
        frames: impl IntoIterator<Item = Outbound>,
    ) -> Option<End> {
        for outbound in frames {
            match outbound {
                Outbound::Frame(frame) => {
                    // The common case, a socket with room, completes on the first poll: no
                    // timer and no cancellation waiters are set up for it (they cost a timer
                    // entry and two locks a frame on the echo path).
                    let mut send = std::pin::pin!(socket.send(Message::Text(frame)));
                    let written = match send.as_mut().now_or_never() {
                        Some(written) => written,
                        None => {
                            let write =
                                tokio::time::timeout(self.state.config().write_timeout(), send);
                            tokio::select! {
                                biased;
                                reason = self.stop.tripped() => return Some(stopped(reason)),
                                written = write => match written {
                                    Ok(written) => written,
                                    Err(_) => return Some(End::Stalled),
                                },
                            }
                        }
                    };
                    if written.is_err() {
                        return Some(End::Gone(None));
                    }
                }
                Outbound::Close { code, reason } => return Some(End::Ordered(code, reason)),
                Outbound::Drop => return Some(End::Drop),
            }
        }
        None
    }
}

/// How a connection ends when its [`Stop`] trips.
fn stopped(reason: StopReason) -> End {
    match reason {
        StopReason::ShuttingDown => End::Close(1001, "server shutting down"),
        StopReason::Overflowed => End::Overflowed,
    }
}

/// Sends a Close frame, giving a client that is not reading a moment at most.
async fn send_close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(
        CLOSE_WRITE_TIMEOUT,
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}
