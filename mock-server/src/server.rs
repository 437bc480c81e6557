//! Serving: [`serve`] runs the router on a listener the caller bound; [`MockServer`] is the
//! handle for Rust tests (port 0, ready when `start` returns).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::router::router;
use crate::state::{AppState, StateError};

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
    let app = router(state.clone());
    let stopping = state.shutdown_token().clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopping.cancel();
        })
        .await;
    state.shut_down(SHUTDOWN_GRACE).await;
    served
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
        let state = AppState::new(config)?;
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

    /// Stops accepting, closes sockets with 1001, and waits for the server to finish.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
