//! The reference client: a Rust client of the Messaging API that keeps every client obligation
//! of spec §11. The kit's own tests run it to prove the checks pass an honest client, and Rust
//! apps can use it as an SDK.
//!
//! What it does, obligation by obligation: token then session with the documented headers
//! (AUTH-1/2); a fresh token per session (AUTH-3); both query parameters (WS-1); the join only
//! after the history, only on a new session, only once (WS-2/3/4); only well-formed client
//! frames (WS-5/6); heartbeats at the advertised interval (HB-1/2); on an unexpected close,
//! the same session and token with `cursor` = highest sequence, backing off 1 s, 2 s, … up to
//! 30 s for at most `max_reconnect_attempts` tries (RC-1/2/3/4); a new session after a 404 or
//! 401 handshake (RC-5); batches flattened, events deduplicated by `id` and ordered by
//! `sequence`, chunks assembled in `chunk_index` order (MSG-1/2/3/4); unechoed messages resent
//! every 5 s, three times, then marked failed (MSG-5); no reconnect after `SESSION_END`
//! (UX-4); errors and unknown events survive (ERR-1/2).

pub mod conversation;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mock_server::protocol::{
    ClientEvent, ClientFrame, Metadata, ServerEvent, TypingState, UserMessage, UserTyping,
    decode_server_frame, encode_client_frame,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::contract::View;
use crate::rest::post_json;
use conversation::{CLIENT_EVENT_ID, Conversation, Pending};

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub connector_token: String,
    pub host: String,
    pub streaming: bool,
    /// Deliberate defects, for the kit's self-tests (all off: the honest client).
    pub defects: Defects,
}

/// One switch per obligation a broken client might break. The kit's own tests turn each on
/// alone and check that the check for that obligation catches it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Defects {
    /// Shows an event again when it arrives twice (breaks MSG-2).
    pub no_dedup: bool,
    /// Shows events in arrival order instead of sequence order (breaks MSG-3).
    pub arrival_order: bool,
    /// Ignores the events inside batches (breaks MSG-1).
    pub no_batch_flattening: bool,
    /// Sends the join on every connection (breaks WS-4).
    pub join_on_reconnect: bool,
    /// Sends the join as soon as the socket opens, before the history (breaks WS-2).
    pub join_before_history: bool,
    /// Creates a new session instead of reconnecting (breaks RC-1).
    pub new_session_on_reconnect: bool,
    /// Reconnects without a cursor (breaks RC-2).
    pub no_cursor: bool,
    /// Never sends heartbeats (breaks HB-1).
    pub no_heartbeat: bool,
    /// Heartbeats every 30 s whatever the server advertises (breaks HB-2).
    pub fixed_heartbeat: bool,
    /// Reconnects after `SESSION_END` (breaks UX-4).
    pub reconnect_after_end: bool,
    /// Closes the socket on an event type it does not know (breaks ERR-2).
    pub close_on_unknown_event: bool,
    /// Closes the socket on an error `SYSTEM_MESSAGE` (breaks ERR-1).
    pub close_on_error_message: bool,
    /// Sends messages over the advertised size limit (breaks WS-7).
    pub oversized_frames: bool,
    /// Never resends an unechoed message (breaks MSG-5).
    pub no_resend: bool,
    /// Reconnects at once, again and again, with no backoff and no limit (breaks RC-3/RC-4).
    pub no_backoff: bool,
    /// Sends the REST calls as `text/plain` (breaks AUTH-1/AUTH-2).
    pub no_content_type: bool,
    /// Never shows the agent typing (breaks UX-1).
    pub no_typing_indicator: bool,
    /// Reconnects with a cursor two behind the highest sequence seen (breaks RC-2).
    pub stale_cursor: bool,
    /// Puts an `id` on every frame it sends (breaks WS-5).
    pub server_fields: bool,
    /// Joins chunks in arrival order instead of `chunk_index` order (breaks MSG-4).
    pub chunks_in_arrival_order: bool,
    /// Drops the attachments and suggestions of a stream's final chunk (breaks MSG-4).
    pub drop_final_chunk_extras: bool,
    /// Gives up on the first failed REST call (breaks AUTH-5).
    pub no_rest_retry: bool,
}

