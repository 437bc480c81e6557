//! `messaging-mock`: run the mock server, or regenerate the JSON Schemas.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
mod ctl;

use mock_server::Config;
use mock_server::auth::Connector;
use mock_server::outln;
use mock_server::state::AppState;
use tokio::net::TcpListener;

/// An offline mock of PolyAI's Messaging API: the HTTP handshake (`POST /api/v1/access-token`,
/// `POST /api/v1/sessions`) and the WebSocket (`/ws`) with a scripted agent.
///
/// With no arguments it serves on 127.0.0.1:8080 with one connector (X-Token
/// `mock-connector-token`, X-Host `localhost`) and prints one JSON readiness line on stdout.
/// Type `#handoff`, `#client_handoff`, `#end`, `#lang fr-FR`, ... in a user message to trigger
/// the documented flows (see docs/mock.md).
#[derive(Debug, Parser)]
#[command(name = "messaging-mock", version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("GIT_REV"), ")"), about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the built-in scenarios (`--scenario NAME`, or connector token `scenario:NAME`).
    Scenarios,
    /// Validate scenario files; prints each error with its JSON pointer.
    CheckScenario {
        /// Scenario files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Steer a running mock through its control API (`/_mock/`).
    Ctl(ctl::CtlArgs),
    /// Serve the protocol's endpoints in front of the real service (or another mock): REST
    /// calls and WebSocket frames forwarded both ways, every session recorded (replay it with
    /// `--scenario FILE.jsonl`), every frame checked against the protocol; violations at
    /// `GET /_mock/violations` and summarised at exit. The mock's faults (drop, duplicate,
    /// reorder, delay, split a replay, close with a code, refuse handshakes, …) go into a
    /// session's live traffic with `POST /_mock/sessions/{id}/faults` (or `ctl faults`), and
    /// the console at `/_mock/ui/` shows sessions, journals and violations (docs/proxy.md).
    Proxy(ProxyArgs),
    /// Play the client side of a recorded session (a `proxy` recording of the real service, or
    /// `--record` output) against a fresh mock and report where the mock answers differently:
    /// event types and order, fields, values (ids, timestamps and sequences ignored). Exit 1
    /// when it found a difference (docs/proxy.md).
    Drift {
        /// A `<session_id>.jsonl` recording.
        recording: PathBuf,
        /// The mock's scenario: a built-in name or a file (default `playground`).
        #[arg(long, default_value = "playground")]
        scenario: String,
        /// A JSON configuration file for the mock.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Divide the scenario's delays by this (the comparison ignores timing).
        #[arg(long, default_value_t = 20.0)]
        time_scale: f64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the scenario a recording (`--record` output) describes; serve it directly with
    /// `--scenario FILE.jsonl`.
    Replay {
        /// A `<session_id>.jsonl` recording.
        file: PathBuf,
    },
    /// Regenerate the JSON Schemas in `schemas/` from the protocol types.
    GenerateSchemas {
        /// Directory to write into.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas"))]
        out: PathBuf,
        /// Do not write; exit 1 if any file differs.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Debug, Args)]
struct ProxyArgs {
    /// The service to forward to: `https://host[:port]` (verified against the platform's
    /// roots, or `--upstream-ca`) or `http://host:port`.
    #[arg(long, env = "MESSAGING_MOCK_UPSTREAM")]
    upstream: String,
    /// The CA certificate (PEM) the upstream's certificate chains to, instead of the
    /// platform's roots (another mock's `ca_file`, a company CA).
    #[arg(long, env = "MESSAGING_MOCK_UPSTREAM_CA", value_name = "FILE")]
    upstream_ca: Option<PathBuf>,
    /// Address to listen on (port 0 for any free port).
    #[arg(long, env = "MESSAGING_MOCK_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Append each session's journal to DIR/<session_id>.jsonl (the `--record` format).
    #[arg(long, env = "MESSAGING_MOCK_RECORD", value_name = "DIR")]
    record: Option<PathBuf>,
    /// Close a connection on its first violation: 1008 for the client's, 1011 for the
    /// service's.
    #[arg(long)]
    strict: bool,
    /// Seconds the upstream gets to connect and answer a call or a handshake; past them the
    /// client gets 504.
    #[arg(long, env = "MESSAGING_MOCK_UPSTREAM_TIMEOUT", default_value_t = 10.0, value_parser = positive_seconds)]
    upstream_timeout: f64,
    #[command(flatten)]
    tls: TlsArgs,
    /// Log filter, e.g. `info`, `debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
}

/// How a server (the mock or the proxy) serves TLS to its clients.
#[derive(Debug, Clone, Args)]
struct TlsArgs {
    /// Serve `https://` and `wss://` (every port, the console and control API too) with a
    /// certificate made at start-up for localhost, 127.0.0.1 and ::1, signed by a throwaway
    /// CA. The CA's PEM is written to `--tls-ca-out` and named in the readiness line
    /// (`ca_file`): a client trusts that file and nothing else changes (docs/tls.md).
    #[arg(long, env = "MESSAGING_MOCK_TLS")]
    tls: bool,
    /// Serve `https://` and `wss://` with this PEM certificate chain (leaf first) instead of a
    /// generated one; needs `--tls-key`.
    #[arg(
        long,
        env = "MESSAGING_MOCK_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls"
    )]
    tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of `--tls-cert`.
    #[arg(
        long,
        env = "MESSAGING_MOCK_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// Where `--tls` writes its CA certificate (PEM). Default: `messaging-mock-<pid>-ca.pem`
    /// in the temporary directory, removed at exit.
    #[arg(
        long,
        env = "MESSAGING_MOCK_TLS_CA_OUT",
        value_name = "FILE",
        requires = "tls"
    )]
    tls_ca_out: Option<PathBuf>,
    /// Another name the generated certificate is valid for, besides localhost, 127.0.0.1 and
    /// ::1 (repeatable): a container's service name, a LAN address.
    #[arg(long = "tls-name", value_name = "NAME", requires = "tls")]
    tls_names: Vec<String>,
}

