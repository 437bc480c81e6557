//! Shared server state: the session registry, the clock, and the glue that carries out the
//! engine's actions on live connections.
//!
//! Each session sits behind its own mutex together with the outbound channels of its
//! connections. The engine is only ever called under that lock, and frames for *other*
//! connections are queued before it is released, so every connection sees events in the order
//! the engine produced them. Frames for the calling connection are returned and written by its
//! own task directly (no extra hop on the echo path).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{AccessClaims, ConnectorRegistry, TokenIssuer};
use crate::config::{Config, SessionBinding};
use crate::engine::{ConnId, EngineConfig, Session, SessionStatus};
use crate::journal::{
    Closer, EchoFrame, JournalBudget, JournalEntry, JournalEvent, RequestNote, SessionJournal,
    WireJson, prefix,
};
use crate::protocol::{DecodeOptions, SessionId};
use crate::scenario::{Catalogue, ScenarioError, Script};

mod clock;
mod control;
mod registry;
mod rest;
mod scenarios;
mod session;
mod stop;

pub use clock::Clock;
pub use control::ControlError;
use registry::Registry;
use rest::RestNotes;
use scenarios::Scenarios;
pub use session::{CLOSE_OVERFLOW, Outbound, ReserveError, SessionSlot, SessionSummary};
use session::{ConnHandle, Locked, OUTBOUND_QUEUE, Slots, dispatch};
pub use stop::{Stop, StopReason};

/// A connection just opened ([`AppState::open_connection`]).
#[derive(Debug)]
pub struct OpenConnection {
    pub id: ConnId,
    /// Frames other tasks queue for it.
    pub queue: mpsc::Receiver<Outbound>,
    /// Tripped when the session dropped it for falling too far behind (journaled then) or the
    /// server began to shut down.
    pub stop: Arc<Stop>,
    /// The history, to write before anything else.
    pub replay: Vec<Outbound>,
}

/// The server is holding `max_sessions` sessions and none of them has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server holds its maximum of {0} sessions")]
pub struct SessionsFull(pub usize);

/// Everything handlers and tasks share.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    engine_config: Arc<EngineConfig>,
    decode: DecodeOptions,
    scenarios: Scenarios,
    rest: RestNotes,
    registry: Registry,
    connectors: ConnectorRegistry,
    issuer: TokenIssuer,
    clock: Clock,
    next_conn: AtomicU64,
    next_seed: AtomicU64,
    /// One permit per open WebSocket (`max_connections`).
    sockets: Arc<tokio::sync::Semaphore>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// The addresses this server listens on (the control API answers for these only).
    bound: Mutex<Vec<SocketAddr>>,
}

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthConfigError),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("cannot record into {0}")]
    Record(String),
}

impl AppState {
    pub fn new(config: Config) -> Result<Self, StateError> {
        Self::with_scenarios(config, Vec::new())
    }

