//! The reference client: a Rust client of the Messaging API that keeps every client obligation
//! of spec §11. The kit's own tests run it to prove the checks pass an honest client (and its
//! defects, [`defects`], to prove they fail a broken one); Rust apps can use it as an SDK.
//!
//! What it does, obligation by obligation: token then session with the documented headers
//! (AUTH-1/2); a fresh token per session (AUTH-3); on 429 it waits `Retry-After`, on 5xx
//! 0.5 s, 1 s, 2 s … (AUTH-5); both query parameters (WS-1); the join only after the history,
//! only on a new session, only once (WS-2/3/4); only well-formed frames within the advertised
//! size (WS-5/6/7); heartbeats at the advertised interval, 30 s when none is (HB-1/2); on an
//! unexpected close, the same session and token with `cursor` = highest sequence, 1 s after
//! the drop, then 2 s, 4 s … up to 30 s, for exactly `max_reconnect_attempts` attempts, then
//! closed (RC-1/2/3/4); a new session (and token) after a 404 or 401 handshake (RC-5);
//! batches flattened, events deduplicated by `id`, ordered by `sequence`, chunks assembled in
//! `chunk_index` order (MSG-1/2/3/4); unechoed messages resent 5 s, 15 s and 30 s after they
//! were sent, then marked failed (MSG-5); typing shown while the agent thinks or the live
//! agent types (UX-1); after `SESSION_END` it closes the socket and stays closed (UX-4);
//! errors and unknown events change nothing (ERR-1/2). `suspend` and `resume` carry a session
//! across an app restart (the contract's `restart`).

pub mod conversation;
pub mod defects;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mock_server::protocol::{
    ClientEvent, ClientFrame, Metadata, ServerEvent, TypingState, UserMessage, UserTyping,
    decode_server_frame, encode_client_frame,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::contract::{ConnectionState, View};
use crate::rest::post_json;
use conversation::{CLIENT_EVENT_ID, Conversation, Pending};
pub use defects::{Defect, Defects, Mutant, mutants};

/// Where the client keeps its session across a restart, in the app's working directory. (A
/// real app would use the platform's secure storage for the token, spec §11 SEC-1.)
pub const STATE_FILE: &str = ".reference-client-session.json";

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub connector_token: String,
    pub host: String,
    pub streaming: bool,
    /// Deliberate defects, for the kit's self-tests (all off: the honest client).
    pub defects: Defects,
    /// The documentation revision the client is written against: under `2026-05` its
    /// reconnect cursor is `seq:<n>` (spec §0).
    pub protocol: mock_server::config::Profile,
    /// For an `https://` base URL: trusts the mock's CA alone (`MESSAGING_CA_FILE`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// How long to wait for an echo before resending a message (spec §4.4).
const ECHO_TIMEOUT: Duration = Duration::from_secs(5);
/// Resends before a message is marked failed (spec §4.4).
const MAX_RESENDS: u32 = 3;
/// Reconnect backoff: first retry and cap (spec §3.6).
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// REST retries after a 5xx start here and double (spec §10.1 asks only for exponential).
const REST_BACKOFF_START: Duration = Duration::from_millis(500);
/// Attempts of one REST call before giving up.
const REST_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Http(String),
    #[error("{endpoint} answered {status}: {body}")]
    Refused {
        endpoint: &'static str,
        status: u16,
        body: String,
    },
    #[error("could not open the WebSocket: {0}")]
    Connect(String),
    #[error("the conversation is over")]
    Closed,
    #[error("{0}")]
    Usage(String),
    #[error("cannot keep the session for a restart: {0}")]
    Persist(String),
}

/// Credentials of one session.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    token: String,
    id: String,
}

#[derive(Debug)]
struct Shared {
    conversation: Mutex<Conversation>,
    connection: Mutex<ConnectionState>,
    session: Mutex<Session>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What survives an app restart.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    session: Session,
    streaming: bool,
    /// Every server event the client had, as received (already deduplicated).
    events: Vec<String>,
    pending: Vec<Pending>,
}

