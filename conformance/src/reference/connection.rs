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

/// The connection task: connects, converses, and reconnects or starts over, until closed.
pub(super) async fn run(
    config: ClientConfig,
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<String>,
    mut socket: Option<Socket>,
) {
    let mut link = Connection {
        config,
        shared,
        failed: 0,
        resuming: socket.is_none(),
        after_drop: false,
    };
    loop {
        let current = match socket.take() {
            Some(open) => open,
            None => match link.open().await {
                Ok(open) => open,
                Err(error) => match link.after_failed_attempt(&error).await {
                    Next::Connect => continue,
                    Next::Stop => return,
                },
            },
        };
        link.failed = 0;
        link.set(ConnectionState::Open);
        let defects = link.config.defects;
        let ended = converse(current, &link.shared, &mut queue, defects, link.after_drop).await;
        if let Next::Stop = link.after_conversation(ended).await {
            return;
        }
    }
}

/// What the connection task does next.
enum Next {
    /// Opens a connection (again).
    Connect,
    /// Ends: the connection stays closed.
    Stop,
}

/// The connection task's state between connections.
struct Connection {
    config: ClientConfig,
    shared: Arc<Shared>,
    /// Failed reconnect attempts since the connection was lost.
    failed: u32,
    /// A resumed instance starts without a socket; its first connection is the resume.
    resuming: bool,
    /// The connection being opened follows an unexpected close (not a start or a resume).
    after_drop: bool,
}

impl Connection {
    /// Shows `state` as the connection's.
    fn set(&self, state: ConnectionState) {
        *lock(&self.shared.connection) = state;
    }

    /// Opens the socket, with the cursor of the last event seen (spec §3.6).
    async fn open(&mut self) -> Result<Socket, tungstenite::Error> {
        let defects = self.config.defects;
        let last = lock(&self.shared.conversation).last_sequence();
        let cursor = if defects.has(Defect::NoCursor)
            || (defects.has(Defect::CursorLostOnRestart) && self.resuming)
        {
            0
        } else if defects.has(Defect::StaleCursor) {
            last.saturating_sub(2)
        } else {
            last
        };
        let session = lock(&self.shared.session).clone();
        let open = connect(&self.config, &ws_url(&self.config, &session, cursor)).await?;
        self.resuming = false;
        Ok(open)
    }

    /// After a failed attempt: a new session for a dead one (RC-5), else a wait before the
    /// next attempt, or giving up after the advertised number of attempts.
    async fn after_failed_attempt(&mut self, error: &tungstenite::Error) -> Next {
        let defects = self.config.defects;
        self.failed += 1;
        let gone = matches!(refused_status(error), Some(404 | 401));
        if gone && !defects.has(Defect::RetryGoneSession) {
            // The session or its token is dead: a new token and session (RC-5).
            if start_over(&self.config, &self.shared).await {
                self.failed = 0;
                return Next::Connect;
            }
        }
        let max = lock(&self.shared.conversation)
            .session_start()
            .and_then(|c| c.max_reconnect_attempts)
            .unwrap_or(5);
        if defects.has(Defect::NoBackoff) {
            // Hammers the server: no delay, no limit (beyond a safety cap).
            if self.failed > 200 {
                self.set(ConnectionState::Closed);
                return Next::Stop;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Next::Connect;
        }
        let limit = max + u32::from(defects.has(Defect::OneAttemptTooMany));
        if self.failed >= limit && !defects.has(Defect::NeverGiveUp) {
            return self.give_up().await;
        }
        tokio::time::sleep(backoff_after(self.failed, defects)).await;
        Next::Connect
    }

    /// Out of attempts: closed, unless a defect starts over by itself.
    async fn give_up(&mut self) -> Next {
        self.set(ConnectionState::Closed);
        if self.config.defects.has(Defect::NewSessionAfterGivingUp) {
            // Gives up, then starts over by itself instead of the user.
            tokio::time::sleep(BACKOFF_START).await;
            if start_over(&self.config, &self.shared).await {
                self.failed = 0;
                self.after_drop = false;
                return Next::Connect;
            }
        }
        Next::Stop
    }

    /// After a connection's life: closed for good after the end, else reconnecting after a
    /// drop (defects may do otherwise).
    async fn after_conversation(&mut self, ended: Ended) -> Next {
        let defects = self.config.defects;
        match ended {
            Ended::Session if defects.has(Defect::NewSessionAfterEnd) => {
                tokio::time::sleep(BACKOFF_START).await;
                if !start_over(&self.config, &self.shared).await {
                    self.set(ConnectionState::Closed);
                    return Next::Stop;
                }
                self.set(ConnectionState::Connecting);
            }
            Ended::Session if defects.has(Defect::ReconnectAfterEnd) => {
                self.set(ConnectionState::Reconnecting);
                tokio::time::sleep(BACKOFF_START).await;
            }
            Ended::Session | Ended::Stopped => {
                self.set(ConnectionState::Closed);
                return Next::Stop;
            }
            Ended::Dropped => {
                self.after_drop = true;
                self.set(ConnectionState::Reconnecting);
                if defects.has(Defect::NoBackoff) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                } else {
                    tokio::time::sleep(BACKOFF_START).await;
                }
                if defects.has(Defect::NewSessionOnReconnect)
                    && !start_over(&self.config, &self.shared).await
                {
                    self.set(ConnectionState::Closed);
                    return Next::Stop;
                }
            }
        }
        Next::Connect
    }
}
