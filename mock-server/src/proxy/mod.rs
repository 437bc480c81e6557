//! `messaging-mock proxy --upstream URL`: the protocol's endpoints served in front of the real
//! service (or another mock). REST calls and WebSocket frames go through both ways unchanged
//! but for the `Host` and `Origin` headers; every session is recorded in the mock's recording
//! format (so `--scenario FILE.jsonl` replays what the service did), and every frame is checked
//! against the protocol ([`validate`]). Violations are listed at `GET /_mock/violations`.
//! The mock's faults can be injected into a session's traffic ([`faults`]), and the console
//! at `/_mock/ui/` shows sessions, their journals and the violations.

mod console;
mod control;
mod faults;
mod rest;
pub mod validate;
mod ws;

pub use control::{ProxySession, router};

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::journal::{JournalBudget, JournalEntry, JournalEvent, SessionJournal};

/// How long the upstream gets by default to connect and to answer a REST call or a handshake.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest REST body forwarded either way.
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Violations kept (the newest).
const MAX_VIOLATIONS: usize = 10_000;
/// A frame is kept in a violation up to this many bytes.
const FRAME_KEPT: usize = 512;

/// Why the proxy cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("--upstream {0}: not an http:// or https:// URL with a host")]
    Url(String),
    #[error("--upstream-ca: {0}")]
    Ca(String),
}

/// Where the proxy forwards to.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `host:port`.
    authority: String,
    /// `https` upstreams: the roots the service's certificate must chain to.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Upstream {
    /// `url` (`http://host:port` or `https://host[:port]`); an `https` upstream is verified
    /// against `ca_pem` when given, else the platform's roots.
    pub fn new(url: &str, ca_pem: Option<&[u8]>) -> Result<Self, ProxyError> {
        let bad = || ProxyError::Url(url.to_owned());
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let host_port = rest.split('/').next().unwrap_or_default();
        if host_port.is_empty() {
            return Err(bad());
        }
        let (secure, default_port) = match scheme {
            "https" => (true, 443),
            "http" => (false, 80),
            _ => return Err(bad()),
        };
        let has_port = host_port
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
        let authority = if has_port {
            host_port.to_owned()
        } else {
            format!("{host_port}:{default_port}")
        };
        let tls = match (secure, ca_pem) {
            (false, _) => None,
            (true, Some(pem)) => Some(Arc::new(
                crate::tls::client_config(pem).map_err(|e| ProxyError::Ca(e.to_string()))?,
            )),
            (true, None) => Some(Arc::new(platform_roots()?)),
        };
        Ok(Self { authority, tls })
    }

    fn origin(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }

    fn ws_url(&self, path_and_query: &str) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}{path_and_query}", self.authority)
    }
}

/// The platform's trusted roots (the system store), for a real `https://` service.
fn platform_roots() -> Result<rustls::ClientConfig, ProxyError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(ProxyError::Ca(
            "the platform has no trusted roots; give the upstream's CA with --upstream-ca".into(),
        ));
    }
    crate::tls::client_config_trusting(roots).map_err(|e| ProxyError::Ca(e.to_string()))
}

/// Which way a checked frame or call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the client to the service.
    Client,
    /// From the service to the client.
    Server,
    /// The upstream itself failed (unreachable, TLS, timeout, a malformed answer).
    Upstream,
}

/// One broken rule, as `GET /_mock/violations` lists it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Violation {
    /// Milliseconds since the proxy started.
    pub at_ms: u64,
    pub direction: Direction,
    /// The rule: an obligation id of spec §11 for the client (`AUTH-1`, `WS-5`, …), a
    /// `server-…` rule for the service, `upstream` for a failure of the upstream.
    pub rule: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<u64>,
    /// The frame or call (its first 512 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<String>,
}

/// How the proxy runs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub upstream: Upstream,
    /// Each session's recording goes to `DIR/<session_id>.jsonl`.
    pub record_dir: Option<PathBuf>,
    /// Close a connection on its first violation (1008 for the client's, 1011 for the
    /// service's) instead of only listing it.
    pub strict: bool,
    /// How long the upstream gets to connect and to answer a REST call or a handshake
    /// ([`UPSTREAM_TIMEOUT`] by default); past it the client gets 504.
    pub timeout: Duration,
}

impl ProxyConfig {
    /// Forwarding to `upstream`: no recording, not strict, the default timeout.
    pub fn new(upstream: Upstream) -> Self {
        Self {
            upstream,
            record_dir: None,
            strict: false,
            timeout: UPSTREAM_TIMEOUT,
        }
    }
}

/// The proxy's shared state.
#[derive(Debug, Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ProxyConfig,
    started: Instant,
    violations: Mutex<VecDeque<Violation>>,
    total_violations: AtomicU64,
    sessions: Mutex<HashMap<String, SessionLog>>,
    budget: Arc<JournalBudget>,
    decode: crate::protocol::DecodeOptions,
    /// Seeds the ids of frames the proxy makes (batches of a split replay, injected events).
    seed: u64,
    /// The ports the proxy listens on, for the control API's `Host` check.
    ports: Mutex<Vec<u16>>,
}