#[derive(Debug, Clone, Args)]
struct ServeArgs {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::GenerateSchemas { out, check }) => generate_schemas(&out, check),
        Some(Command::Scenarios) => list_scenarios(),
        Some(Command::Ctl(args)) => ctl::run(args),
        Some(Command::Proxy(args)) => proxy(args),
        Some(Command::Drift {
            recording,
            scenario,
            config,
            time_scale,
            json,
        }) => drift(&recording, scenario, config.as_deref(), time_scale, json),
        Some(Command::Replay { file }) => replay(&file),
        Some(Command::CheckScenario { files }) => check_scenarios(&files),
        None => serve(cli.serve),
    };
    result.unwrap_or_else(|error| {
        eprintln!("messaging-mock: {error:#}");
        ExitCode::FAILURE
    })
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
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
    let default_token = Connector::default_connector().token;
    if !config.connectors.iter().any(|c| c.token == default_token) {
        let ids: Vec<&str> = config.connectors.iter().map(|c| c.id.as_str()).collect();
        tracing::warn!(
            "the configured connectors ({}) replace the default one: `{default_token}` is \
             refused (list it in `connectors` to keep it)",
            ids.join(", ")
        );
    }
    if let Some(addr) = control_bind
        && !addr.ip().is_loopback()
        && config.control_token.is_none()
    {
        anyhow::bail!("--control-bind {addr} is not a loopback address: set --control-token too");
    }
    let scenario_seed = mock_server::scenario::Catalogue::embedded()
        .ok()
        .and_then(|c| c.get(&config.scenario))
        .and_then(|s| s.seed);
    let seed = config.seed.or(scenario_seed).unwrap_or_else(rand_seed);
    config.seed = Some(seed);
    let scenario = config.scenario.clone();
    let profile = config.profile;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
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
        let (http, ws) = if tls.is_some() {
            ("https", "wss")
        } else {
            ("http", "ws")
        };
        let control_url = match &control {
            Some(listener) => format!(
                "{http}://{}/_mock",
                listener
                    .local_addr()
                    .context("reading the control address")?
            ),
            None => format!("{http}://{addr}/_mock"),
        };
        let default = Connector::default_connector();
        let connector = config.connectors.first().cloned().unwrap_or(default);
        let state = AppState::new(config)?;
        let shutdown = shutdown_signal()?;
        let mut ready = serde_json::json!({
            "ready": true,
            "base_url": format!("{http}://{addr}"),
            "ws_url": format!("{ws}://{addr}/ws"),
            "connector_token": connector.token,
            "host": connector.host,
            "seed": seed,
            "scenario": scenario,
            "profile": profile.as_str(),
            "console_url": format!("{control_url}/ui/"),
            "control_url": control_url,
        });
        if let Some(tls) = &tls {
            ready["tls"] = true.into();
            if let Some(ca) = &tls.ca_file {
                ready["ca_file"] = ca.path.display().to_string().into();
            }
        }
        outln!("{ready}");
        tracing::info!(%addr, "messaging-mock listening");
        let identity = tls.as_ref().map(|t| t.identity.clone());
        mock_server::server::serve_on(listener, control, identity, state, shutdown)
            .await
            .context("serving")?;
        drop(tls);
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// What `--tls` or `--tls-cert`/`--tls-key` serve.
struct TlsSetup {
    identity: mock_server::tls::TlsIdentity,
    /// The generated CA's PEM file, removed at exit unless the user named it.
    ca_file: Option<CaFile>,
}

