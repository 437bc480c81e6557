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
use crate::tls::TlsIdentity;

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
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Serves until `shutdown` resolves, then closes every socket with 1001 and returns once they
/// are closed or [`SHUTDOWN_GRACE`] has passed.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(listener, None, None, state, shutdown).await
}

/// Serves the protocol on `listener` and the control API on `control` (its own port) when
/// given, both over TLS when `tls` is, until `shutdown` resolves.
pub async fn serve_on(
    listener: TcpListener,
    control: Option<TcpListener>,
    tls: Option<TlsIdentity>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(control) = control else {
        let app = router(state.clone());
        return serve_app(listener, tls, state, app, shutdown).await;
    };
    let control_app = crate::router::control_router(state.clone());
    let stopping = state.shutdown_token().clone();
    let control_task = tokio::spawn(accept_state_loop(
        control,
        tls.clone(),
        state.clone(),
        control_app,
        async move { stopping.cancelled().await },
    ));
    let app = crate::router::app(state.clone(), false);
    let served = serve_app(listener, tls, state, app, shutdown).await;
    let _ = control_task.await;
    served
}

async fn serve_app(
    listener: TcpListener,
    tls: Option<TlsIdentity>,
    state: AppState,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = state.clone();
    let served = accept_state_loop(listener, tls, state.clone(), app, async move {
        shutdown.await;
        stopping.begin_shutdown();
    })
    .await;
    state.shut_down(SHUTDOWN_GRACE).await;
    served
}

/// [`accept_loop`] for the mock: the state learns the bound address (its control guard's
/// `Host` check), and plain HTTP to a TLS port is refused by
/// [`crate::router::plaintext_refusal`], which notes it in the HTTP log.
async fn accept_state_loop(
    listener: TcpListener,
    tls: Option<TlsIdentity>,
    state: AppState,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        state.note_bound(addr);
    }
    let header_timeout = state.config().http_header_timeout();
    let tls = tls.map(|tls| (tls, crate::router::plaintext_refusal(state.clone())));
    accept_loop(listener, tls, header_timeout, app, shutdown).await
}

/// Accepts connections until `shutdown`, each served by hyper with a header-read timeout (a
/// client that sends half a request, or keeps an idle connection open, is closed after it),
/// then lets open requests finish within [`SHUTDOWN_GRACE`]. WebSockets, once upgraded, are
/// the connection tasks' (`ws/`), closed by the state's shutdown.
///
/// With `tls`, a connection whose first byte opens a TLS handshake is served over TLS (the
/// handshake bounded by the header timeout); one that speaks plain HTTP is answered by the
/// refusal router given with the identity.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<(TlsIdentity, axum::Router)>,
    header_timeout: Duration,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
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
        let served = Served {
            app: app.clone(),
            peer,
            header_timeout,
            stop: stop.clone(),
        };
        match &tls {
            Some((tls, refusal)) => {
                let acceptor = tls.acceptor().clone();
                let refusal = refusal.clone();
                connections.spawn(async move {
                    let mut first = [0u8; 1];
                    match tokio::time::timeout(header_timeout, tcp.peek(&mut first)).await {
                        Ok(Ok(1..)) if first[0] == crate::tls::HANDSHAKE_RECORD => {}
                        Ok(Ok(1..)) => return served.with_app(refusal).run(tcp).await,
                        _ => return,
                    }
                    match tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => served.run(stream).await,
                        Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
            None => {
                connections.spawn(served.run(tcp));
            }
        }
    }
    stop.cancel();
    connections.close();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connections.wait()).await;
    Ok(())
}

/// One accepted connection's HTTP/1.1 service.
struct Served {
    app: axum::Router,
    peer: SocketAddr,
    header_timeout: Duration,
    stop: CancellationToken,
}

impl Served {
    fn with_app(self, app: axum::Router) -> Self {
        Self { app, ..self }
    }

    /// Serves `io` until the client is done, or gracefully once the server stops.
    async fn run<I>(self, io: I)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        use hyper_util::rt::{TokioIo, TokioTimer};
        let Self {
            app,
            peer,
            header_timeout,
            stop,
        } = self;
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
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => {}
            () = stop.cancelled() => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
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
    tls: Option<TlsIdentity>,
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
        Self::launch(config, scenarios, None).await
    }

    /// Starts over TLS (`https://`, `wss://`) with the default configuration and a generated
    /// certificate for `localhost`, `127.0.0.1` and `::1`: a client trusts
    /// [`MockServer::ca_pem`].
    pub async fn start_tls() -> Result<Self, StartError> {
        Self::start_tls_with(Config::default(), TlsIdentity::generate()?).await
    }

    /// Starts over TLS with `config`, serving `identity` (generated or from PEM files).
    pub async fn start_tls_with(config: Config, identity: TlsIdentity) -> Result<Self, StartError> {
        Self::launch(config, Vec::new(), Some(identity)).await
    }

    /// [`MockServer::start_with_scenarios`], over TLS when `tls` is given.
    pub async fn launch(
        config: Config,
        scenarios: Vec<(String, crate::scenario::Script)>,
        tls: Option<TlsIdentity>,
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
        let task = tokio::spawn(serve_on(
            listener,
            None,
            tls.clone(),
            state.clone(),
            async move {
                signal.cancelled().await;
            },
        ));
        Ok(Self {
            addr,
            state,
            stop,
            task,
            tls,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://` over TLS)
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/ws` (`wss://` over TLS)
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.addr)
    }

    /// The PEM of the CA a client must trust, when the server made its own certificate.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().and_then(TlsIdentity::ca_pem)
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
