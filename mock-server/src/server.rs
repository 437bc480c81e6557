//! Serving: [`serve`] runs the router on a listener the caller bound; [`MockServer`] is the
//! handle for Rust tests (port 0, ready when `start` returns).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::http_log::{HttpCall, HttpFailures};
use crate::journal::JournalEntry;
use crate::router::router;
use crate::scenario::raw::{RawFault, RawStep};
use crate::scenario::validate::validate_steps;
use crate::state::{AppState, ControlError, SessionSummary, StateError};

/// How long open sockets get to close after a shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {addr}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

/// Serves until `shutdown` resolves, then closes every socket with 1001 and returns once they
/// are closed or [`SHUTDOWN_GRACE`] has passed.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app(listener, state.clone(), router(state), shutdown).await
}

/// Serves the protocol on `listener` and the control API on `control` (its own port),
/// until `shutdown` resolves.
pub async fn serve_with_control_listener(
    listener: TcpListener,
    control: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let control_app = crate::router::control_router(state.clone());
    let stopping = state.shutdown_token().clone();
    let control_task = tokio::spawn(accept_loop(
        control,
        state.clone(),
        control_app,
        async move { stopping.cancelled().await },
    ));
    let app = crate::router::app(state.clone(), false);
    let served = serve_app(listener, state, app, shutdown).await;
    let _ = control_task.await;
    served
}

async fn serve_app(
    listener: TcpListener,
    state: AppState,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = state.shutdown_token().clone();
    let served = accept_loop(listener, state.clone(), app, async move {
        shutdown.await;
        stopping.cancel();
    })
    .await;
    state.shut_down(SHUTDOWN_GRACE).await;
    served
}

/// Accepts connections until `shutdown`, each served by hyper with a header-read timeout (a
/// client that sends half a request, or keeps an idle connection open, is closed after it),
/// then lets open requests finish within [`SHUTDOWN_GRACE`]. WebSockets, once upgraded, are
/// the connection tasks' (`ws/`), closed by the state's shutdown.
async fn accept_loop(
    listener: TcpListener,
    state: AppState,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    if let Ok(addr) = listener.local_addr() {
        state.note_bound(addr);
    }
    let header_timeout = state.config().http_header_timeout();
    let connections = tokio_util::task::TaskTracker::new();
    let stop = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a reset before accept: wait, then go on.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Chat frames are small and often come in bursts (echo, thinking, reply): without
        // TCP_NODELAY the second write of a burst waits for the peer's delayed ACK (~40 ms).
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                tower::ServiceExt::oneshot(app.clone(), request)
            },
        );
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        let stop = stop.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    stop.cancel();
    connections.close();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connections.wait()).await;
    Ok(())
}

/// A running mock server on a loopback port of its own.
///
/// ```no_run
/// # async fn demo() -> Result<(), mock_server::StartError> {
/// let server = mock_server::MockServer::start().await?;
/// println!("{} {}", server.base_url(), server.ws_url());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    state: AppState,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl MockServer {
    /// Starts with the default configuration on `127.0.0.1:0`.
    pub async fn start() -> Result<Self, StartError> {
        Self::start_with(Config::default()).await
    }

    /// Starts with `config` on `127.0.0.1:0`. Ready to accept requests when it returns.
    pub async fn start_with(config: Config) -> Result<Self, StartError> {
        Self::start_with_scenarios(config, Vec::new()).await
    }

    /// [`MockServer::start_with`] plus scenarios of the caller's own (validated `Script`s),
    /// selectable by name like the embedded ones; `config.scenario` may name one of them.
    pub async fn start_with_scenarios(
        config: Config,
        scenarios: Vec<(String, crate::scenario::Script)>,
    ) -> Result<Self, StartError> {
        let state = AppState::with_scenarios(config, scenarios)?;
        let listener =
            TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|source| StartError::Bind {
                    addr: "127.0.0.1:0".into(),
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: "127.0.0.1:0".into(),
            source,
        })?;
        // Known before `serve` runs: the control API answers for it from the first request.
        state.note_bound(addr);
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let task = tokio::spawn(serve(listener, state.clone(), async move {
            signal.cancelled().await;
        }));
        Ok(Self {
            addr,
            state,
            stop,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/ws`
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn config(&self) -> &Config {
        self.state.config()
    }

    /// The first configured connector's token and host: what a client sends as `X-Token` and
    /// `X-Host`.
    pub fn credentials(&self) -> (String, String) {
        let connector = self.state.connectors().connectors().next();
        connector.map_or_else(Default::default, |c| {
            (c.token.clone(), c.host.clone().unwrap_or_default())
        })
    }

    // --- The control API, typed (the same operations as `/_mock/`) ----------------------

    /// Every session (active or still replayable).
    pub fn sessions(&self) -> Vec<SessionSummary> {
        self.state.sessions()
    }

    /// Every session of this server's life (the last 256 gone ones included), oldest first,
    /// with its journal.
    pub fn sessions_with_journals(&self) -> Vec<(SessionSummary, Vec<JournalEntry>)> {
        self.state.sessions_with_journals()
    }

    /// A session's journal, oldest first.
    pub fn journal(&self, session_id: &str) -> Result<Vec<JournalEntry>, ControlError> {
        let slot = self
            .state
            .session(session_id)
            .ok_or_else(|| ControlError::UnknownSession(session_id.to_owned()))?;
        Ok(slot.journal_since(0).0)
    }

    /// Plays scenario steps in a session now (e.g. a live-agent message).
    pub fn push_steps(&self, session_id: &str, steps: Vec<RawStep>) -> Result<(), ControlError> {
        let validated = validate_steps("push_steps", &steps)
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        let action = format!(
            "steps: {}",
            serde_json::to_string(&steps).unwrap_or_default()
        );
        self.state.push_steps(session_id, validated, &action)
    }

    /// Applies faults to a session now.
    pub fn inject_faults(
        &self,
        session_id: &str,
        faults: Vec<RawFault>,
    ) -> Result<(), ControlError> {
        self.push_steps(session_id, faults.into_iter().map(RawStep::Fault).collect())
    }

    /// The scenario of the next session created (a catalogue name or a file), once.
    pub async fn set_next_scenario(&self, scenario: &str) -> Result<(), ControlError> {
        self.state.set_next_scenario(scenario).await
    }

    /// The scenario of later tokens minted for this connector token.
    pub async fn set_connector_scenario(
        &self,
        token: &str,
        scenario: &str,
    ) -> Result<(), ControlError> {
        self.state.set_connector_scenario(token, scenario).await
    }

    /// Moves the mock clock forward: timers due by then (idle timeouts, retention, scenario
    /// pauses) fire now.
    pub fn advance_clock(&self, by: Duration) -> Result<(), ControlError> {
        self.state.advance_clock(by)
    }

    /// Runs the mock clock `scale` times as fast as real time.
    pub fn set_clock_scale(&self, scale: f64) -> Result<(), ControlError> {
        self.state.set_clock_scale(scale)
    }

    /// Every REST call and `/ws` handshake answered so far, refused ones too, oldest first.
    pub fn http_calls(&self) -> Vec<HttpCall> {
        self.state.http_calls()
    }

    /// The next REST calls answer 429 (with `Retry-After`) or their documented 500 (counts add
    /// up).
    pub fn arm_http_failures(&self, failures: HttpFailures) -> HttpFailures {
        self.state.arm_http_failures(failures)
    }

    /// Drops every session (sockets closed with 1001) and every control choice.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Stops accepting, closes sockets with 1001, and waits for the server to finish.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