struct CaFile {
    path: PathBuf,
    remove: bool,
}

impl Drop for CaFile {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Loads or makes the TLS identity before anything is bound: bad files end the start (exit 2).
fn tls_setup(args: &TlsArgs) -> anyhow::Result<Option<TlsSetup>> {
    use mock_server::tls::TlsIdentity;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let identity = TlsIdentity::from_pem_files(cert, key)?;
        return Ok(Some(TlsSetup {
            identity,
            ca_file: None,
        }));
    }
    if !args.tls {
        return Ok(None);
    }
    let identity = TlsIdentity::generate_for(&args.tls_names)?;
    let (path, remove) = match &args.tls_ca_out {
        Some(path) => (path.clone(), false),
        None => (
            std::env::temp_dir().join(format!("messaging-mock-{}-ca.pem", std::process::id())),
            true,
        ),
    };
    let ca = identity.ca_pem().unwrap_or_default();
    std::fs::write(&path, ca)
        .with_context(|| format!("cannot write the CA certificate to {}", path.display()))?;
    Ok(Some(TlsSetup {
        identity,
        ca_file: Some(CaFile { path, remove }),
    }))
}

fn drift(
    recording: &Path,
    scenario: String,
    config: Option<&Path>,
    time_scale: f64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(recording)
        .with_context(|| format!("cannot read {}", recording.display()))?;
    let entries = match mock_server::journal::read_recording(&text) {
        Ok(entries) => entries,
        Err(error) => {
            eprintln!("messaging-mock drift: {}: {error}", recording.display());
            return Ok(ExitCode::from(2));
        }
    };
    let mut config = match config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.scenario = scenario;
    config.time_scale = time_scale;
    config.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = match runtime.block_on(mock_server::drift::drift(&entries, config)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("messaging-mock drift: {error}");
            return Ok(ExitCode::from(2));
        }
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for d in &report.differences {
            outln!("connection {}, after {}: {}", d.conn, d.after, d.what);
        }
        outln!(
            "{} difference(s) over {} connection(s), {} client frame(s), {} recorded event(s)",
            report.differences.len(),
            report.connections,
            report.client_frames,
            report.recorded_events
        );
    }
    Ok(if report.differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Logs to stderr (colours on a terminal) with the `--log` filter.
fn init_logging(filter: &str) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(filter)
                .with_context(|| format!("invalid --log filter `{filter}`"))?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
}

