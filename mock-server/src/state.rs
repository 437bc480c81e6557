//! Shared server state: the session registry, the clock, and the glue that carries out the
//! engine's actions on live connections.
//!
//! Each session sits behind its own mutex together with the outbound channels of its
//! connections. The engine is only ever called under that lock, and frames for *other*
//! connections are queued before it is released, so every connection sees events in the order
//! the engine produced them. Frames for the calling connection are returned and written by its
//! own task directly (no extra hop on the echo path).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{AccessClaims, ConnectorRegistry, TokenIssuer};
use crate::config::{Config, SessionBinding};
use crate::engine::{
    Action, CLOSE_SESSION_ENDED, ConnId, EngineConfig, Note, Now, Phase, Recipient, Refusal,
    Session, SessionStatus,
};
use crate::http_log::{ArmedFailure, Endpoint, HttpCall, HttpFailures, HttpLog};
use crate::journal::{Closer, JournalEntry, JournalEvent, RequestNote, SessionJournal, raw_json};
use crate::protocol::{DecodeOptions, SessionId};
use crate::scenario::{Catalogue, ScenarioError, Script};

/// Frames a connection's task must write, queued by other tasks.
#[derive(Debug)]
pub enum Outbound {
    Frame(Utf8Bytes),
    Close {
        code: u16,
        reason: &'static str,
    },
    /// End the TCP connection without a close frame.
    Drop,
}

/// Gone sessions whose journals are kept for reading.
const ARCHIVE: usize = 256;

/// Per-connection queue depth. A client this far behind is closed rather than buffered forever.
const OUTBOUND_QUEUE: usize = 1024;

/// The server's clock: monotonic time (pausable in tests, and scalable or advanced through the
/// control API) and wall time derived from it, so timestamps follow it too.
#[derive(Debug)]
pub struct Clock {
    origin_unix_millis: u64,
    state: Mutex<ClockState>,
}

#[derive(Debug, Clone, Copy)]
struct ClockState {
    /// Real instant and mock time at the last change of rate or offset.
    anchor_real: Instant,
    anchor_mock: Duration,
    /// Mock seconds per real second.
    scale: f64,
}

impl Clock {
    pub fn start() -> Self {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            origin_unix_millis: unix.as_millis() as u64,
            state: Mutex::new(ClockState {
                anchor_real: Instant::now(),
                anchor_mock: Duration::ZERO,
                scale: 1.0,
            }),
        }
    }

    fn state(&self) -> ClockState {
        *self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn elapsed(state: &ClockState, real: Instant) -> Duration {
        state.anchor_mock
            + real
                .saturating_duration_since(state.anchor_real)
                .mul_f64(state.scale)
    }

    pub fn now(&self) -> Now {
        let elapsed = Self::elapsed(&self.state(), Instant::now());
        Now {
            elapsed,
            unix_millis: self.origin_unix_millis + elapsed.as_millis() as u64,
        }
    }

    pub fn unix_seconds(&self) -> u64 {
        self.now().unix_millis / 1000
    }

    /// The real instant at which mock time reaches `deadline`.
    pub fn instant_at(&self, deadline: Duration) -> Instant {
        let state = self.state();
        let ahead = deadline.saturating_sub(state.anchor_mock);
        state.anchor_real + ahead.div_f64(state.scale)
    }

    /// Moves mock time forward by `by` at once: due timers fire on their next wake-up.
    pub fn advance(&self, by: Duration) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let real = Instant::now();
        state.anchor_mock = Self::elapsed(&state, real) + by;
        state.anchor_real = real;
    }

    /// Runs mock time `scale` times as fast as real time from now on.
    pub fn set_scale(&self, scale: f64) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let real = Instant::now();
        state.anchor_mock = Self::elapsed(&state, real);
        state.anchor_real = real;
        state.scale = scale;
    }

    pub fn scale(&self) -> f64 {
        self.state().scale
    }
}

#[derive(Debug)]
struct ConnHandle {
    id: ConnId,
    tx: mpsc::Sender<Outbound>,
}

/// What a handshake reserved: one of the session's connection slots.
#[derive(Debug)]
struct Slots {
    reserved: usize,
}

