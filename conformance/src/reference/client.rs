//! The public client handle: start, the user's commands, the view, and suspend/resume across
//! an app restart (what is kept, and where).

use std::path::Path;
use std::sync::{Arc, Mutex};

use mock_server::protocol::{
    ClientEvent, ClientFrame, TypingState, UserTyping, decode_server_frame,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::connection::{Socket, connect, run, ws_url};
use super::conversation::{Conversation, Pending};
use super::frames::{encode, message_frame};
use super::handshake::new_session;
use super::{ClientConfig, ClientError, Defect, Session, Shared, lock};
use crate::contract::{ConnectionState, View};

/// Where the client keeps its session across a restart, in the app's working directory. (A
/// real app would use the platform's secure storage for the token, spec §11 SEC-1.)
pub const STATE_FILE: &str = ".reference-client-session.json";

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