fn proxy(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    use mock_server::proxy::{Proxy, ProxyConfig, Upstream};
    init_logging(&args.log)?;
    let tls = match tls_setup(&args.tls) {
        Ok(tls) => tls,
        Err(error) => {
            eprintln!("messaging-mock proxy: {error:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let ca = match &args.upstream_ca {
        Some(file) => Some(
            std::fs::read(file)
                .with_context(|| format!("cannot read --upstream-ca {}", file.display()))?,
        ),
        None => None,
    };
    let upstream = match Upstream::new(&args.upstream, ca.as_deref()) {
        Ok(upstream) => upstream,
        Err(error) => {
            eprintln!("messaging-mock proxy: {error}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(dir) = &args.record {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the recording directory {}", dir.display()))?;
    }
    let proxy = Proxy::new(ProxyConfig {
        record_dir: args.record.clone(),
        strict: args.strict,
        timeout: std::time::Duration::from_secs_f64(args.upstream_timeout),
        ..ProxyConfig::new(upstream)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(args.bind)
            .await
            .with_context(|| format!("cannot listen on {}", args.bind))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let (http, ws) = if tls.is_some() {
            ("https", "wss")
        } else {
            ("http", "ws")
        };
        let mut ready = serde_json::json!({
            "ready": true,
            "proxy": true,
            "upstream": args.upstream,
            "base_url": format!("{http}://{addr}"),
            "ws_url": format!("{ws}://{addr}/ws"),
            "control_url": format!("{http}://{addr}/_mock"),
            "console_url": format!("{http}://{addr}/_mock/ui/"),
        });
        if let Some(tls) = &tls {
            ready["tls"] = true.into();
            if let Some(ca) = &tls.ca_file {
                ready["ca_file"] = ca.path.display().to_string().into();
            }
        }
        outln!("{ready}");
        let shutdown = shutdown_signal()?;
        let identity = tls.as_ref().map(|t| t.identity.clone());
        mock_server::proxy::serve(listener, proxy.clone(), identity, shutdown)
            .await
            .context("serving")?;
        drop(tls);
        let violations = proxy.violations();
        eprintln!(
            "messaging-mock proxy: {} violation(s) of the protocol",
            proxy.violation_count()
        );
        for v in violations.iter().take(20) {
            eprintln!(
                "  {} ms {:?} {}: {} {}",
                v.at_ms,
                v.direction,
                v.rule,
                v.detail,
                v.session_id.as_deref().unwrap_or("")
            );
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// A number of seconds above zero and below a day.
fn positive_seconds(text: &str) -> Result<f64, String> {
    let seconds: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if seconds > 0.0 && seconds < 86_400.0 {
        Ok(seconds)
    } else {
        Err("give a number of seconds above 0 and below 86400".into())
    }
}

fn rand_seed() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so a signal right after the readiness line is not lost.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        let mut terminate =
            signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            tracing::info!("shutting down: closing sockets with 1001");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down: closing sockets with 1001");
        })
    }
}

fn replay(file: &Path) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let shown = file.display().to_string();
    let raw = mock_server::scenario::recording_scenario(&shown, &text)?;
    mock_server::scenario::validate::validate("replay", &shown, &raw)?;
    outln!("{}", serde_json::to_string_pretty(&raw)?);
    Ok(ExitCode::SUCCESS)
}

fn list_scenarios() -> anyhow::Result<ExitCode> {
    let catalogue = mock_server::scenario::Catalogue::embedded()?;
    for (name, text) in mock_server::scenario::embedded() {
        let description = catalogue
            .get(name)
            .map(|s| s.description.clone())
            .unwrap_or_default();
        let _ = text;
        outln!("{name:40} {description}");
    }
    Ok(ExitCode::SUCCESS)
}

fn check_scenarios(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for file in files {
        match mock_server::scenario::load_file(file) {
            Ok(script) => outln!("ok: {} ({} rules)", file.display(), script.rules.len()),
            Err(error) => {
                failed = true;
                outln!("error: {error}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn generate_schemas(out: &Path, check: bool) -> anyhow::Result<ExitCode> {
    let files = mock_server::schemas::generate();
    let mut stale = Vec::new();
    for file in &files {
        let path = out.join(&file.name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != file.contents {
            stale.push(file.name.clone());
            if !check {
                std::fs::create_dir_all(out)
                    .with_context(|| format!("creating {}", out.display()))?;
                std::fs::write(&path, &file.contents)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    let verb = if check { "stale" } else { "updated" };
    outln!("{} schema files, {} {verb}", files.len(), stale.len());
    for name in &stale {
        outln!("  {verb}: {name}");
    }
    Ok(if check && !stale.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
