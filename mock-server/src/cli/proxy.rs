//! `messaging-mock proxy`: its flags and the proxy's start, readiness line and exit summary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use mock_server::outln;
use tokio::net::TcpListener;

use super::tls::{TlsArgs, TlsSetup, tls_setup};
use super::{init_logging, shutdown_signal};

#[derive(Debug, Args)]
pub struct ProxyArgs {
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

pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
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
    runtime.block_on(serve(args, tls, proxy))
}

/// Listens, prints the readiness line, serves until the shutdown signal, then reports the
/// violations seen.
async fn serve(
    args: ProxyArgs,
    tls: Option<TlsSetup>,
    proxy: mock_server::proxy::Proxy,
) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    outln!("{}", ready_line(&args.upstream, addr, tls.as_ref()));
    let shutdown = shutdown_signal()?;
    let identity = tls.as_ref().map(|t| t.identity.clone());
    mock_server::proxy::serve(listener, proxy.clone(), identity, shutdown)
        .await
        .context("serving")?;
    drop(tls);
    report_violations(&proxy);
    anyhow::Ok(ExitCode::SUCCESS)
}

/// The JSON line printed once the proxy listens: its URLs, and its TLS files when it has them.
fn ready_line(upstream: &str, addr: SocketAddr, tls: Option<&TlsSetup>) -> serde_json::Value {
    let (http, ws) = if tls.is_some() {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    let mut ready = serde_json::json!({
        "ready": true,
        "proxy": true,
        "upstream": upstream,
        "base_url": format!("{http}://{addr}"),
        "ws_url": format!("{ws}://{addr}/ws"),
        "control_url": format!("{http}://{addr}/_mock"),
        "console_url": format!("{http}://{addr}/_mock/ui/"),
    });
    if let Some(tls) = tls {
        ready["tls"] = true.into();
        if let Some(ca) = &tls.ca_file {
            ready["ca_file"] = ca.path.display().to_string().into();
        }
    }
    ready
}

/// The exit summary on stderr: how many violations, and the first 20 of them.
fn report_violations(proxy: &mock_server::proxy::Proxy) {
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
