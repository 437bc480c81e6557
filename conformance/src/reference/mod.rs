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

mod client;
mod connection;
mod converse;
mod frames;
mod handshake;

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::contract::ConnectionState;
pub use client::{ReferenceClient, STATE_FILE};
use conversation::Conversation;
pub use defects::{Defect, Defects, Mutant, mutants};

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