/// A running client.
#[derive(Debug)]
pub struct ReferenceClient {
    shared: Arc<Shared>,
    config: ClientConfig,
    outgoing: mpsc::UnboundedSender<String>,
    task: tokio::task::JoinHandle<()>,
}

/// `post_json`, retried: after a 429 once `Retry-After` has passed, after a 5xx with a
/// doubling delay (spec §11 AUTH-5).
async fn post_retrying(
    config: &ClientConfig,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<crate::rest::Answer, ClientError> {
    let defects = config.defects;
    let mut delay = REST_BACKOFF_START;
    for attempt in 1..=REST_ATTEMPTS {
        let answer = post_json(&config.base_url, config.tls.as_ref(), path, headers, body)
            .await
            .map_err(ClientError::Http)?;
        let retryable = answer.status == 429 || answer.status >= 500;
        if !retryable || attempt == REST_ATTEMPTS || defects.has(Defect::NoRestRetry) {
            return Ok(answer);
        }
        let wait = if answer.status == 429 {
            if defects.has(Defect::RetryAfterIgnored) {
                Duration::from_millis(500)
            } else if defects.has(Defect::RetryAfterFixed3S) {
                Duration::from_secs(3)
            } else {
                Duration::from_secs(answer.retry_after.unwrap_or(1))
            }
        } else if defects.has(Defect::RestConstantBackoff) {
            Duration::from_secs(1)
        } else {
            let wait = delay;
            delay = (delay * 2).min(BACKOFF_CAP);
            wait
        };
        tokio::time::sleep(wait).await;
    }
    Err(ClientError::Http(format!("{path}: no answer")))
}

/// A token (fresh, unless `reuse` is given and the defect keeps tokens) and a session.
async fn new_session(config: &ClientConfig, reuse: Option<&str>) -> Result<Session, ClientError> {
    let defects = config.defects;
    let json = if defects.has(Defect::NoContentType) {
        "text/plain"
    } else {
        "application/json"
    };
    let token = match reuse.filter(|_| defects.has(Defect::TokenReuse)) {
        Some(token) => token.to_owned(),
        None => {
            let mut headers = vec![
                ("x-token", config.connector_token.as_str()),
                ("content-type", json),
            ];
            if !defects.has(Defect::NoXHost) {
                headers.push(("x-host", config.host.as_str()));
            }
            let answer = post_retrying(config, "/api/v1/access-token", &headers, "{}").await?;
            match (answer.status, answer.body["access_token"].as_str()) {
                (200, Some(token)) => token.to_owned(),
                _ => {
                    return Err(ClientError::Refused {
                        endpoint: "/api/v1/access-token",
                        status: answer.status,
                        body: answer.body.to_string(),
                    });
                }
            }
        }
    };
    let bearer = format!("Bearer {token}");
    let request =
        serde_json::json!({ "streaming_enabled": config.streaming, "platform": "custom" });
    let answer = post_retrying(
        config,
        "/api/v1/sessions",
        &[("authorization", &bearer), ("content-type", json)],
        &request.to_string(),
    )
    .await?;
    match (answer.status, answer.body["session_id"].as_str()) {
        (200, Some(id)) => Ok(Session {
            token,
            id: id.to_owned(),
        }),
        _ => Err(ClientError::Refused {
            endpoint: "/api/v1/sessions",
            status: answer.status,
            body: answer.body.to_string(),
        }),
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(config: &ClientConfig, session: &Session, cursor: u64) -> String {
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

async fn connect(config: &ClientConfig, url: &str) -> Result<Socket, tungstenite::Error> {
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

impl ReferenceClient {
    /// Starts a conversation: token, session, socket. Returns once the socket is open; the
    /// join follows the history.
    pub async fn start(config: ClientConfig) -> Result<Self, ClientError> {
        let session = new_session(&config, None).await?;
        let socket = connect(&config, &ws_url(&config, &session, 0))
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let conversation = Conversation::with_defects(config.defects);
        Ok(Self::spawn(config, session, conversation, Some(socket)))
    }

    fn spawn(
        config: ClientConfig,
        session: Session,
        conversation: Conversation,
        socket: Option<Socket>,
    ) -> Self {
        let shared = Arc::new(Shared {
            conversation: Mutex::new(conversation),
            connection: Mutex::new(if socket.is_some() {
                ConnectionState::Open
            } else {
                ConnectionState::Connecting
            }),
            session: Mutex::new(session),
        });
        let (outgoing, queue) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(config.clone(), Arc::clone(&shared), queue, socket));
        Self {
            shared,
            config,
            outgoing,
            task,
        }
    }

    pub fn streaming(&self) -> bool {
        self.config.streaming
    }

    /// Stops the client as an app being closed would, keeping what it needs to resume.
    pub async fn suspend(self, state_file: &Path) -> Result<(), ClientError> {
        self.task.abort();
        let _ = self.task.await;
        let saved = {
            let conversation = lock(&self.shared.conversation);
            Saved {
                session: lock(&self.shared.session).clone(),
                streaming: self.config.streaming,
                events: conversation.events(),
                pending: conversation.pending.clone(),
            }
        };
        let text =
            serde_json::to_string(&saved).map_err(|e| ClientError::Persist(e.to_string()))?;
        std::fs::write(state_file, text)
            .map_err(|e| ClientError::Persist(format!("{}: {e}", state_file.display())))
    }

    /// A new instance from what [`ReferenceClient::suspend`] kept: the same session, the
    /// conversation so far, and the unechoed messages; it reconnects with its cursor.
    pub async fn resume(config: ClientConfig, state_file: &Path) -> Result<Self, ClientError> {
        let text = std::fs::read_to_string(state_file)
            .map_err(|e| ClientError::Persist(format!("{}: {e}", state_file.display())))?;
        let saved: Saved =
            serde_json::from_str(&text).map_err(|e| ClientError::Persist(e.to_string()))?;
        let mut conversation = Conversation::with_defects(config.defects);
        for event in &saved.events {
            if let Ok(envelope) = decode_server_frame(event) {
                conversation.ingest(envelope);
            }
        }
        // Messages the user sent that never went out before the restart go out now (the ones
        // that went out are resent after the history when their echo is not in it).
        let unsent: Vec<String> = saved
            .pending
            .iter()
            .filter(|p| !p.sent && !p.failed)
            .map(|p| p.frame.clone())
            .collect();
        conversation.pending = saved.pending;
        let config = ClientConfig {
            streaming: saved.streaming,
            ..config
        };
        let client = Self::spawn(config, saved.session, conversation, None);
        for frame in unsent {
            client
                .outgoing
                .send(frame)
                .map_err(|_| ClientError::Closed)?;
        }
        Ok(client)
    }

    fn encode(&self, frame: &ClientFrame) -> String {
        encode(frame, self.config.defects)
    }

    fn push(&self, frame: ClientFrame) -> Result<(), ClientError> {
        self.outgoing
            .send(self.encode(&frame))
            .map_err(|_| ClientError::Closed)
    }

    /// The user sends a message; it shows as "sending" until its echo arrives.
    pub fn send(&self, text: &str) -> Result<(), ClientError> {
        if text.is_empty() {
            return Err(ClientError::Usage("a message needs text".into()));
        }
        if lock(&self.shared.conversation).ended() {
            // UX-4: input is disabled once the session is over (unless that is the defect).
            if self.config.defects.has(Defect::InputAfterEnd) {
                return Ok(());
            }
            return Err(ClientError::Closed);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let encoded = self.encode(&message_frame(text, &id));
        // Never send a frame over the advertised limit (spec §11 WS-7).
        let limit = lock(&self.shared.conversation)
            .session_start()
            .and_then(|c| c.max_message_size_bytes)
            .unwrap_or(131_072);
        if encoded.len() as u64 > limit && !self.config.defects.has(Defect::OversizedFrames) {
            return Err(ClientError::Usage(format!(
                "message too large: {} bytes over the {limit}-byte limit",
                encoded.len()
            )));
        }
        lock(&self.shared.conversation)
            .sent_frames
            .push(encoded.clone());
        lock(&self.shared.conversation).pending.push(Pending {
            client_event_id: id,
            text: text.to_owned(),
            frame: encoded.clone(),
            resends: 0,
            sent: false,
            failed: false,
        });
        self.outgoing.send(encoded).map_err(|_| ClientError::Closed)
    }

    pub fn typing(&self, started: bool) -> Result<(), ClientError> {
        if self.config.defects.has(Defect::NoOpTyping) {
            return Ok(());
        }
        let started = started != self.config.defects.has(Defect::TypingStateInverted);
        let state = if started {
            TypingState::Started
        } else {
            TypingState::Stopped
        };
        self.push(ClientFrame::new(ClientEvent::UserTyping(UserTyping {
            state,
        })))
    }

    /// The user taps suggestion `index` under message `message_id`: its text is sent.
    pub fn tap_suggestion(&self, message_id: &str, index: usize) -> Result<(), ClientError> {
        let view = self.view();
        let text = view
            .messages
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.message_id.as_deref() == Some(message_id))
            .and_then(|m| m.suggestions.get(index).cloned())
            .ok_or_else(|| {
                ClientError::Usage(format!("no suggestion {index} under {message_id}"))
            })?;
        self.send(&text)
    }

    /// The user leaves: `USER_END_SESSION`; the socket closes after `SESSION_END`.
    pub fn end(&self) -> Result<(), ClientError> {
        self.push(ClientFrame::new(ClientEvent::UserEndSession))
    }

    pub fn view(&self) -> View {
        let mut view = lock(&self.shared.conversation).view();
        view.connection = Some(*lock(&self.shared.connection));
        view.session_id = Some(Some(lock(&self.shared.session).id.clone()));
        view
    }

    /// Stops everything.
    pub async fn close(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn message_frame(text: &str, client_event_id: &str) -> ClientFrame {
    let mut custom = serde_json::Map::new();
    custom.insert(CLIENT_EVENT_ID.into(), client_event_id.into());
    ClientFrame::new(ClientEvent::UserMessage(UserMessage {
        text: text.to_owned(),
    }))
    .with_metadata(Metadata { custom })
}

enum Ended {
    /// `SESSION_END` arrived: done for good.
    Session,
    /// The socket went away unexpectedly: reconnect.
    Dropped,
    /// The app is closing.
    Stopped,
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

async fn run(
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

/// Heartbeat period: the advertised one, or 30 s (spec §3.5).
fn heartbeat_period(advertised: Option<u32>, defects: Defects) -> Option<Duration> {
    if defects.has(Defect::NoHeartbeat) {
        return None;
    }
    if defects.has(Defect::OneSecondHeartbeat) {
        return Some(Duration::from_secs(1));
    }
    if defects.has(Defect::Heartbeat2400Ms) {
        return Some(Duration::from_millis(2_400));
    }
    let seconds = if defects.has(Defect::FixedHeartbeat) {
        30
    } else {
        advertised.unwrap_or(30)
    };
    (seconds > 0).then(|| Duration::from_secs(u64::from(seconds)))
}

/// When an unechoed message is next due: resent, or marked failed (spec §4.4: 5 s, then
/// 5000 × retries ms between tries; failed 5 s after the third resend).
fn next_deadline(resends: u32, defects: Defects) -> Duration {
    if defects.has(Defect::ResendTooEarly) {
        return Duration::from_millis(1_500);
    }
    if defects.has(Defect::FailLate) && resends >= MAX_RESENDS {
        return ECHO_TIMEOUT * 4;
    }
    if defects.has(Defect::ResendNoCap) {
        return ECHO_TIMEOUT * (resends + 1);
    }
    if defects.has(Defect::ResendForever) || resends >= MAX_RESENDS || resends == 0 {
        return ECHO_TIMEOUT;
    }
    ECHO_TIMEOUT * (resends + 1)
}

/// One connection's life.
async fn converse(
    mut socket: Socket,
    shared: &Shared,
    queue: &mut mpsc::UnboundedReceiver<String>,
    defects: Defects,
    after_drop: bool,
) -> Ended {
    let mut history_seen = false;
    let join_frame = || {
        encode(
            &ClientFrame::new(ClientEvent::RequestPolyAgentJoin),
            defects,
        )
    };
    let agent_known = || lock(&shared.conversation).agent_joined_or_asked();
    if defects.has(Defect::JoinBeforeHistory) && !agent_known() {
        lock(&shared.conversation).join_sent = true;
        if socket.send(Message::text(join_frame())).await.is_err() {
            return Ended::Dropped;
        }
    }
    let opened = Instant::now();
    let timed_join = if defects.has(Defect::JoinAfterFixedDelay) {
        Some(Duration::from_millis(400))
    } else if defects.has(Defect::JoinOn1500MsTimer) {
        Some(Duration::from_millis(1_500))
    } else {
        None
    };
    let mut fixed_join = timed_join.map(|delay| opened + delay);
    let mut heartbeat = None::<tokio::time::Interval>;
    let mut resend = tokio::time::interval(Duration::from_millis(250));
    let mut deadlines: Vec<(String, Instant)> = Vec::new();
    let mut ended = false;
    loop {
        let beat = async {
            match heartbeat.as_mut() {
                Some(interval) => {
                    interval.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let delayed_join = async {
            match fixed_join {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            frame = socket.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        return if ended { Ended::Session } else { Ended::Dropped };
                    }
                    Some(Ok(_)) => continue,
                };
                // Undecodable frames are ignored, never fatal (spec §11 ERR-2).
                let Ok(envelope) = decode_server_frame(&text) else { continue };
                let unknown = matches!(envelope.event, ServerEvent::Unknown(_));
                let error = matches!(&envelope.event, ServerEvent::SystemMessage(m)
                    if m.level == mock_server::protocol::SystemMessageLevel::Error);
                if (defects.has(Defect::CloseOnUnknownEvent) && unknown) || (defects.has(Defect::CloseOnErrorMessage) && error) {
                    let _ = socket.close(None).await;
                    return Ended::Stopped;
                }
                let batch = match &envelope.event {
                    ServerEvent::EventBatch(b) => Some(b.events.iter().map(|e| e.event.event_type().to_owned()).collect::<Vec<_>>()),
                    _ => None,
                };
                let ends = matches!(envelope.event, ServerEvent::SessionEnd(_))
                    || batch.as_ref().is_some_and(|types| types.iter().any(|t| t == ServerEvent::SESSION_END));
                if defects.has(Defect::DropOutOfOrderLive) && batch.is_none()
                    && let Some(sequence) = envelope.sequence
                    && sequence.0 < lock(&shared.conversation).last_sequence()
                {
                    continue;
                }
                lock(&shared.conversation).ingest(envelope);
                if let Some(types) = batch.filter(|_| !history_seen) {
                    history_seen = true;
                    let advertised = lock(&shared.conversation)
                        .session_start()
                        .and_then(|c| c.heartbeat_interval_seconds);
                    let stopped = defects.has(Defect::HeartbeatNotRestarted) && after_drop;
                    if heartbeat.is_none()
                        && !stopped
                        && let Some(period) = heartbeat_period(advertised, defects)
                    {
                        heartbeat = Some(tokio::time::interval_at(Instant::now() + period, period));
                    }
                    // Join only after the history, only if the agent never joined (WS-2/3/4).
                    let join = if defects.has(Defect::JoinFromReplayOnly) {
                        !types.iter().any(|t| t == ServerEvent::POLY_AGENT_JOINED)
                    } else if defects.has(Defect::JoinOnReconnect) {
                        lock(&shared.conversation).join_sent || !agent_known()
                    } else if defects.has(Defect::RejoinAfterDrop) && after_drop {
                        true
                    } else {
                        !agent_known()
                    };
                    if join && !defects.has(Defect::JoinBeforeHistory) && timed_join.is_none() && !ends {
                        lock(&shared.conversation).join_sent = true;
                        if socket.send(Message::text(join_frame())).await.is_err() {
                            return Ended::Dropped;
                        }
                    }
                    // Messages that went out before a drop and whose echo is not in the history
                    // are sent again now; messages never sent are still in the queue.
                    let unechoed: Vec<String> = if defects.has(Defect::ResendEchoedAfterReconnect) && after_drop {
                        lock(&shared.conversation).sent_frames.clone()
                    } else {
                        lock(&shared.conversation)
                            .pending
                            .iter()
                            .filter(|p| p.sent && !p.failed)
                            .map(|p| p.frame.clone())
                            .collect()
                    };
                    for frame in unechoed {
                        if let Some(id) = frame_client_id(&frame) {
                            deadlines.retain(|(d, _)| *d != id);
                            deadlines.push((id, Instant::now() + ECHO_TIMEOUT));
                        }
                        if socket.send(Message::text(frame)).await.is_err() {
                            return Ended::Dropped;
                        }
                    }
                }
                if ends && !ended {
                    ended = true;
                    if !defects.has(Defect::NoCloseAfterEnd) {
                        let _ = socket.close(None).await;
                        return Ended::Session;
                    }
                }
            }
            () = delayed_join => {
                fixed_join = None;
                if !agent_known() {
                    lock(&shared.conversation).join_sent = true;
                    if socket.send(Message::text(join_frame())).await.is_err() {
                        return Ended::Dropped;
                    }
                }
            }
            outgoing = queue.recv(), if history_seen && !ended => {
                let Some(frame) = outgoing else { return Ended::Stopped };
                if let Some(id) = frame_client_id(&frame) {
                    if let Some(p) = lock(&shared.conversation).pending.iter_mut().find(|p| p.client_event_id == id) {
                        p.sent = true;
                    }
                    deadlines.push((id, Instant::now() + next_deadline(0, defects)));
                }
                if socket.send(Message::text(frame)).await.is_err() {
                    return Ended::Dropped;
                }
            }
            () = beat, if !ended => {
                let frame = encode(&ClientFrame::new(ClientEvent::Heartbeat), defects);
                if socket.send(Message::text(frame)).await.is_err() {
                    return Ended::Dropped;
                }
            }
            _ = resend.tick(), if !ended => {
                let again = due_resends(shared, &mut deadlines, defects);
                for frame in again {
                    if socket.send(Message::text(frame)).await.is_err() {
                        return Ended::Dropped;
                    }
                }
            }
        }
    }
}

/// Unechoed messages whose deadline passed: resent (up to 3 times), then marked failed.
fn due_resends(
    shared: &Shared,
    deadlines: &mut Vec<(String, Instant)>,
    defects: Defects,
) -> Vec<String> {
    let now = Instant::now();
    let mut again = Vec::new();
    let mut conversation = lock(&shared.conversation);
    deadlines.retain(|(id, _)| {
        conversation
            .pending
            .iter()
            .any(|p| &p.client_event_id == id && !p.failed)
    });
    for (id, deadline) in deadlines.iter_mut() {
        if *deadline > now || defects.has(Defect::NoResend) {
            continue;
        }
        let Some(pending) = conversation
            .pending
            .iter_mut()
            .find(|p| &p.client_event_id == id)
        else {
            continue;
        };
        let capped = !defects.has(Defect::ResendForever) && !defects.has(Defect::ResendNoCap);
        if pending.resends >= MAX_RESENDS && capped {
            pending.failed = true;
            continue;
        }
        pending.resends += 1;
        if defects.has(Defect::ResendNewId) {
            let fresh = uuid::Uuid::new_v4().to_string();
            pending.frame = encode(&message_frame(&pending.text, &fresh), defects);
            pending.client_event_id = fresh.clone();
            *id = fresh;
        }
        *deadline = now + next_deadline(pending.resends, defects);
        if defects.has(Defect::FailAtLastResend) && pending.resends >= MAX_RESENDS {
            pending.failed = true;
        }
        again.push(pending.frame.clone());
    }
    again
}

/// Encodes a frame as this client sends it (some defects add fields).
fn encode(frame: &ClientFrame, defects: Defects) -> String {
    let text = encode_client_frame(frame);
    if defects.has(Defect::ServerFields) {
        return format!("{{\"id\":\"{}\",{}", uuid::Uuid::new_v4(), &text[1..]);
    }
    if defects.has(Defect::ExtraFrameField) {
        return format!("{{\"client_ts\":1,{}", &text[1..]);
    }
    text
}

fn frame_client_id(frame: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(frame).ok()?;
    value["metadata"]["custom"][CLIENT_EVENT_ID]
        .as_str()
        .map(str::to_owned)
}
