//! Shared server state: the session registry, the clock, and the glue that carries out the
//! engine's actions on live connections.
//!
//! Each session sits behind its own mutex together with the outbound channels of its
//! connections. The engine is only ever called under that lock, and frames for *other*
//! connections are queued before it is released, so every connection sees events in the order
//! the engine produced them. Frames for the calling connection are returned and written by its
//! own task directly (no extra hop on the echo path).

use std::collections::{BTreeMap, HashMap};
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
use crate::http_log::{HttpFailures, HttpLog};
use crate::journal::{
    Closer, JournalBudget, JournalEntry, JournalEvent, RequestNote, SessionJournal, prefix,
};
use crate::protocol::{DecodeOptions, SessionId};
use crate::scenario::{Catalogue, ScenarioError, Script};

mod clock;
mod control;
mod rest;
mod session;

pub use clock::Clock;
pub use control::ControlError;
use rest::HttpLimiter;
pub use session::{CLOSE_OVERFLOW, Outbound, ReserveError, SessionSlot, SessionSummary};
use session::{ConnHandle, Locked, OUTBOUND_QUEUE, Slots, dispatch};

/// Gone sessions whose journals are kept for reading (and no more than
/// `journal_total_max_bytes` of journal between them).
const ARCHIVE: usize = 256;

/// A connection just opened ([`AppState::open_connection`]).
#[derive(Debug)]
pub struct OpenConnection {
    pub id: ConnId,
    /// Frames other tasks queue for it.
    pub queue: mpsc::Receiver<Outbound>,
    /// Cancelled when the session dropped it for falling too far behind (journaled then).
    pub overflowed: CancellationToken,
    /// The history, to write before anything else.
    pub replay: Vec<Outbound>,
}

/// The server is holding `max_sessions` sessions and none of them has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server holds its maximum of {0} sessions")]
pub struct SessionsFull(pub usize);

/// Journals of gone sessions, newest last, bounded in count and bytes.
#[derive(Debug, Default)]
struct Archive {
    sessions: std::collections::VecDeque<(SessionSummary, Vec<JournalEntry>, usize)>,
    bytes: usize,
}

