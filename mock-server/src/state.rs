//! Shared server state: the session registry, the clock, and the glue that carries out the
//! engine's actions on live connections.
//!
//! Each session sits behind its own mutex together with the outbound channels of its
//! connections. The engine is only ever called under that lock, and frames for *other*
//! connections are queued before it is released, so every connection sees events in the order
//! the engine produced them. Frames for the calling connection are returned and written by its
//! own task directly (no extra hop on the echo path).

use std::collections::HashMap;
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
    Action, ConnId, EngineConfig, Now, Recipient, Refusal, Session, SessionStatus,
};
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

/// Per-connection queue depth. A client this far behind is closed rather than buffered forever.
const OUTBOUND_QUEUE: usize = 1024;

/// The server's clock: monotonic time (pausable in tests) and wall time derived from it, so
/// timestamps follow paused time too.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
    origin_unix_millis: u64,
}

impl Clock {
    pub fn start() -> Self {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            origin: Instant::now(),
            origin_unix_millis: unix.as_millis() as u64,
        }
    }

    pub fn now(&self) -> Now {
        let elapsed = self.origin.elapsed();
        Now {
            elapsed,
            unix_millis: self.origin_unix_millis + elapsed.as_millis() as u64,
        }
    }

    pub fn unix_seconds(&self) -> u64 {
        self.now().unix_millis / 1000
    }

    /// The instant at which the engine's `elapsed` reaches `deadline`.
    pub fn instant_at(&self, deadline: Duration) -> Instant {
        self.origin + deadline
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
}

/// One session: the engine and its connections, behind one lock.
#[derive(Debug)]
pub struct SessionSlot {
    pub id: SessionId,
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
    /// Every scenario sessions may run, validated at start.
    catalogue: Catalogue,
    default_script: Arc<Script>,
    connectors: ConnectorRegistry,
    issuer: TokenIssuer,
    clock: Clock,
    sessions: Mutex<HashMap<SessionId, Arc<SessionSlot>>>,
    next_conn: AtomicU64,
    next_seed: AtomicU64,
    limiter: HttpLimiter,
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
}

impl AppState {
    pub fn new(config: Config) -> Result<Self, StateError> {
        config.validate()?;
        let connectors = ConnectorRegistry::new(config.connectors.clone())?;
        let issuer = match &config.jwt_secret {
            Some(secret) => TokenIssuer::new(secret.as_bytes(), config.token_ttl_seconds),
            None => TokenIssuer::with_random_key(config.token_ttl_seconds)?,
        };
        // Every scenario a session may run is validated now: never start half-configured.
        let mut catalogue = Catalogue::embedded()?;
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
                catalogue,
                default_script,
                connectors,
                issuer,
                clock: Clock::start(),
                sessions: Mutex::new(HashMap::new()),
                next_conn: AtomicU64::new(1),
                next_seed: AtomicU64::new(seed),
                limiter: HttpLimiter::default(),
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

    fn sessions(&self) -> MutexGuard<'_, HashMap<SessionId, Arc<SessionSlot>>> {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A scenario of the catalogue, by name.
    pub fn scenario(&self, name: &str) -> Option<Arc<Script>> {
        self.inner.catalogue.get(name)
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.inner.catalogue
    }

    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// A session that still exists (active, or ended within retention).
    pub fn session(&self, id: &str) -> Option<Arc<SessionSlot>> {
        let slot = self.sessions().get(id).cloned()?;
        (slot.status() != SessionStatus::Expired).then_some(slot)
    }

    /// Creates a session bound per configuration and starts its timer.
    pub fn create_session(&self, claims: &AccessClaims, streaming: bool) -> SessionId {
        let id = SessionId::new_random();
        // Distinct, reproducible seeds per session: the configured seed advanced per session.
        let seed = self
            .inner
            .next_seed
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        let script = claims
            .scenario
            .as_deref()
            .and_then(|name| self.inner.catalogue.get(name))
            .unwrap_or_else(|| Arc::clone(&self.inner.default_script));
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
        let slot = Arc::new(SessionSlot {
            id: id.clone(),
            binding,
            locked: Mutex::new(Locked {
                engine,
                conns: Vec::new(),
                slots: Slots { reserved: 0 },
                timer_target: None,
                window: (Duration::ZERO, 0),
            }),
            wake: Notify::new(),
        });
        self.sessions().insert(id.clone(), Arc::clone(&slot));
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
    ) -> (ConnId, mpsc::Receiver<Outbound>, Vec<Outbound>) {
        let id = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let mut locked = slot.lock();
        locked.slots.reserved = locked.slots.reserved.saturating_sub(1);
        let actions = locked.engine.connect(id, cursor, self.inner.clock.now());
        locked.conns.push(ConnHandle { id, tx });
        let own = dispatch(&mut locked, Some(id), actions);
        (id, rx, own)
    }

    pub fn close_connection(&self, slot: &SessionSlot, conn: ConnId) {
        slot.lock().conns.retain(|c| c.id != conn);
    }

    /// Feeds one decoded frame to the engine; returns what `conn` itself must write.
    pub fn receive(
        &self,
        slot: &SessionSlot,
        conn: ConnId,
        decoded: Result<crate::protocol::ClientFrame, crate::protocol::ClientFrameRejection>,
    ) -> Vec<Outbound> {
        let now = self.inner.clock.now();
        let mut locked = slot.lock();
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
        let own = dispatch(&mut locked, Some(conn), actions);
        let deadline = locked.engine.next_deadline();
        let wake = match (deadline, locked.timer_target) {
            (Some(new), Some(target)) => new < target,
            // No deadline: expired, so the timer task should remove the session now.
            _ => true,
        };
        drop(locked);
        if wake {
            slot.wake.notify_one();
        }
        own
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
            let mut locked = slot.lock();
            let actions = locked.engine.tick(self.inner.clock.now());
            dispatch(&mut locked, None, actions);
            if locked.engine.status() == SessionStatus::Expired {
                break;
            }
        }
        self.sessions().remove(&slot.id);
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
fn dispatch(locked: &mut Locked, own: Option<ConnId>, actions: Vec<Action>) -> Vec<Outbound> {
    let mut mine = Vec::new();
    let mut overflowed = Vec::new();
    for action in actions {
        let (to, outbound) = match action {
            Action::Send { to, frame } => (to, Outbound::Frame(Utf8Bytes::from(frame))),
            Action::Close { to, code, reason } => (to, Outbound::Close { code, reason }),
            Action::Drop { to } => (to, Outbound::Drop),
        };
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
                Outbound::Close { code, reason } => Outbound::Close {
                    code: *code,
                    reason,
                },
                Outbound::Drop => Outbound::Drop,
            };
            if Some(conn.id) == own {
                mine.push(copy);
            } else if conn.tx.try_send(copy).is_err() {
                overflowed.push(conn.id);
            }
        }
    }
    // A connection that cannot keep up loses its queue; its task then closes it with 1011.
    locked.conns.retain(|c| !overflowed.contains(&c.id));
    mine
}