#[derive(Debug)]
pub(crate) struct Locked {
    pub(crate) engine: Session,
    conns: Vec<ConnHandle>,
    slots: Slots,
    /// The deadline the timer task sleeps towards; an earlier one must wake it.
    timer_target: Option<Duration>,
    /// Frames counted in the current rate-limit window (spec §12 A11).
    window: (Duration, u32),
    pub(crate) journal: SessionJournal,
    /// The client gets a grace to close after `SESSION_END` (the close is journaled by the
    /// connection task then, as it learns who closed).
    end_close_grace: bool,
}

impl Locked {
    fn note(&mut self, now: Now, event: JournalEvent) {
        self.journal.push(JournalEntry {
            at_ms: now.elapsed.as_millis() as u64,
            unix_ms: now.unix_millis,
            event,
        });
    }

    pub(crate) fn open_sockets(&self) -> usize {
        self.conns.len()
    }
}

/// One session: the engine and its connections, behind one lock.
#[derive(Debug)]
pub struct SessionSlot {
    pub id: SessionId,
    /// The connector (id) whose token created the session.
    pub connector: String,
    /// The scenario the session runs.
    pub scenario: String,
    /// Mock-clock milliseconds at creation.
    pub created_at_ms: u64,
    /// Woken whenever the journal grows (journal followers wait on it).
    pub(crate) journal_grew: Notify,
    /// The token `jti` or connector id the session is bound to (spec §12 A8).
    binding: String,
    locked: Mutex<Locked>,
    wake: Notify,
}

impl SessionSlot {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Locked> {
        // A poisoned lock means a panic elsewhere; the data is still consistent enough to go on.
        self.locked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `claims` may use this session.
    pub fn accepts(&self, claims: &AccessClaims, binding: SessionBinding) -> bool {
        match binding {
            SessionBinding::Token => self.binding == claims.jti,
            SessionBinding::Connector => self.binding == claims.sub,
        }
    }

    pub fn status(&self) -> SessionStatus {
        self.lock().engine.status()
    }

    /// Journal entries from absolute index `from`, and the index after them.
    pub fn journal_since(&self, from: u64) -> (Vec<JournalEntry>, u64) {
        let locked = self.lock();
        (locked.journal.since(from), locked.journal.total())
    }

    /// Waits until the journal grows (or a timeout, so followers notice a closed client).
    pub async fn journal_changed(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.journal_grew.notified()).await;
    }

    /// A point-in-time summary for the control API.
    pub fn summary(&self) -> SessionSummary {
        let locked = self.lock();
        let phase = match locked.engine.phase() {
            Phase::AwaitingJoin => "awaiting_join".to_owned(),
            Phase::Joining => "joining".to_owned(),
            Phase::PolyAgent => "agent".to_owned(),
            Phase::Queue => "handoff_queued".to_owned(),
            Phase::LiveAgent(agent) => format!("live_agent:{}", agent.id),
            Phase::NoAgent => "no_agent".to_owned(),
            Phase::Ended(reason) => format!("ended:{}", reason.as_str()),
        };
        SessionSummary {
            session_id: self.id.to_string(),
            connector: self.connector.clone(),
            scenario: self.scenario.clone(),
            streaming: locked.engine.streaming(),
            state: phase,
            status: match locked.engine.status() {
                SessionStatus::Active => "active",
                SessionStatus::Ended => "ended",
                SessionStatus::Expired => "expired",
            }
            .to_owned(),
            open_sockets: locked.open_sockets(),
            last_sequence: locked.engine.history().last_sequence().map_or(0, |s| s.0),
            journal_entries: locked.journal.total(),
            created_at_ms: self.created_at_ms,
        }
    }
}

/// What the control API says about a session.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SessionSummary {
    pub session_id: String,
    pub connector: String,
    pub scenario: String,
    pub streaming: bool,
    /// `awaiting_join`, `joining`, `agent`, `handoff_queued`, `live_agent:<id>`, `no_agent`,
    /// `ended:<reason>`.
    pub state: String,
    /// `active`, `ended` (still replayable) or `expired`.
    pub status: String,
    pub open_sockets: usize,
    pub last_sequence: u64,
    pub journal_entries: u64,
    pub created_at_ms: u64,
}

/// Why a connection slot could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveError {
    Gone,
    Full,
    /// A scenario fault refuses the handshake.
    Refused(Refusal),
}