impl Archive {
    fn push(&mut self, summary: SessionSummary, journal: Vec<JournalEntry>, max_bytes: usize) {
        let bytes = journal.iter().map(JournalEntry::weight).sum();
        self.sessions.push_back((summary, journal, bytes));
        self.bytes += bytes;
        while self.sessions.len() > ARCHIVE || (self.bytes > max_bytes && self.sessions.len() > 1) {
            if let Some((_, _, bytes)) = self.sessions.pop_front() {
                self.bytes -= bytes;
            }
        }
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

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
    /// Every scenario sessions may run, validated before use.
    catalogue: Mutex<Catalogue>,
    /// The scenario of the next session created (control API), used once.
    next_scenario: Mutex<Option<String>>,
    /// Scenario per connector token, set through the control API.
    connector_scenarios: Mutex<HashMap<String, String>>,
    /// Armed REST failures (control API): the next calls of an endpoint answer 429 or 500.
    http_failures: Mutex<HttpFailures>,
    /// Every REST call and `/ws` handshake answered, session or not (the newest 10 000).
    http_log: Mutex<HttpLog>,
    default_script: Arc<Script>,
    connectors: ConnectorRegistry,
    issuer: TokenIssuer,
    clock: Clock,
    sessions: Mutex<HashMap<SessionId, Arc<SessionSlot>>>,
    next_conn: AtomicU64,
    next_seed: AtomicU64,
    limiter: HttpLimiter,
    /// Sessions that are gone (expired or reset), with their journals, newest last; the last
    /// [`ARCHIVE`] are kept so tests and the conformance kit can still read them.
    archive: Mutex<Archive>,
    /// Each session's in-memory journal byte share.
    journal_budget: Arc<JournalBudget>,
    /// One permit per open WebSocket (`max_connections`).
    sockets: Arc<tokio::sync::Semaphore>,
    /// Journal entries of REST calls by token `jti`, until a session claims them.
    pending_http: Mutex<HashMap<String, Vec<JournalEntry>>>,
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
                catalogue: Mutex::new(catalogue),
                next_scenario: Mutex::new(None),
                connector_scenarios: Mutex::new(HashMap::new()),
                http_failures: Mutex::new(config.http_failures),
                http_log: Mutex::new(HttpLog::default()),
                default_script,
                connectors,
                issuer,
                clock: Clock::start(),
                sessions: Mutex::new(HashMap::new()),
                next_conn: AtomicU64::new(1),
                next_seed: AtomicU64::new(seed),
                limiter: HttpLimiter::default(),
                pending_http: Mutex::new(HashMap::new()),
                archive: Mutex::new(Archive::default()),
                journal_budget: JournalBudget::new(
                    config.journal_max_bytes,
                    config.journal_total_max_bytes,
                ),
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

    fn registry(&self) -> MutexGuard<'_, HashMap<SessionId, Arc<SessionSlot>>> {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn catalogue(&self) -> MutexGuard<'_, Catalogue> {
        lock(&self.inner.catalogue)
    }

    /// A scenario of the catalogue, by name.
    pub fn scenario(&self, name: &str) -> Option<Arc<Script>> {
        self.catalogue().get(name)
    }

    /// Names of every scenario sessions may run.
    pub fn scenario_names(&self) -> Vec<String> {
        self.catalogue().names().map(str::to_owned).collect()
    }

    pub fn session_count(&self) -> usize {
        self.registry().len()
    }

    /// A session that still exists (active, or ended within retention).
    pub fn session(&self, id: &str) -> Option<Arc<SessionSlot>> {
        let slot = self.registry().get(id).cloned()?;
        (slot.status() != SessionStatus::Expired).then_some(slot)
    }

    /// Makes room for one more session: at `max_sessions`, the sessions that ended first are
    /// forgotten now (their retention cut short), a hundredth of the cap at a time so the scan
    /// is paid once per many creations; with none ended, there is no room.
    fn make_room(&self) -> Result<(), SessionsFull> {
        let max = self.inner.config.max_sessions;
        if self.registry().len() < max {
            return Ok(());
        }
        let held: Vec<Arc<SessionSlot>> = self.registry().values().cloned().collect();
        let mut ended: Vec<(Duration, Arc<SessionSlot>)> = held
            .into_iter()
            .filter_map(|slot| {
                let locked = slot.lock();
                let ended = locked.engine.ended_at();
                let expired = locked.engine.status() == SessionStatus::Expired;
                drop(locked);
                ended.filter(|_| !expired).map(|at| (at, slot))
            })
            .collect();
        if ended.is_empty() {
            return Err(SessionsFull(max));
        }
        let batch = (max / 100).clamp(1, ended.len());
        ended.select_nth_unstable_by_key(batch - 1, |(at, _)| *at);
        let now = self.inner.clock.now();
        for (_, slot) in ended.into_iter().take(batch) {
            let mut locked = slot.lock();
            let actions = locked.engine.retire();
            dispatch(&mut locked, None, actions, now);
            drop(locked);
            self.forget(&slot);
            // Its timer task sees it expired and archives it.
            slot.wake.notify_one();
        }
        Ok(())
    }

    /// Takes a session out of the registry (it may already be out).
    fn forget(&self, slot: &SessionSlot) {
        let mut registry = self.registry();
        registry.remove(&slot.id);
        self.inner.journal_budget.sessions(registry.len());
    }

    /// Creates a session bound per configuration and starts its timer; refused when the
    /// server holds `max_sessions` sessions and none has ended.
    pub fn create_session(
        &self,
        claims: &AccessClaims,
        streaming: bool,
        request: RequestNote,
    ) -> Result<SessionId, SessionsFull> {
        self.make_room()?;
        let id = SessionId::new_random();
        // Distinct, reproducible seeds per session: the configured seed advanced per session.
        let seed = self
            .inner
            .next_seed
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        let next = lock(&self.inner.next_scenario).take();
        let chosen = next
            .or_else(|| claims.scenario.clone())
            .and_then(|name| self.scenario(&name).map(|script| (name, script)));
        let (scenario, script) = chosen.unwrap_or_else(|| {
            (
                self.inner.config.scenario.clone(),
                Arc::clone(&self.inner.default_script),
            )
        });
        let engine = Session::new(
            Arc::clone(&self.inner.engine_config),
            script,
            streaming,
            seed,
            self.inner.clock.now(),
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
        let now = self.inner.clock.now();
        let mut locked = Locked {
            engine,
            conns: Vec::new(),
            slots: Slots { reserved: 0 },
            timer_target: None,
            window: (Duration::ZERO, 0),
            journal: SessionJournal::new(
                record.as_deref(),
                self.inner.config.journal_max_entries,
                Arc::clone(&self.inner.journal_budget),
            ),
            end_close_grace: self.inner.config.session_end_close_grace_ms > 0,
        };
        for entry in self.take_pending_http(&claims.jti) {
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
        {
            let mut registry = self.registry();
            registry.insert(id.clone(), Arc::clone(&slot));
            self.inner.journal_budget.sessions(registry.len());
        }
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
        let overflowed = CancellationToken::new();
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
            overflowed: overflowed.clone(),
        });
        let replay = dispatch(&mut locked, Some(id), actions, now);
        drop(locked);
        slot.journal_grew.notify_waiters();
        OpenConnection {
            id,
            queue: rx,
            overflowed,
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
        // What a client sends is journaled whole only up to `journal_frame_max_bytes`.
        let keep = self.inner.config.journal_frame_max_bytes;
        let truncated = bytes > keep;
        let frame = text
            .filter(|_| !truncated)
            .and_then(|t| serde_json::value::RawValue::from_string(t.to_owned()).ok());
        let entry = JournalEvent::ClientFrame {
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
        };
        locked.note(now, entry);
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
        self.forget(&slot);
        self.archive(&slot);
    }

    fn archive(&self, slot: &SessionSlot) {
        let (summary, journal) = (slot.summary(), slot.journal_since(0).0);
        lock(&self.inner.archive).push(summary, journal, self.inner.config.journal_total_max_bytes);
    }

    /// Every session still known plus the archived ones, oldest first, with journals.
    pub fn sessions_with_journals(&self) -> Vec<(SessionSummary, Vec<JournalEntry>)> {
        let mut all: Vec<(SessionSummary, Vec<JournalEntry>)> = lock(&self.inner.archive)
            .sessions
            .iter()
            .map(|(summary, journal, _)| (summary.clone(), journal.clone()))
            .collect();
        let live: Vec<Arc<SessionSlot>> = self.registry().values().cloned().collect();
        for slot in live {
            if all.iter().all(|(s, _)| s.session_id != slot.id.as_str()) {
                all.push((slot.summary(), slot.journal_since(0).0));
            }
        }
        all.sort_by_key(|(s, _)| s.created_at_ms);
        all
    }

    /// Ends every connection with 1001 and waits up to `grace` for their tasks.
    pub async fn shut_down(&self, grace: Duration) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        let _ = tokio::time::timeout(grace, self.inner.tasks.wait()).await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
