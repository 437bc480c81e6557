//! `messaging-mock ctl`: the control API from a shell, over HTTP/1.1 on loopback.

use std::io::Write as _;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Base URL of the running mock.
    #[arg(
        long,
        env = "MESSAGING_MOCK_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
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
    /// Drop every session and every control choice.
    Reset,
}

pub fn run(args: CtlArgs) -> anyhow::Result<std::process::ExitCode> {
    let (method, path, body) = match &args.command {
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
        CtlCommand::Reset => ("POST", "/_mock/reset".to_owned(), None),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(request(
        &args.url,
        args.token.as_deref(),
        method,
        &path,
        body,
    ))
}

async fn request(
    base: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<std::process::ExitCode> {
    let authority = base
        .strip_prefix("http://")
        .context("--url must be an http:// URL (the control API is plain HTTP on loopback)")?
        .trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("cannot reach the mock at {base}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    tokio::spawn(connection);
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
    let mut out = std::io::stdout().lock();
    while let Some(frame) = response.body_mut().frame().await {
        let frame = frame.context("reading the response")?;
        if let Some(data) = frame.data_ref() {
            out.write_all(data)?;
            out.flush()?;
        }
    }
    writeln!(out)?;
    if !status.is_success() {
        bail!("{method} {path}: {status}");
    }
    Ok(std::process::ExitCode::SUCCESS)
}
