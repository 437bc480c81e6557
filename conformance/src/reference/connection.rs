//! The connection task: opening the socket (URL, cursor, TLS), and reconnecting with backoff
//! after a drop, or with a new session after a dead one (spec §11 RC-1..5).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;

use super::conversation::Conversation;
use super::converse::{Ended, converse};
use super::handshake::new_session;
use super::{ClientConfig, Defect, Defects, Session, Shared, lock};
use crate::contract::ConnectionState;

/// Reconnect backoff: first retry and cap (spec §3.6).
const BACKOFF_START: Duration = Duration::from_secs(1);
pub(super) const BACKOFF_CAP: Duration = Duration::from_secs(30);

pub(super) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(super) fn ws_url(config: &ClientConfig, session: &Session, cursor: u64) -> String {
    let secure = if config.defects.has(Defect::PlaintextWs) {
        "ws://"
    } else {
        "wss://"
    };
    let base = config
        .base_url
        .replacen("https://", secure, 1)
        .replacen("http://", "ws://", 1);
    let mut url = format!(
        "{}/ws?session_id={}&access_token={}",
        base.trim_end_matches('/'),
        session.id,
        session.token
    );
    if cursor > 0 {
        let prefix = if config.protocol.accepts_plain_cursor() {
            ""
        } else {
            "seq:"
        };
        url.push_str(&format!("&cursor={prefix}{cursor}"));
    }
    url
}

pub(super) async fn connect(
    config: &ClientConfig,
    url: &str,
) -> Result<Socket, tungstenite::Error> {
    let tls = config.tls.clone().map(tokio_tungstenite::Connector::Rustls);
    tokio_tungstenite::connect_async_tls_with_config(url, None, true, tls)
        .await
        .map(|(socket, _)| socket)
}

/// The status of a refused handshake, if that is what happened.
fn refused_status(error: &tungstenite::Error) -> Option<u16> {
    match error {
        tungstenite::Error::Http(response) => Some(response.status().as_u16()),
        _ => None,
    }
}

/// The delay before reconnect attempt `n + 1` after `n` failed ones: 2 s, 4 s, … 30 s.
fn backoff_after(failed: u32, defects: Defects) -> Duration {
    if defects.has(Defect::ConstantBackoff) {
        return BACKOFF_START;
    }
    if defects.has(Defect::BackoffStopsGrowing) {
        return BACKOFF_START * 2;
    }
    BACKOFF_START
        .saturating_mul(1 << failed.min(5))
        .min(BACKOFF_CAP)
}

/// Replaces the session (after RC-5 or a defect), starting the conversation afresh.
async fn start_over(config: &ClientConfig, shared: &Shared) -> bool {
    let old = lock(&shared.session).token.clone();
    match new_session(config, Some(&old)).await {
        Ok(fresh) => {
            *lock(&shared.session) = fresh;
            *lock(&shared.conversation) = Conversation::with_defects(config.defects);
            true
        }
        Err(_) => false,
    }
}

pub(super) async fn run(
    config: ClientConfig,
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<String>,
    mut socket: Option<Socket>,
) {
    let defects = config.defects;
    let set = |state| *lock(&shared.connection) = state;
    // Failed reconnect attempts since the connection was lost.
    let mut failed: u32 = 0;
    // A resumed instance starts without a socket; its first connection is the resume.
    let mut resuming = socket.is_none();
    // The connection being opened follows an unexpected close (not a start or a resume).
    let mut after_drop = false;
    loop {
        let current = match socket.take() {
            Some(open) => open,
            None => {
                let last = lock(&shared.conversation).last_sequence();
                let cursor = if defects.has(Defect::NoCursor)
                    || (defects.has(Defect::CursorLostOnRestart) && resuming)
                {
                    0
                } else if defects.has(Defect::StaleCursor) {
                    last.saturating_sub(2)
                } else {
                    last
                };
                let session = lock(&shared.session).clone();
                match connect(&config, &ws_url(&config, &session, cursor)).await {
                    Ok(open) => {
                        resuming = false;
                        open
                    }
                    Err(error) => {
                        failed += 1;
                        let gone = matches!(refused_status(&error), Some(404 | 401));
                        if gone && !defects.has(Defect::RetryGoneSession) {
                            // The session or its token is dead: a new token and session (RC-5).
                            if start_over(&config, &shared).await {
                                failed = 0;
                                continue;
                            }
                        }
                        let max = lock(&shared.conversation)
                            .session_start()
                            .and_then(|c| c.max_reconnect_attempts)
                            .unwrap_or(5);
                        if defects.has(Defect::NoBackoff) {
                            // Hammers the server: no delay, no limit (beyond a safety cap).
                            if failed > 200 {
                                set(ConnectionState::Closed);
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                        let limit = max + u32::from(defects.has(Defect::OneAttemptTooMany));
                        if failed >= limit && !defects.has(Defect::NeverGiveUp) {
                            set(ConnectionState::Closed);
                            if defects.has(Defect::NewSessionAfterGivingUp) {
                                // Gives up, then starts over by itself instead of the user.
                                tokio::time::sleep(BACKOFF_START).await;
                                if start_over(&config, &shared).await {
                                    failed = 0;
                                    after_drop = false;
                                    continue;
                                }
                            }
                            return;
                        }
                        tokio::time::sleep(backoff_after(failed, defects)).await;
                        continue;
                    }
                }
            }
        };
        failed = 0;
        set(ConnectionState::Open);
        match converse(current, &shared, &mut queue, defects, after_drop).await {
            Ended::Session if defects.has(Defect::NewSessionAfterEnd) => {
                tokio::time::sleep(BACKOFF_START).await;
                if !start_over(&config, &shared).await {
                    set(ConnectionState::Closed);
                    return;
                }
                set(ConnectionState::Connecting);
            }
            Ended::Session if defects.has(Defect::ReconnectAfterEnd) => {
                set(ConnectionState::Reconnecting);
                tokio::time::sleep(BACKOFF_START).await;
            }
            Ended::Session | Ended::Stopped => {
                set(ConnectionState::Closed);
                return;
            }
            Ended::Dropped => {
                after_drop = true;
                set(ConnectionState::Reconnecting);
                if defects.has(Defect::NoBackoff) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                } else {
                    tokio::time::sleep(BACKOFF_START).await;
                }
                if defects.has(Defect::NewSessionOnReconnect) && !start_over(&config, &shared).await
                {
                    set(ConnectionState::Closed);
                    return;
                }
            }
        }
    }
}