impl Defects {
    /// Every single-defect client, with its name.
    pub fn each() -> Vec<(&'static str, Defects)> {
        let one = |set: fn(&mut Defects)| {
            let mut defects = Defects::default();
            set(&mut defects);
            defects
        };
        vec![
            ("no-dedup", one(|d| d.no_dedup = true)),
            ("arrival-order", one(|d| d.arrival_order = true)),
            ("no-batch-flattening", one(|d| d.no_batch_flattening = true)),
            ("join-on-reconnect", one(|d| d.join_on_reconnect = true)),
            ("join-before-history", one(|d| d.join_before_history = true)),
            (
                "new-session-on-reconnect",
                one(|d| d.new_session_on_reconnect = true),
            ),
            ("no-cursor", one(|d| d.no_cursor = true)),
            ("no-heartbeat", one(|d| d.no_heartbeat = true)),
            ("fixed-heartbeat", one(|d| d.fixed_heartbeat = true)),
            ("reconnect-after-end", one(|d| d.reconnect_after_end = true)),
            (
                "close-on-unknown-event",
                one(|d| d.close_on_unknown_event = true),
            ),
            (
                "close-on-error-message",
                one(|d| d.close_on_error_message = true),
            ),
            ("oversized-frames", one(|d| d.oversized_frames = true)),
            ("no-resend", one(|d| d.no_resend = true)),
            ("no-backoff", one(|d| d.no_backoff = true)),
            ("no-content-type", one(|d| d.no_content_type = true)),
            ("no-typing-indicator", one(|d| d.no_typing_indicator = true)),
            ("stale-cursor", one(|d| d.stale_cursor = true)),
            ("server-fields", one(|d| d.server_fields = true)),
            (
                "chunks-in-arrival-order",
                one(|d| d.chunks_in_arrival_order = true),
            ),
            (
                "drop-final-chunk-extras",
                one(|d| d.drop_final_chunk_extras = true),
            ),
            ("no-rest-retry", one(|d| d.no_rest_retry = true)),
        ]
    }
}

/// How long to wait for an echo before resending a message (spec §4.4).
const ECHO_TIMEOUT: Duration = Duration::from_secs(5);
/// Resends before a message is marked failed (spec §4.4).
const MAX_RESENDS: u32 = 3;
/// Reconnect backoff: first retry and cap (spec §3.6).
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(30);

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
}