/// A fixed-window counter keyed by token (spec §12 A11).
#[derive(Debug, Default)]
struct HttpLimiter {
    windows: Mutex<HashMap<String, (Duration, u32)>>,
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
    archive: Mutex<Vec<(SessionSummary, Vec<JournalEntry>)>>,
    /// Journal entries of REST calls by token `jti`, until a session claims them.
    pending_http: Mutex<HashMap<String, Vec<JournalEntry>>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
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
                archive: Mutex::new(Vec::new()),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
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

    fn catalogue(&self) -> MutexGuard<'_, Catalogue> {
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

    /// Creates a session bound per configuration and starts its timer.
    pub fn create_session(
        &self,
        claims: &AccessClaims,
        streaming: bool,
        request: RequestNote,
    ) -> SessionId {
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
            journal: SessionJournal::new(record.as_deref(), self.inner.config.journal_max_entries),
            end_close_grace: self.inner.config.session_end_close_grace_ms > 0,
        };
        for entry in self.take_pending_http(&claims.jti) {
            locked.journal.push(entry);
        }
        locked.note(
            now,
            JournalEvent::Http {
                endpoint: "/api/v1/sessions".into(),
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
        self.registry().insert(id.clone(), Arc::clone(&slot));
        let state = self.clone();
        self.inner
            .tasks
            .spawn(async move { state.run_timer(slot).await });
        id
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

    /// Gives back a slot whose upgrade never completed.
    pub fn release_reservation(&self, slot: &SessionSlot) {
        let mut locked = slot.lock();
        locked.slots.reserved = locked.slots.reserved.saturating_sub(1);
    }

    /// Turns a reservation into a live connection: returns its id, its inbound queue, and the
    /// replay frames to write before anything else (spec §12 C3).
    pub fn open_connection(
        &self,
        slot: &SessionSlot,
        cursor: u64,
        query: BTreeMap<String, String>,
    ) -> (ConnId, mpsc::Receiver<Outbound>, Vec<Outbound>) {
        let id = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
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
        locked.conns.push(ConnHandle { id, tx });
        let own = dispatch(&mut locked, Some(id), actions, now);
        drop(locked);
        slot.journal_grew.notify_waiters();
        (id, rx, own)
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
        let frame = text.and_then(|t| serde_json::value::RawValue::from_string(t.to_owned()).ok());
        let entry = JournalEvent::ClientFrame {
            conn,
            before_history,
            bytes: bytes as u64,
            text: match (&frame, text) {
                (None, Some(t)) => Some(t.chars().take(4096).collect()),
                (None, None) => Some("[binary frame]".into()),
                _ => None,
            },
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

    /// Remembers a REST call made with token `jti` for the session it will create.
    pub fn note_token_call(&self, jti: &str, endpoint: &str, status: u16, request: RequestNote) {
        let now = self.inner.clock.now();
        let mut pending = self
            .inner
            .pending_http
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Tokens that never create a session must not accumulate without bound.
        if pending.len() >= 10_000 {
            pending.clear();
        }
        pending
            .entry(jti.to_owned())
            .or_default()
            .push(JournalEntry {
                at_ms: now.elapsed.as_millis() as u64,
                unix_ms: now.unix_millis,
                event: JournalEvent::Http {
                    endpoint: endpoint.into(),
                    status,
                    error: None,
                    content_type: request.content_type,
                    body: request.body,
                },
            });
    }

    fn take_pending_http(&self, jti: &str) -> Vec<JournalEntry> {
        self.inner
            .pending_http
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(jti)
            .unwrap_or_default()
    }

    /// Notes an answered HTTP request (REST call or `/ws` handshake).
    pub fn note_http_call(&self, mut call: HttpCall) {
        call.at_ms = self.inner.clock.now().elapsed.as_millis() as u64;
        lock(&self.inner.http_log).push(call);
    }

    /// Every REST call and `/ws` handshake answered, oldest first.
    pub fn http_calls(&self) -> Vec<HttpCall> {
        lock(&self.inner.http_log).calls()
    }

    /// Checks an HTTP rate limit for `key`; `Err(retry_after_seconds)` when over it.
    pub fn check_http_rate(&self, key: &str) -> Result<(), u64> {
        let Some(limits) = &self.inner.config.rate_limits else {
            return Ok(());
        };
        let now = self.inner.clock.now().elapsed;
        let window = Duration::from_secs(60);
        let mut windows = self
            .inner
            .limiter
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (start, count) = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.saturating_sub(*start) >= window {
            *start = now;
            *count = 0;
        }
        *count += 1;
        if *count > limits.http_requests_per_minute {
            let left = window.saturating_sub(now.saturating_sub(*start));
            return Err(left.as_secs().max(1));
        }
        Ok(())
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
        self.registry().remove(&slot.id);
        self.archive(&slot);
    }

    fn archive(&self, slot: &SessionSlot) {
        let entry = (slot.summary(), slot.journal_since(0).0);
        let mut archive = lock(&self.inner.archive);
        if archive.len() >= ARCHIVE {
            archive.remove(0);
        }
        archive.push(entry);
    }

    /// Every session still known plus the archived ones, oldest first, with journals.
    pub fn sessions_with_journals(&self) -> Vec<(SessionSummary, Vec<JournalEntry>)> {
        let mut all = lock(&self.inner.archive).clone();
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

/// Carries out `actions`: frames for other connections are queued now (under the lock, to keep
/// order); frames for `own` are returned for its task to write.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why a control operation was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no session `{0}`")]
    UnknownSession(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
}

impl AppState {
    /// Every live session (active or still replayable).
    pub fn sessions(&self) -> Vec<SessionSummary> {
        let slots: Vec<Arc<SessionSlot>> = self.registry().values().cloned().collect();
        let mut out: Vec<SessionSummary> = slots
            .iter()
            .filter(|s| s.status() != SessionStatus::Expired)
            .map(|s| s.summary())
            .collect();
        out.sort_by_key(|s| s.created_at_ms);
        out
    }

    fn session_or_error(&self, id: &str) -> Result<Arc<SessionSlot>, ControlError> {
        self.session(id)
            .ok_or_else(|| ControlError::UnknownSession(id.to_owned()))
    }

    /// Plays `steps` in session `id` now, as if its scenario had said them.
    pub fn push_steps(
        &self,
        id: &str,
        steps: Vec<crate::scenario::Step>,
        action: &str,
    ) -> Result<(), ControlError> {
        let slot = self.session_or_error(id)?;
        let now = self.inner.clock.now();
        let mut locked = slot.lock();
        let actions = locked
            .engine
            .push_steps(steps, now)
            .map_err(ControlError::Conflict)?;
        locked.note(
            now,
            JournalEvent::Control {
                action: action.to_owned(),
            },
        );
        dispatch(&mut locked, None, actions, now);
        drop(locked);
        slot.journal_grew.notify_waiters();
        slot.wake.notify_one();
        Ok(())
    }

    /// The scenario of the next session created, once (a catalogue name or a file).
    pub fn set_next_scenario(&self, name: &str) -> Result<(), ControlError> {
        self.load_scenario(name)?;
        *lock(&self.inner.next_scenario) = Some(name.to_owned());
        Ok(())
    }

    /// The scenario of every later token minted for connector token `token`.
    pub fn set_connector_scenario(&self, token: &str, name: &str) -> Result<(), ControlError> {
        if self.connectors().by_token(token).is_none() {
            return Err(ControlError::Invalid(format!(
                "no connector with token `{token}`"
            )));
        }
        self.load_scenario(name)?;
        lock(&self.inner.connector_scenarios).insert(token.to_owned(), name.to_owned());
        Ok(())
    }

    /// The scenario chosen for connector token `token` through the control API.
    pub fn connector_scenario(&self, token: &str) -> Option<String> {
        lock(&self.inner.connector_scenarios).get(token).cloned()
    }

    fn load_scenario(&self, name: &str) -> Result<(), ControlError> {
        self.catalogue()
            .resolve(name)
            .map(|_| ())
            .map_err(|e| ControlError::Invalid(e.to_string()))
    }

    fn wake_timers(&self) {
        for slot in self.registry().values() {
            slot.wake.notify_one();
        }
    }

    /// Moves the mock clock forward: timers due by then fire now.
    pub fn advance_clock(&self, by: Duration) {
        self.inner.clock.advance(by);
        self.wake_timers();
    }

    /// Runs the mock clock `scale` times as fast as real time.
    pub fn set_clock_scale(&self, scale: f64) -> Result<(), ControlError> {
        if !(scale.is_finite() && scale > 0.0 && scale <= 1e6) {
            return Err(ControlError::Invalid(format!(
                "`scale` must be in (0, 1e6], got {scale}"
            )));
        }
        self.inner.clock.set_scale(scale);
        self.wake_timers();
        Ok(())
    }

    /// Arms failures of the next REST calls (added to any already armed); returns what is
    /// armed now.
    pub fn arm_http_failures(&self, failures: HttpFailures) -> HttpFailures {
        let mut armed = lock(&self.inner.http_failures);
        armed.add(&failures);
        *armed
    }

    /// The failure this call of `endpoint` must answer, if one is armed (consuming it).
    pub fn take_http_failure(&self, endpoint: Endpoint) -> Option<ArmedFailure> {
        lock(&self.inner.http_failures).take(endpoint)
    }

    /// Drops every session (sockets closed with 1001) and every control-API choice.
    pub fn reset(&self) {
        let now = self.inner.clock.now();
        let slots: Vec<Arc<SessionSlot>> = self.registry().drain().map(|(_, s)| s).collect();
        lock(&self.inner.archive).clear();
        for slot in slots {
            let mut locked = slot.lock();
            let actions = locked.engine.forget();
            dispatch(&mut locked, None, actions, now);
            drop(locked);
            slot.wake.notify_one();
            slot.journal_grew.notify_waiters();
        }
        *lock(&self.inner.next_scenario) = None;
        lock(&self.inner.connector_scenarios).clear();
        lock(&self.inner.pending_http).clear();
        *lock(&self.inner.http_failures) = HttpFailures::default();
        lock(&self.inner.http_log).clear();
    }
}

fn dispatch(
    locked: &mut Locked,
    own: Option<ConnId>,
    actions: Vec<Action>,
    now: Now,
) -> Vec<Outbound> {
    let mut mine = Vec::new();
    let mut overflowed = Vec::new();
    for action in actions {
        let conn_of = |to: Recipient| match to {
            Recipient::All => None,
            Recipient::Conn(id) => Some(id),
        };
        let (to, outbound) = match action {
            Action::Send { to, frame } => {
                let entry = JournalEvent::ServerFrame {
                    conn: conn_of(to),
                    frame: raw_json(&frame),
                };
                locked.note(now, entry);
                (to, Outbound::Frame(Utf8Bytes::from(frame)))
            }
            Action::Close { to, code, reason } => (to, Outbound::Close { code, reason }),
            Action::Drop { to } => (to, Outbound::Drop),
            Action::Note(note) => {
                let event = match note {
                    Note::Fault(fault) => JournalEvent::Fault { fault },
                    Note::Timer(what) => JournalEvent::Timer { what: what.into() },
                };
                locked.note(now, event);
                continue;
            }
        };
        let mut ending = Vec::new();
        for conn in &locked.conns {
            let addressed = match to {
                Recipient::All => true,
                Recipient::Conn(id) => id == conn.id,
            };
            if !addressed {
                continue;
            }
            let copy = match &outbound {
                Outbound::Frame(frame) => Outbound::Frame(frame.clone()),
                Outbound::Close { code, reason } => {
                    ending.push((conn.id, Some(*code)));
                    Outbound::Close {
                        code: *code,
                        reason,
                    }
                }
                Outbound::Drop => {
                    ending.push((conn.id, None));
                    Outbound::Drop
                }
            };
            if Some(conn.id) == own {
                mine.push(copy);
            } else if conn.tx.try_send(copy).is_err() {
                overflowed.push(conn.id);
            }
        }
        // A connection being closed gets nothing after its close, and the journal says so
        // now: later frames went to no one (the connection task journals the close after
        // `SESSION_END` itself when the client has a grace to close first).
        for (conn, code) in ending {
            locked.conns.retain(|c| c.id != conn);
            let graced = locked.end_close_grace && code == Some(CLOSE_SESSION_ENDED);
            if !graced {
                locked.note(
                    now,
                    JournalEvent::Close {
                        conn: Some(conn),
                        code,
                        by: Closer::Server,
                    },
                );
            }
        }
    }
    // A connection that cannot keep up loses its queue; its task then closes it with 1011.
    locked.conns.retain(|c| !overflowed.contains(&c.id));
    mine
}
