//! `messaging-mock ctl`: the control API from a shell, over HTTP/1.1 on loopback.

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The running mock: its base URL, or the readiness line's `control_url` (which ends in
    /// `/_mock`, and names the control port when `--control-bind` gave it its own).
    #[arg(
        long,
        env = "MESSAGING_MOCK_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// The CA certificate (PEM) to trust for an `https://` URL: the readiness line's `ca_file`
    /// of a `--tls` mock, or the CA of its `--tls-cert`.
    #[arg(long, env = "MESSAGING_MOCK_CA_FILE", value_name = "FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// Bearer token, when the mock was started with a control token.
    #[arg(long, env = "MESSAGING_MOCK_CONTROL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// Liveness, session count and the mock clock.
    Health,
    /// List sessions.
    Sessions,
    /// One session's summary.
    Session { id: String },
    /// A session's journal; `--follow` streams new entries as JSON Lines.
    Journal {
        id: String,
        #[arg(long)]
        follow: bool,
    },
    /// Play scenario steps now, e.g. '{"live_agent_message": {"text": "Hi"}}' (one or an array).
    Steps { id: String, json: String },
    /// Apply faults now, e.g. '"drop"' or '{"close": 4002}' (one or an array).
    Faults { id: String, json: String },
    /// End a session (default reason REASON_NATURAL_END).
    End { id: String, reason: Option<String> },
    /// Scenario of the next session created.
    NextScenario { scenario: String },
    /// Scenario of later tokens of a connector.
    ConnectorScenario { token: String, scenario: String },
    /// List scenario names.
    Scenarios,
    /// Advance or scale the mock clock.
    Clock {
        #[arg(long)]
        advance_ms: Option<u64>,
        #[arg(long)]
        scale: Option<f64>,
    },
    /// Every REST call and /ws handshake the server answered, refused ones too, oldest first.
    Requests(RequestFilter),
    /// Make the next REST calls fail, e.g. '{"sessions": 2}' or
    /// '{"sessions_429": {"count": 1, "retry_after_seconds": 3}}'.
    HttpFailures { json: String },
    /// Drop every session and every control choice.
    Reset,
}

/// The filters of `GET /_mock/requests`; each one given narrows the answer.
#[derive(Debug, Args, serde::Serialize)]
struct RequestFilter {
    /// Only calls to this endpoint: access-token, sessions or ws.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    /// Only calls answered with this HTTP status (101 for an accepted handshake).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    /// Only calls naming this session.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    /// Only calls at or after this mock-clock time, milliseconds.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    since_ms: Option<u64>,
    /// Only calls before this mock-clock time, milliseconds.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    until_ms: Option<u64>,
    /// Answer only how many calls match.
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    count: bool,
}

impl CtlCommand {
    /// The HTTP call this command makes: method, path (with its query) and body.
    fn call(&self) -> anyhow::Result<(&'static str, String, Option<String>)> {
        Ok(match self {
            CtlCommand::Health => ("GET", "/_mock/health".to_owned(), None),
            CtlCommand::Sessions => ("GET", "/_mock/sessions".to_owned(), None),
            CtlCommand::Session { id } => ("GET", format!("/_mock/sessions/{id}"), None),
            CtlCommand::Journal { id, follow } => (
                "GET",
                format!("/_mock/sessions/{id}/journal?follow={follow}"),
                None,
            ),
            CtlCommand::Steps { id, json } => (
                "POST",
                format!("/_mock/sessions/{id}/steps"),
                Some(json.clone()),
            ),
            CtlCommand::Faults { id, json } => (
                "POST",
                format!("/_mock/sessions/{id}/faults"),
                Some(json.clone()),
            ),
            CtlCommand::End { id, reason } => (
                "POST",
                format!("/_mock/sessions/{id}/end"),
                Some(serde_json::json!({ "reason": reason }).to_string()),
            ),
            CtlCommand::NextScenario { scenario } => (
                "PUT",
                "/_mock/next-scenario".to_owned(),
                Some(serde_json::json!({ "scenario": scenario }).to_string()),
            ),
            CtlCommand::ConnectorScenario { token, scenario } => (
                "PUT",
                format!("/_mock/connectors/{token}/scenario"),
                Some(serde_json::json!({ "scenario": scenario }).to_string()),
            ),
            CtlCommand::Scenarios => ("GET", "/_mock/scenarios".to_owned(), None),
            CtlCommand::Clock { advance_ms, scale } => (
                "POST",
                "/_mock/clock".to_owned(),
                Some(serde_json::json!({ "advance_ms": advance_ms, "scale": scale }).to_string()),
            ),
            CtlCommand::Requests(filter) => {
                let query = serde_urlencoded::to_string(filter).context("encoding the filters")?;
                let path = if query.is_empty() {
                    "/_mock/requests".to_owned()
                } else {
                    format!("/_mock/requests?{query}")
                };
                ("GET", path, None)
            }
            CtlCommand::HttpFailures { json } => (
                "POST",
                "/_mock/http-failures".to_owned(),
                Some(json.clone()),
            ),
            CtlCommand::Reset => ("POST", "/_mock/reset".to_owned(), None),
        })
    }
}

pub fn run(args: CtlArgs) -> anyhow::Result<std::process::ExitCode> {
    let (method, path, body) = args.command.call()?;
    let authority = authority(&args.url)?;
    let tls = tls_config(&args.url, args.ca_file.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(request(
        &args.url,
        &authority,
        tls,
        args.token.as_deref(),
        method,
        &path,
        body,
    ))
}

/// The TLS client configuration for an `https://` URL, trusting `ca_file`; `None` for `http://`.
fn tls_config(
    url: &str,
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<Option<std::sync::Arc<rustls::ClientConfig>>> {
    Ok(match (url.starts_with("https://"), ca_file) {
        (false, _) => None,
        (true, None) => bail!(
            "--url {}: an https:// mock needs --ca-file (its readiness line's `ca_file`)",
            url
        ),
        (true, Some(file)) => {
            let pem = std::fs::read(file)
                .with_context(|| format!("cannot read --ca-file {}", file.display()))?;
            let config = mock_server::tls::client_config(&pem)
                .with_context(|| format!("--ca-file {}", file.display()))?;
            Some(std::sync::Arc::new(config))
        }
    })
}

/// The `host:port` of `--url`: the mock's base URL, or its control URL (`…/_mock`).
fn authority(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .with_context(|| format!("--url {url}: not an http:// or https:// URL"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !matches!(path.trim_end_matches('/'), "" | "_mock") {
        bail!(
            "--url {url}: give the mock's base URL (http://127.0.0.1:8080) or its control_url \
             (http://127.0.0.1:8080/_mock), not a path under it"
        );
    }
    if authority.is_empty() {
        bail!("--url {url}: no host");
    }
    Ok(authority.to_owned())
}

async fn request(
    base: &str,
    authority: &str,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<std::process::ExitCode> {
    let mut sender = mock_server::http_client::connect(authority, tls)
        .await
        .with_context(|| format!("cannot reach the mock at {base}"))?;
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", authority)
        .header("content-type", "application/json");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .context("building the request")?;
    let mut response = sender
        .send_request(request)
        .await
        .context("sending the request")?;
    let status = response.status();
    while let Some(frame) = response.body_mut().frame().await {
        let frame = frame.context("reading the response")?;
        if let Some(data) = frame.data_ref() {
            mock_server::output::write_bytes(data);
        }
    }
    mock_server::output::write_bytes(b"\n");
    if !status.is_success() {
        bail!("{method} {path}: {status}");
    }
    Ok(std::process::ExitCode::SUCCESS)
}