#[derive(Debug)]
struct SessionLog {
    journal: SessionJournal,
    connections: u64,
    faults: Arc<faults::SessionFaults>,
    /// Ids of live events already journaled as the session's (every socket of it gets them):
    /// the same event through a second socket is that socket's copy. Kept as 64-bit hashes:
    /// no copy of each id, and a collision (odds about 2^-52 at the cap) only journals a live
    /// event under its socket.
    broadcast: std::collections::HashSet<u64>,
}

/// How [`SessionLog::broadcast`] hashes ids: the same for every session and run.
const ID_HASH: std::hash::BuildHasherDefault<std::hash::DefaultHasher> =
    std::hash::BuildHasherDefault::new();

/// Live event ids remembered per session for [`SessionLog::broadcast`].
const BROADCAST_IDS_KEPT: usize = 4096;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Proxy {
    pub fn new(config: ProxyConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                started: Instant::now(),
                violations: Mutex::new(VecDeque::new()),
                total_violations: AtomicU64::new(0),
                sessions: Mutex::new(HashMap::new()),
                budget: JournalBudget::new(1024 * 1024, 16 * 1024 * 1024),
                decode: crate::protocol::DecodeOptions::default(),
                seed: unix_ms(),
                ports: Mutex::new(Vec::new()),
            }),
        }
    }

    fn now_ms(&self) -> u64 {
        self.inner.started.elapsed().as_millis() as u64
    }

    /// Every violation kept, oldest first.
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.inner.violations).iter().cloned().collect()
    }

    /// Violations seen since start (more than [`Proxy::violations`] keeps, past 10 000).
    pub fn violation_count(&self) -> u64 {
        self.inner.total_violations.load(Ordering::Relaxed)
    }

    fn violation(
        &self,
        direction: Direction,
        broken: validate::Broken,
        at: (Option<&str>, Option<u64>),
        frame: Option<&str>,
    ) {
        let violation = Violation {
            at_ms: self.now_ms(),
            direction,
            rule: broken.rule.to_owned(),
            detail: broken.detail,
            session_id: at.0.map(str::to_owned),
            conn: at.1,
            frame: frame.map(|f| crate::journal::prefix(f, FRAME_KEPT).to_owned()),
        };
        tracing::warn!(rule = %violation.rule, detail = %violation.detail, "protocol violation");
        self.inner.total_violations.fetch_add(1, Ordering::Relaxed);
        let mut kept = lock(&self.inner.violations);
        if kept.len() >= MAX_VIOLATIONS {
            kept.pop_front();
        }
        kept.push_back(violation);
    }

    /// Appends to `session`'s journal (and recording).
    fn journal(&self, session: &str, event: JournalEvent) {
        let entry = JournalEntry {
            at_ms: self.now_ms(),
            unix_ms: unix_ms(),
            event,
        };
        self.with_log(session, |log| log.journal.push(entry));
    }

    /// Appends a frame that is whole JSON to `session`'s journal from its borrowed text, as
    /// the mock's echo path does (no entry, copy or second parse in between).
    fn journal_frame(&self, session: &str, frame: crate::journal::EchoFrame, text: &str) {
        let (at_ms, unix_ms) = (self.now_ms(), unix_ms());
        self.with_log(session, |log| {
            log.journal.push_frame(at_ms, unix_ms, frame, text);
        });
    }

    /// Runs `f` on `session`'s log under the sessions' lock, the log made on first sight
    /// (the id is copied only then).
    fn with_log<T>(&self, session: &str, f: impl FnOnce(&mut SessionLog) -> T) -> T {
        let mut sessions = lock(&self.inner.sessions);
        if let Some(log) = sessions.get_mut(session) {
            return f(log);
        }
        f(sessions
            .entry(session.to_owned())
            .or_insert_with(|| self.new_log(session)))
    }

    fn new_log(&self, session: &str) -> SessionLog {
        // Only ids that cannot name another path become file names.
        let safe = !session.is_empty()
            && session
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let path = self
            .inner
            .config
            .record_dir
            .as_ref()
            .filter(|_| safe)
            .map(|dir| dir.join(format!("{session}.jsonl")));
        let seed = self.inner.seed
            ^ session
                .bytes()
                .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
        SessionLog {
            journal: SessionJournal::new(path.as_deref(), 1000, Arc::clone(&self.inner.budget)),
            connections: 0,
            faults: Arc::new(faults::SessionFaults::new(seed)),
            broadcast: std::collections::HashSet::new(),
        }
    }

    /// Journals a server frame that came through connection `conn`. A live event (not a
    /// replay batch) is journaled as the session's, sent to every socket (`conn` absent), the
    /// first time its id is seen: a recording replays it as the scenario's. A proxy cannot
    /// tell an error reply to one socket from an event for all, so it counts as the latter.
    fn journal_server_frame(&self, session: &str, conn: u64, frame: ServerText<'_>) {
        let (at_ms, unix_ms) = (self.now_ms(), unix_ms());
        self.with_log(session, |log| {
            let id = frame.live_id.unwrap_or_default();
            let first = !id.is_empty() && {
                if log.broadcast.len() >= BROADCAST_IDS_KEPT {
                    log.broadcast.clear();
                }
                let hashed = std::hash::BuildHasher::hash_one(&ID_HASH, id);
                log.broadcast.insert(hashed)
            };
            let conn = (!first).then_some(conn);
            if frame.json {
                let frame_of = crate::journal::EchoFrame::Server { conn };
                log.journal.push_frame(at_ms, unix_ms, frame_of, frame.text);
            } else {
                log.journal.push(JournalEntry {
                    at_ms,
                    unix_ms,
                    event: JournalEvent::ServerFrame {
                        conn,
                        frame: crate::journal::WireJson::quoting(frame.text),
                    },
                });
            }
        });
    }

    /// The next connection number of `session` (1, 2, …), and the session's faults.
    fn next_conn(&self, session: &str) -> (u64, Arc<faults::SessionFaults>) {
        self.with_log(session, |log| {
            log.connections += 1;
            (log.connections, Arc::clone(&log.faults))
        })
    }

    /// The faults of a session the proxy has seen.
    fn faults_of(&self, session: &str) -> Option<Arc<faults::SessionFaults>> {
        lock(&self.inner.sessions)
            .get(session)
            .map(|log| Arc::clone(&log.faults))
    }

    /// Injects `faults` into `session`'s traffic (the mock's fault vocabulary); each is
    /// journaled. `None`: the proxy has not seen the session.
    pub fn inject(&self, session: &str, faults: &[crate::scenario::Fault]) -> Option<usize> {
        let target = self.faults_of(session)?;
        for fault in faults {
            self.journal(
                session,
                JournalEvent::Fault {
                    fault: format!("{fault:?}"),
                },
            );
            let history = || {
                let entries = self.journal_of(session);
                let frames = entries.iter().filter_map(|entry| match &entry.event {
                    JournalEvent::ServerFrame { frame, .. } => Some(frame.get()),
                    _ => None,
                });
                faults::events_by_sequence(frames)
            };
            target.apply(fault, history, unix_ms());
        }
        Some(faults.len())
    }

    /// The sessions seen, in the order of their ids.
    pub fn sessions(&self) -> Vec<ProxySession> {
        let sessions = lock(&self.inner.sessions);
        let mut out: Vec<ProxySession> = sessions
            .iter()
            .map(|(id, log)| ProxySession {
                session_id: id.clone(),
                connections: log.connections,
                live: log.faults.live(),
                entries: log.journal.entries().len(),
            })
            .collect();
        out.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        out
    }

    /// Notes a port the proxy listens on (the control API answers requests addressed to it).
    pub fn note_port(&self, port: u16) {
        lock(&self.inner.ports).push(port);
    }

    fn is_own_loopback_authority(&self, authority: &str) -> bool {
        crate::control::loopback_port(authority)
            .is_some_and(|port| lock(&self.inner.ports).contains(&port))
    }

    /// A session's journal, oldest first (what its recording holds).
    pub fn journal_of(&self, session: &str) -> Vec<JournalEntry> {
        lock(&self.inner.sessions)
            .get(session)
            .map(|log| log.journal.entries().collect())
            .unwrap_or_default()
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A server frame as the journal takes it.
struct ServerText<'a> {
    text: &'a str,
    /// It parsed as JSON (else it is journaled as a JSON string of its text).
    json: bool,
    /// Its id when it is a live event (not a replay batch).
    live_id: Option<&'a str>,
}