    /// [`AppState::new`] with extra scenarios, already validated, selectable by name (also as
    /// `config.scenario`) next to the embedded ones.
    pub fn with_scenarios(
        config: Config,
        scenarios: Vec<(String, Script)>,
    ) -> Result<Self, StateError> {
        config.validate()?;
        let connectors = ConnectorRegistry::new(config.connectors.clone())?;
        let issuer = match &config.jwt_secret {
            Some(secret) => TokenIssuer::new(secret.as_bytes(), config.token_ttl_seconds),
            None => TokenIssuer::with_random_key(config.token_ttl_seconds)?,
        };
        if let Some(dir) = &config.record_dir {
            let probe = dir.join(".messaging-mock-write-test");
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&probe, b""))
                .and_then(|()| std::fs::remove_file(&probe))
                .map_err(|e| StateError::Record(format!("{}: {e}", dir.display())))?;
        }
        // Every scenario a session may run is validated now: never start half-configured.
        let mut catalogue = Catalogue::embedded()?;
        for (name, script) in scenarios {
            catalogue.insert(name, script);
        }
        let default_script = catalogue.resolve(&config.scenario)?;
        for connector in &config.connectors {
            if let Some(scenario) = &connector.scenario {
                catalogue.resolve(scenario)?;
            }
        }
        let seed = config.seed.or(default_script.seed).unwrap_or_else(|| {
            let mut bytes = [0u8; 8];
            // Without OS randomness ids are still unique per process (the counter moves on).
            let _ = getrandom::fill(&mut bytes);
            u64::from_le_bytes(bytes)
        });
        Ok(Self {
            inner: Arc::new(Inner {
                engine_config: Arc::new(config.engine_config()),
                decode: config.decode_options(),
                scenarios: Scenarios::new(catalogue, (config.scenario.clone(), default_script)),
                rest: RestNotes::new(config.http_failures),
                registry: Registry::new(
                    JournalBudget::new(config.journal_max_bytes, config.journal_total_max_bytes),
                    config.journal_total_max_bytes,
                ),
                connectors,
                issuer,
                clock: Clock::start(),
                next_conn: AtomicU64::new(1),
                next_seed: AtomicU64::new(seed),
                sockets: Arc::new(tokio::sync::Semaphore::new(config.max_connections)),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                bound: Mutex::new(Vec::new()),
                config,
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn decode_options(&self) -> &DecodeOptions {
        &self.inner.decode
    }

    pub fn connectors(&self) -> &ConnectorRegistry {
        &self.inner.connectors
    }

    pub fn issuer(&self) -> &TokenIssuer {
        &self.inner.issuer
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Records an address the server listens on.
    pub fn note_bound(&self, addr: SocketAddr) {
        lock(&self.inner.bound).push(addr);
    }

    /// Whether `authority` (`host:port`, as in `Host` or an `Origin`) names a loopback address
    /// and a port this server listens on.
    pub fn is_own_loopback_authority(&self, authority: &str) -> bool {
        crate::control::loopback_port(authority)
            .is_some_and(|port| lock(&self.inner.bound).iter().any(|a| a.port() == port))
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    pub fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    /// A scenario of the catalogue, by name.
    pub fn scenario(&self, name: &str) -> Option<Arc<Script>> {
        self.inner.scenarios.get(name)
    }

    /// Names of every scenario sessions may run.
    pub fn scenario_names(&self) -> Vec<String> {
        self.inner.scenarios.names()
    }

    pub fn session_count(&self) -> usize {
        self.inner.registry.len()
    }

    /// A session that still exists (active, or ended within retention).
    pub fn session(&self, id: &str) -> Option<Arc<SessionSlot>> {
        let slot = self.inner.registry.get(id)?;
        (slot.status() != SessionStatus::Expired).then_some(slot)
    }

    /// Creates a session bound per configuration and starts its timer; refused when the
    /// server holds `max_sessions` sessions and none has ended.
    pub fn create_session(
        &self,
        claims: &AccessClaims,
        streaming: bool,
        request: RequestNote,
    ) -> Result<SessionId, SessionsFull> {
        let now = self.inner.clock.now();
        self.inner
            .registry
            .make_room(self.inner.config.max_sessions, now)?;
        let id = SessionId::new_random();
        // Distinct, reproducible seeds per session: the configured seed advanced per session.
        let seed = self
            .inner
            .next_seed
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        let (scenario, script) = self
            .inner
            .scenarios
            .for_new_session(claims.scenario.as_deref());
        let engine = Session::new(
            Arc::clone(&self.inner.engine_config),
            script,
            streaming,
            seed,
            now,
        );
        let binding = match self.inner.config.session_binding {
            SessionBinding::Token => claims.jti.clone(),
            SessionBinding::Connector => claims.sub.clone(),
        };
        let record = self
            .inner
            .config
            .record_dir
            .as_ref()
            .map(|dir| dir.join(format!("{id}.jsonl")));
        let mut locked = Locked {
            engine,
            conns: Vec::new(),
            slots: Slots { reserved: 0 },
            timer_target: None,
            window: (Duration::ZERO, 0),
            journal: SessionJournal::new(
                record.as_deref(),
                self.inner.config.journal_max_entries,
                Arc::clone(self.inner.registry.budget()),
            ),
            end_close_grace: self.inner.config.session_end_close_grace_ms > 0,
        };
        for entry in self.inner.rest.take_pending(&claims.jti) {
            locked.journal.push(entry);
        }
        locked.note(
            now,
            JournalEvent::Http {
                endpoint: crate::http_log::Endpoint::Sessions,
                status: 200,
                error: None,
                content_type: request.content_type,
                body: request.body,
            },
        );
        let slot = Arc::new(SessionSlot {
            id: id.clone(),
            connector: claims.sub.clone(),
            scenario,
            created_at_ms: now.elapsed.as_millis() as u64,
            journal_grew: Notify::new(),
            binding,
            locked: Mutex::new(locked),
            wake: Notify::new(),
        });
        self.inner.registry.insert(Arc::clone(&slot));
        let state = self.clone();
        self.inner
            .tasks
            .spawn(async move { state.run_timer(slot).await });
        Ok(id)
    }

    /// Reserves a connection slot at handshake time, so concurrent handshakes cannot exceed the
    /// limit (spec §3.3, §12 C5).
    pub fn reserve_connection(&self, slot: &SessionSlot) -> Result<(), ReserveError> {
        let mut locked = slot.lock();
        if locked.engine.status() == SessionStatus::Expired {
            return Err(ReserveError::Gone);
        }
        locked
            .engine
            .admit_handshake()
            .map_err(ReserveError::Refused)?;
        if locked.conns.len() + locked.slots.reserved
            >= self.inner.config.max_connections_per_session
        {
            return Err(ReserveError::Full);
        }
        locked.slots.reserved += 1;
        Ok(())
    }

    /// One of the server's `max_connections` socket permits, held for a connection's life;
    /// `None` when all are taken.
    pub fn socket_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.inner.sockets).try_acquire_owned().ok()
    }

    /// Gives back a slot whose upgrade never completed.
    pub fn release_reservation(&self, slot: &SessionSlot) {
        let mut locked = slot.lock();
        locked.slots.reserved = locked.slots.reserved.saturating_sub(1);
    }

    /// Turns a reservation into a live connection: its id, its queue, and the replay frames to
    /// write before anything else (spec §12 C3).
    pub fn open_connection(
        &self,
        slot: &SessionSlot,
        cursor: u64,
        query: BTreeMap<String, String>,
    ) -> OpenConnection {
        let id = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let stop = Arc::new(Stop::default());
        let now = self.inner.clock.now();
        let mut locked = slot.lock();
        locked.slots.reserved = locked.slots.reserved.saturating_sub(1);
        locked.note(
            now,
            JournalEvent::Handshake {
                conn: Some(id),
                query,
                status: 101,
                error: None,
            },
        );
        let actions = locked.engine.connect(id, cursor, now);
        locked.conns.push(ConnHandle {
            id,
            tx,
            stop: stop.clone(),
        });
        let replay = dispatch(&mut locked, Some(id), actions, now);
        drop(locked);
        // Registered first, looked second: a shutdown either sees this connection in its walk
        // or is seen here.
        if self.inner.shutdown.is_cancelled() {
            stop.trip(StopReason::ShuttingDown);
        }
        slot.journal_grew.notify_waiters();
        OpenConnection {
            id,
            queue: rx,
            stop,
            replay,
        }
    }

    /// Journals a refused handshake of a known session.
    pub fn refused_handshake(
        &self,
        slot: &SessionSlot,
        query: BTreeMap<String, String>,
        status: u16,
        error: &str,
    ) {
        let now = self.inner.clock.now();
        slot.lock().note(
            now,
            JournalEvent::Handshake {
                conn: None,
                query,
                status,
                error: Some(error.to_owned()),
            },
        );
        slot.journal_grew.notify_waiters();
    }

    /// A connection ended; `code` is the close code sent or received (`None`: no close frame).
    /// A close the session itself ordered was journaled when it was ordered.
    pub fn close_connection(
        &self,
        slot: &SessionSlot,
        conn: ConnId,
        code: Option<u16>,
        by: Closer,
    ) {
        let now = self.inner.clock.now();
        let mut locked = slot.lock();
        locked.conns.retain(|c| c.id != conn);
        locked.note(
            now,
            JournalEvent::Close {
                conn: Some(conn),
                code,
                by,
            },
        );
        drop(locked);
        slot.journal_grew.notify_waiters();
    }

    /// Feeds one decoded frame to the engine; returns what `conn` itself must write.
    pub fn receive(
        &self,
        slot: &SessionSlot,
        conn: ConnId,
        text: Option<&str>,
        bytes: usize,
        decoded: Result<crate::protocol::ClientFrame, crate::protocol::ClientFrameRejection>,
        before_history: bool,
    ) -> Vec<Outbound> {
        let now = self.inner.clock.now();
        let mut locked = slot.lock();
        let keep = self.inner.config.journal_frame_max_bytes;
        match client_frame_entry(keep, conn, text, bytes, &decoded, before_history) {
            Ok((frame, text)) => locked.note_frame(now, frame, text),
            Err(event) => locked.note(now, event),
        }
        if let Some(limits) = &self.inner.config.rate_limits {
            let (start, count) = &mut locked.window;
            if now.elapsed.saturating_sub(*start) >= Duration::from_secs(1) {
                *start = now.elapsed;
                *count = 0;
            }
            *count += 1;
            if *count > limits.ws_frames_per_second {
                // Over the limit: silently dropped (spec §10.5).
                return Vec::new();
            }
        }
        let actions = locked.engine.receive(conn, decoded, now);
        let own = dispatch(&mut locked, Some(conn), actions, now);
        let deadline = locked.engine.next_deadline();
        let wake = match (deadline, locked.timer_target) {
            (Some(new), Some(target)) => new < target,
            // No deadline: expired, so the timer task should remove the session now.
            _ => true,
        };
        drop(locked);
        slot.journal_grew.notify_waiters();
        if wake {
            slot.wake.notify_one();
        }
        own
    }

    /// Plays timed steps and timers of one session until it expires or the server stops.
    async fn run_timer(self, slot: Arc<SessionSlot>) {
        loop {
            let deadline = {
                let mut locked = slot.lock();
                let deadline = locked.engine.next_deadline();
                locked.timer_target = deadline;
                deadline
            };
            let Some(deadline) = deadline else { break };
            tokio::select! {
                () = tokio::time::sleep_until(self.inner.clock.instant_at(deadline)) => {}
                () = slot.wake.notified() => continue,
                () = self.inner.shutdown.cancelled() => return,
            }
            let now = self.inner.clock.now();
            let mut locked = slot.lock();
            let actions = locked.engine.tick(now);
            let changed = !actions.is_empty();
            dispatch(&mut locked, None, actions, now);
            let expired = locked.engine.status() == SessionStatus::Expired;
            drop(locked);
            if changed {
                slot.journal_grew.notify_waiters();
            }
            if expired {
                break;
            }
        }
        self.inner.registry.forget(&slot);
        self.inner.registry.archive(&slot);
    }

    /// Every session still known plus the archived ones, oldest first, with journals.
    pub fn sessions_with_journals(&self) -> Vec<(SessionSummary, Vec<JournalEntry>)> {
        self.inner.registry.with_journals()
    }

    /// Cancels the shutdown token (the timer tasks and the control API watch it) and stops
    /// every open connection, which then closes with 1001.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.cancel();
        for slot in self.inner.registry.slots() {
            for conn in &slot.lock().conns {
                conn.stop.trip(StopReason::ShuttingDown);
            }
        }
    }

    /// Ends every connection with 1001 and waits up to `grace` for their tasks.
    pub async fn shut_down(&self, grace: Duration) {
        self.begin_shutdown();
        self.inner.tasks.close();
        let _ = tokio::time::timeout(grace, self.inner.tasks.wait()).await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How to journal what a client sent: a frame that decoded (so is JSON) and is within
/// `journal_frame_max_bytes` (`keep`) goes from its borrowed text straight into the journal's
/// ring; anything else becomes a whole entry, its text cut to `keep` bytes.
fn client_frame_entry<'a>(
    keep: usize,
    conn: ConnId,
    text: Option<&'a str>,
    bytes: usize,
    decoded: &Result<crate::protocol::ClientFrame, crate::protocol::ClientFrameRejection>,
    before_history: bool,
) -> Result<(EchoFrame, &'a str), JournalEvent> {
    let truncated = bytes > keep;
    if let (Some(text), Ok(_), false) = (text, decoded, truncated) {
        let frame = EchoFrame::Client {
            conn,
            before_history,
            bytes: bytes as u64,
        };
        return Ok((frame, text));
    }
    let frame = text.filter(|_| !truncated).and_then(WireJson::copied);
    Err(JournalEvent::ClientFrame {
        conn,
        before_history,
        bytes: bytes as u64,
        text: match (&frame, text) {
            (None, Some(t)) => Some(prefix(t, keep).to_owned()),
            (None, None) => Some("[binary frame]".into()),
            _ => None,
        },
        truncated,
        frame,
        error: decoded
            .as_ref()
            .err()
            .map(|r| format!("{} ({})", r.error.system_message(), r.error)),
    })
}