#[derive(Debug)]
struct Shared {
    conversation: Mutex<Conversation>,
    connection: Mutex<&'static str>,
    session_id: Mutex<Option<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running client.
#[derive(Debug)]
pub struct ReferenceClient {
    shared: Arc<Shared>,
    defects: Defects,
    outgoing: mpsc::UnboundedSender<String>,
    task: tokio::task::JoinHandle<()>,
}

/// Credentials of one session.
#[derive(Debug, Clone)]
struct Session {
    token: String,
    id: String,
}

/// `post_json`, retried on 5xx with backoff (1 s, 2 s, 4 s) and on 429 after `Retry-After`
/// (spec §11 AUTH-5; the response carries no headers here, so 429 waits the 1 s minimum).
async fn post_retrying(
    config: &ClientConfig,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, serde_json::Value), ClientError> {
    let mut delay = BACKOFF_START;
    for attempt in 0..=3 {
        let (status, answer) = post_json(&config.base_url, path, headers, body)
            .await
            .map_err(ClientError::Http)?;
        let retry = status == 429 || status >= 500;
        if !retry || attempt == 3 || config.defects.no_rest_retry {
            return Ok((status, answer));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(BACKOFF_CAP);
    }
    unreachable!("the loop returns on its last attempt")
}

async fn new_session(config: &ClientConfig) -> Result<Session, ClientError> {
    let json = if config.defects.no_content_type {
        "text/plain"
    } else {
        "application/json"
    };
    let (status, body) = post_retrying(
        config,
        "/api/v1/access-token",
        &[
            ("x-token", &config.connector_token),
            ("x-host", &config.host),
            ("content-type", json),
        ],
        "{}",
    )
    .await?;
    let token = match (status, body["access_token"].as_str()) {
        (200, Some(token)) => token.to_owned(),
        _ => {
            return Err(ClientError::Refused {
                endpoint: "/api/v1/access-token",
                status,
                body: body.to_string(),
            });
        }
    };
    let bearer = format!("Bearer {token}");
    let request =
        serde_json::json!({ "streaming_enabled": config.streaming, "platform": "custom" });
    let (status, body) = post_retrying(
        config,
        "/api/v1/sessions",
        &[("authorization", &bearer), ("content-type", json)],
        &request.to_string(),
    )
    .await?;
    match (status, body["session_id"].as_str()) {
        (200, Some(id)) => Ok(Session {
            token,
            id: id.to_owned(),
        }),
        _ => Err(ClientError::Refused {
            endpoint: "/api/v1/sessions",
            status,
            body: body.to_string(),
        }),
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(config: &ClientConfig, session: &Session, cursor: u64) -> String {
    let base = config
        .base_url
        .replacen("https://", "wss://", 1)
        .replacen("http://", "ws://", 1);
    let mut url = format!(
        "{}/ws?session_id={}&access_token={}",
        base.trim_end_matches('/'),
        session.id,
        session.token
    );
    if cursor > 0 {
        url.push_str(&format!("&cursor={cursor}"));
    }
    url
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
        let session = new_session(&config).await?;
        let (socket, _) = tokio_tungstenite::connect_async(ws_url(&config, &session, 0))
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let shared = Arc::new(Shared {
            conversation: Mutex::new(Conversation::with_defects(config.defects)),
            connection: Mutex::new("open"),
            session_id: Mutex::new(Some(session.id.clone())),
        });
        let (outgoing, queue) = mpsc::unbounded_channel();
        let defects = config.defects;
        let task = tokio::spawn(run(config, session, socket, Arc::clone(&shared), queue));
        Ok(Self {
            shared,
            defects,
            outgoing,
            task,
        })
    }

    fn push(&self, frame: ClientFrame) -> Result<(), ClientError> {
        self.outgoing
            .send(encode(&frame, self.defects))
            .map_err(|_| ClientError::Closed)
    }

    /// The user sends a message; it shows as "sending" until its echo arrives.
    pub fn send(&self, text: &str) -> Result<(), ClientError> {
        if text.is_empty() {
            return Err(ClientError::Usage("a message needs text".into()));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let mut custom = serde_json::Map::new();
        custom.insert(CLIENT_EVENT_ID.into(), id.clone().into());
        let frame = ClientFrame::new(ClientEvent::UserMessage(UserMessage {
            text: text.to_owned(),
        }))
        .with_metadata(Metadata { custom });
        let encoded = encode(&frame, self.defects);
        // Never send a frame over the advertised limit (spec §11 WS-7).
        let limit = lock(&self.shared.conversation)
            .session_start()
            .and_then(|c| c.max_message_size_bytes)
            .unwrap_or(131_072);
        if encoded.len() as u64 > limit && !self.defects.oversized_frames {
            return Err(ClientError::Usage(format!(
                "message too large: {} bytes over the {limit}-byte limit",
                encoded.len()
            )));
        }
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
        view.connection = Some((*lock(&self.shared.connection)).to_owned());
        view.session_id = Some(lock(&self.shared.session_id).clone());
        view
    }

    /// Stops everything.
    pub async fn close(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

enum Ended {
    /// `SESSION_END` arrived: done for good.
    Session,
    /// The socket went away unexpectedly: reconnect.
    Dropped,
    /// The app is closing.
    Stopped,
}

async fn run(
    config: ClientConfig,
    mut session: Session,
    socket: Socket,
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<String>,
) {
    let mut socket = Some(socket);
    let mut join_sent = false;
    let mut attempt: u32 = 0;
    loop {
        let current = match socket.take() {
            Some(open) => open,
            None => {
                let last = lock(&shared.conversation).last_sequence();
                let cursor = if config.defects.no_cursor {
                    0
                } else if config.defects.stale_cursor {
                    last.saturating_sub(2)
                } else {
                    last
                };
                match tokio_tungstenite::connect_async(ws_url(&config, &session, cursor)).await {
                    Ok((open, _)) => open,
                    Err(error) => {
                        if matches!(refused_status(&error), Some(404 | 401)) {
                            // The session is gone or the token is dead: start over (RC-5).
                            if let Ok(fresh) = new_session(&config).await {
                                session = fresh;
                                *lock(&shared.session_id) = Some(session.id.clone());
                                *lock(&shared.conversation) =
                                    Conversation::with_defects(config.defects);
                                join_sent = false;
                                continue;
                            }
                        }
                        let max = lock(&shared.conversation)
                            .session_start()
                            .and_then(|c| c.max_reconnect_attempts)
                            .unwrap_or(5);
                        attempt += 1;
                        if config.defects.no_backoff {
                            // Hammers the server: no delay, no limit (beyond a safety cap).
                            if attempt > 200 {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                        if attempt >= max {
                            *lock(&shared.connection) = "closed";
                            return;
                        }
                        let delay = BACKOFF_START
                            .saturating_mul(1 << (attempt - 1).min(5))
                            .min(BACKOFF_CAP);
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                }
            }
        };
        *lock(&shared.connection) = "open";
        match converse(current, &shared, &mut queue, &mut join_sent, config.defects).await {
            Ended::Session if config.defects.reconnect_after_end => {
                *lock(&shared.connection) = "reconnecting";
                attempt = 1;
                tokio::time::sleep(BACKOFF_START).await;
            }
            Ended::Session | Ended::Stopped => {
                *lock(&shared.connection) = "closed";
                return;
            }
            Ended::Dropped => {
                *lock(&shared.connection) = "reconnecting";
                attempt = 0;
                if !config.defects.no_backoff {
                    tokio::time::sleep(BACKOFF_START).await;
                }
                if config.defects.new_session_on_reconnect
                    && let Ok(fresh) = new_session(&config).await
                {
                    session = fresh;
                    *lock(&shared.session_id) = Some(session.id.clone());
                    join_sent = false;
                }
            }
        }
    }
}

/// One connection's life.
async fn converse(
    mut socket: Socket,
    shared: &Shared,
    queue: &mut mpsc::UnboundedReceiver<String>,
    join_sent: &mut bool,
    defects: Defects,
) -> Ended {
    let mut history_seen = false;
    let join_frame = || {
        encode(
            &ClientFrame::new(ClientEvent::RequestPolyAgentJoin),
            defects,
        )
    };
    if defects.join_before_history && !*join_sent {
        *join_sent = true;
        if socket.send(Message::text(join_frame())).await.is_err() {
            return Ended::Dropped;
        }
    }
    let mut heartbeat = None::<tokio::time::Interval>;
    let mut resend = tokio::time::interval(Duration::from_secs(1));
    let mut deadlines: Vec<(String, Instant)> = Vec::new();
    loop {
        let beat = async {
            match heartbeat.as_mut() {
                Some(interval) => {
                    interval.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            frame = socket.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ended::Dropped,
                    Some(Ok(_)) => continue,
                };
                // Undecodable frames are ignored, never fatal (spec §11 ERR-2).
                let Ok(envelope) = decode_server_frame(&text) else { continue };
                let unknown = matches!(envelope.event, ServerEvent::Unknown(_));
                let error = matches!(&envelope.event, ServerEvent::SystemMessage(m)
                    if m.level == mock_server::protocol::SystemMessageLevel::Error);
                if (defects.close_on_unknown_event && unknown) || (defects.close_on_error_message && error) {
                    let _ = socket.close(None).await;
                    return Ended::Stopped;
                }
                let is_batch = matches!(envelope.event, ServerEvent::EventBatch(_));
                let ended = matches!(envelope.event, ServerEvent::SessionEnd(_));
                // A replay that ends with SESSION_END: the session is over (spec §12 C8).
                let ended_in_batch = matches!(&envelope.event, ServerEvent::EventBatch(b)
                    if b.events.iter().any(|e| matches!(e.event, ServerEvent::SessionEnd(_))));
                let (joined, interval) = {
                    let mut conversation = lock(&shared.conversation);
                    conversation.ingest(envelope);
                    let joined = conversation.has(|e| matches!(e, ServerEvent::PolyAgentJoined(_)));
                    let interval = conversation.session_start().and_then(|c| c.heartbeat_interval_seconds).unwrap_or(30);
                    (joined, interval)
                };
                if ended_in_batch {
                    let _ = socket.close(None).await;
                    return Ended::Session;
                }
                if is_batch && !history_seen {
                    history_seen = true;
                    let interval = if defects.fixed_heartbeat { 30 } else { interval };
                    if interval > 0 && heartbeat.is_none() && !defects.no_heartbeat {
                        let period = Duration::from_secs(u64::from(interval));
                        heartbeat = Some(tokio::time::interval_at(Instant::now() + period, period));
                    }
                    // Join only after the history, only if the agent never joined (WS-2/3/4).
                    let rejoin = defects.join_on_reconnect && *join_sent;
                    if (!joined && !*join_sent) || rejoin {
                        *join_sent = true;
                        if socket.send(Message::text(join_frame())).await.is_err() {
                            return Ended::Dropped;
                        }
                    }
                    // Messages that went out before a drop and whose echo is not in the history
                    // are sent again now; messages never sent are still in the queue.
                    let unechoed: Vec<String> = lock(&shared.conversation)
                        .pending
                        .iter()
                        .filter(|p| p.sent && !p.failed)
                        .map(|p| p.frame.clone())
                        .collect();
                    for frame in unechoed {
                        if socket.send(Message::text(frame)).await.is_err() {
                            return Ended::Dropped;
                        }
                    }
                }
                if ended {
                    let _ = socket.close(None).await;
                    return Ended::Session;
                }
            }
            outgoing = queue.recv(), if history_seen => {
                let Some(frame) = outgoing else { return Ended::Stopped };
                if let Some(id) = frame_client_id(&frame) {
                    if let Some(p) = lock(&shared.conversation).pending.iter_mut().find(|p| p.client_event_id == id) {
                        p.sent = true;
                    }
                    deadlines.push((id, Instant::now() + ECHO_TIMEOUT));
                }
                if socket.send(Message::text(frame)).await.is_err() {
                    return Ended::Dropped;
                }
            }
            () = beat => {
                let frame = encode(&ClientFrame::new(ClientEvent::Heartbeat), defects);
                if socket.send(Message::text(frame)).await.is_err() {
                    return Ended::Dropped;
                }
            }
            _ = resend.tick() => {
                let now = Instant::now();
                let mut again = Vec::new();
                {
                    let mut conversation = lock(&shared.conversation);
                    deadlines.retain(|(id, _)| conversation.pending.iter().any(|p| &p.client_event_id == id && !p.failed));
                    for (id, deadline) in &mut deadlines {
                        if *deadline > now {
                            continue;
                        }
                        let Some(pending) = conversation.pending.iter_mut().find(|p| &p.client_event_id == id) else { continue };
                        if defects.no_resend {
                            continue;
                        }
                        if pending.resends >= MAX_RESENDS {
                            pending.failed = true;
                            continue;
                        }
                        pending.resends += 1;
                        *deadline = now + ECHO_TIMEOUT * (pending.resends + 1);
                        again.push(pending.frame.clone());
                    }
                }
                for frame in again {
                    if socket.send(Message::text(frame)).await.is_err() {
                        return Ended::Dropped;
                    }
                }
            }
        }
    }
}

/// Encodes a frame as this client sends it (with the `server_fields` defect, an `id` too).
fn encode(frame: &ClientFrame, defects: Defects) -> String {
    let text = encode_client_frame(frame);
    if defects.server_fields {
        return format!("{{\"id\":\"{}\",{}", uuid::Uuid::new_v4(), &text[1..]);
    }
    text
}

fn frame_client_id(frame: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(frame).ok()?;
    value["metadata"]["custom"][CLIENT_EVENT_ID]
        .as_str()
        .map(str::to_owned)
}