/// How long a client gets for a request's headers (and a TLS handshake).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the proxy on `listener` until `shutdown` resolves; over TLS (`https://`, `wss://`)
/// when `tls` is given.
pub async fn serve(
    listener: tokio::net::TcpListener,
    proxy: Proxy,
    tls: Option<crate::tls::TlsIdentity>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    proxy.note_port(listener.local_addr()?.port());
    let tls = tls.map(|tls| {
        let refusal = Router::new()
            .fallback(refuse_plaintext)
            .with_state(proxy.clone());
        (tls, refusal)
    });
    crate::server::accept_loop(listener, tls, HEADER_TIMEOUT, router(proxy), shutdown).await
}

/// Plain HTTP to a TLS proxy: 400, the connection closed, and a WS-1 violation (the client
/// would have spoken in the clear to the service).
async fn refuse_plaintext(State(proxy): State<Proxy>, uri: Uri, method: Method) -> Response {
    proxy.violation(
        Direction::Client,
        validate::Broken {
            rule: "WS-1",
            detail: format!("{method} {} over plain http:// to a TLS port", uri.path()),
        },
        (None, None),
        None,
    );
    (
        StatusCode::BAD_REQUEST,
        [(header::CONNECTION, "close")],
        crate::router::PLAINTEXT_REFUSED,
    )
        .into_response()
}
