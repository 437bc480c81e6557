//! `messaging-mock` with no subcommand: the serve flags, the configuration they make, the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use mock_server::Config;
use mock_server::auth::Connector;
use mock_server::outln;
use mock_server::state::AppState;
use tokio::net::TcpListener;

use super::tls::{TlsArgs, TlsSetup, tls_setup};
use super::{init_logging, shutdown_signal};

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (use port 0 for any free port).
    #[arg(long, env = "MESSAGING_MOCK_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// JSON configuration file; flags below override its fields.
    #[arg(long, env = "MESSAGING_MOCK_CONFIG")]
    config: Option<PathBuf>,
    /// Connector token of the default connector (X-Token).
    #[arg(long, env = "MESSAGING_MOCK_CONNECTOR_TOKEN")]
    connector_token: Option<String>,
    /// Registered host of the default connector (X-Host); subdomains match too.
    #[arg(long, env = "MESSAGING_MOCK_HOST")]
    host: Option<String>,
    /// Advertised heartbeat interval, seconds.
    #[arg(long)]
    heartbeat_interval: Option<u32>,
    /// Session inactivity before REASON_USER_ABANDONED, seconds (fractions allowed).
    #[arg(long)]
    session_idle_timeout: Option<f64>,
    /// A silent socket is closed with 1001 after this many seconds.
    #[arg(long)]
    connection_idle_timeout: Option<f64>,
    /// How long an ended session still replays, seconds.
    #[arg(long)]
    session_retention: Option<f64>,
    /// Access-token lifetime (`expires_in`), seconds.
    #[arg(long)]
    token_ttl: Option<u64>,
    /// HS256 key for access tokens (default: random per process).
    #[arg(long, env = "MESSAGING_MOCK_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Seed for ids and random scenario choices (default: the scenario's, else random;
    /// printed in the readiness line).
    #[arg(long, env = "MESSAGING_MOCK_SEED")]
    seed: Option<u64>,
    /// Scenario for every session: a built-in name (see `scenarios`) or a JSON file.
    /// Default: `playground`.
    #[arg(long, env = "MESSAGING_MOCK_SCENARIO")]
    scenario: Option<String>,
    /// Divide every scenario delay by this (100 = a hundred times faster).
    #[arg(long)]
    time_scale: Option<f64>,
    /// Documentation revision to serve (spec §0): `current`, or `2026-05` for SDKs written
    /// against the docs before June 2026 (`seq:<n>` cursors only, no LANGUAGE_CHANGED,
    /// no `ios-web`/`android-web` platforms).
    #[arg(long, env = "MESSAGING_MOCK_PROFILE", value_enum)]
    profile: Option<mock_server::config::Profile>,
    /// Append each session's journal to DIR/<session_id>.jsonl (flushed per entry).
    #[arg(long, env = "MESSAGING_MOCK_RECORD")]
    record: Option<PathBuf>,
    /// Journal entries kept in memory per session, newest first (default 1000; 0 keeps
    /// none). Recordings keep every entry.
    #[arg(long, value_name = "N")]
    journal_entries: Option<usize>,
    /// Serve the control API (`/_mock/`) on this address instead of the main port. A
    /// non-loopback address needs `--control-token`.
    #[arg(long, env = "MESSAGING_MOCK_CONTROL_BIND")]
    control_bind: Option<SocketAddr>,
    /// Require this bearer token on the control API (`/_mock/`); without it only loopback
    /// peers may use it.
    #[arg(long, env = "MESSAGING_MOCK_CONTROL_TOKEN", hide_env_values = true)]
    control_token: Option<String>,
    /// Directory the control API may read scenario files from (repeatable). Without any, it
    /// reads any path the server can (regular files of at most 4 MiB).
    #[arg(long = "scenario-dir", value_name = "DIR")]
    scenario_dirs: Vec<std::path::PathBuf>,
    #[command(flatten)]
    tls: TlsArgs,
    /// Log filter, e.g. `info`, `debug`, `mock_server=trace`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if self.connector_token.is_some() || self.host.is_some() {
            let first = config
                .connectors
                .first_mut()
                .context("the configuration has no connector to override")?;
            if let Some(token) = self.connector_token {
                first.token = token;
            }
            if let Some(host) = self.host {
                first.host = Some(host);
            }
        }
        if let Some(v) = self.heartbeat_interval {
            config.heartbeat_interval_seconds = v;
        }
        if let Some(v) = self.session_idle_timeout {
            config.session_idle_timeout_seconds = v;
        }
        if let Some(v) = self.connection_idle_timeout {
            config.connection_idle_timeout_seconds = v;
        }
        if let Some(v) = self.session_retention {
            config.session_retention_seconds = v;
        }
        if let Some(v) = self.token_ttl {
            config.token_ttl_seconds = v;
        }
        if let Some(v) = self.jwt_secret {
            config.jwt_secret = Some(v);
        }
        if self.seed.is_some() {
            config.seed = self.seed;
        }
        if let Some(scenario) = self.scenario {
            config.scenario = scenario;
        }
        if let Some(entries) = self.journal_entries {
            config.journal_max_entries = entries;
        }
        if let Some(scale) = self.time_scale {
            config.time_scale = scale;
        }
        if let Some(profile) = self.profile {
            config.profile = profile;
        }
        if let Some(dir) = self.record {
            std::fs::create_dir_all(&dir).with_context(|| {
                format!("cannot create the recording directory {}", dir.display())
            })?;
            config.record_dir = Some(dir);
        }
        if self.control_token.is_some() {
            config.control_token = self.control_token;
        }
        if !self.scenario_dirs.is_empty() {
            config.scenario_dirs = self.scenario_dirs;
        }
        config.validate()?;
        Ok(config)
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(&args.log)?;
    let bind = args.bind;
    let control_bind = args.control_bind;
    let tls = match tls_setup(&args.tls) {
        Ok(tls) => tls,
        Err(error) => {
            eprintln!("messaging-mock: {error:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut config = args.into_config()?;
    warn_if_default_connector_replaced(&config);
    if let Some(addr) = control_bind
        && !addr.ip().is_loopback()
        && config.control_token.is_none()
    {
        anyhow::bail!("--control-bind {addr} is not a loopback address: set --control-token too");
    }
    config.seed = Some(seed_of(&config));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(bind, control_bind, tls, config))
}

/// Warns when the configured connectors leave out the default one, whose token is then refused.
fn warn_if_default_connector_replaced(config: &Config) {
    let default_token = Connector::default_connector().token;
    if !config.connectors.iter().any(|c| c.token == default_token) {
        let ids: Vec<&str> = config.connectors.iter().map(|c| c.id.as_str()).collect();
        tracing::warn!(
            "the configured connectors ({}) replace the default one: `{default_token}` is \
             refused (list it in `connectors` to keep it)",
            ids.join(", ")
        );
    }
}

/// The seed: the configured one, else the scenario's, else a random one.
fn seed_of(config: &Config) -> u64 {
    let scenario_seed = mock_server::scenario::Catalogue::embedded()
        .ok()
        .and_then(|c| c.get(&config.scenario))
        .and_then(|s| s.seed);
    config.seed.or(scenario_seed).unwrap_or_else(rand_seed)
}

/// Listens (on the control address too, when it has its own), prints the readiness line and
/// serves until the shutdown signal.
async fn serve(
    bind: SocketAddr,
    control_bind: Option<SocketAddr>,
    tls: Option<TlsSetup>,
    config: Config,
) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let control = match control_bind {
        Some(control_addr) => Some(
            TcpListener::bind(control_addr)
                .await
                .with_context(|| format!("cannot listen on {control_addr}"))?,
        ),
        None => None,
    };
    let control_url = control_url(addr, control.as_ref(), tls.is_some())?;
    let ready = ready_line(addr, control_url, &config, tls.as_ref());
    let state = AppState::new(config)?;
    let shutdown = shutdown_signal()?;
    outln!("{ready}");
    tracing::info!(%addr, "messaging-mock listening");
    let identity = tls.as_ref().map(|t| t.identity.clone());
    mock_server::server::serve_on(listener, control, identity, state, shutdown)
        .await
        .context("serving")?;
    drop(tls);
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// `http` and `ws`, or `https` and `wss` with TLS.
fn schemes(tls: bool) -> (&'static str, &'static str) {
    if tls {
        ("https", "wss")
    } else {
        ("http", "ws")
    }
}

/// The control API's URL: on its own listener when it has one, else on the main address.
fn control_url(
    addr: SocketAddr,
    control: Option<&TcpListener>,
    tls: bool,
) -> anyhow::Result<String> {
    let (http, _) = schemes(tls);
    Ok(match control {
        Some(listener) => format!(
            "{http}://{}/_mock",
            listener
                .local_addr()
                .context("reading the control address")?
        ),
        None => format!("{http}://{addr}/_mock"),
    })
}

/// The JSON line printed once the server listens: its URLs, the first connector, the seed,
/// scenario and profile, and its TLS files when it has them.
fn ready_line(
    addr: SocketAddr,
    control_url: String,
    config: &Config,
    tls: Option<&TlsSetup>,
) -> serde_json::Value {
    let (http, ws) = schemes(tls.is_some());
    let default = Connector::default_connector();
    let connector = config.connectors.first().unwrap_or(&default);
    let mut ready = serde_json::json!({
        "ready": true,
        "base_url": format!("{http}://{addr}"),
        "ws_url": format!("{ws}://{addr}/ws"),
        "connector_token": connector.token,
        "host": connector.host,
        "seed": config.seed,
        "scenario": config.scenario,
        "profile": config.profile.as_str(),
        "console_url": format!("{control_url}/ui/"),
        "control_url": control_url,
    });
    if let Some(tls) = tls {
        ready["tls"] = true.into();
        if let Some(ca) = &tls.ca_file {
            ready["ca_file"] = ca.path.display().to_string().into();
        }
    }
    ready
}

fn rand_seed() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}
