//! `messaging-mock`: run the mock server, or regenerate the JSON Schemas.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
mod cli;
mod ctl;

use cli::drift::DriftArgs;
use cli::proxy::ProxyArgs;
use cli::replay::ReplayArgs;
use cli::scenarios::CheckScenarioArgs;
use cli::schemas::GenerateSchemasArgs;
use cli::serve::ServeArgs;

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
    CheckScenario(CheckScenarioArgs),
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
    Drift(DriftArgs),
    /// Print the scenario a recording (`--record` output) describes; serve it directly with
    /// `--scenario FILE.jsonl`.
    Replay(ReplayArgs),
    /// Regenerate the JSON Schemas in `schemas/` from the protocol types.
    GenerateSchemas(GenerateSchemasArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::GenerateSchemas(args)) => cli::schemas::run(args),
        Some(Command::Scenarios) => cli::scenarios::list_scenarios(),
        Some(Command::Ctl(args)) => ctl::run(args),
        Some(Command::Proxy(args)) => cli::proxy::run(args),
        Some(Command::Drift(args)) => cli::drift::run(args),
        Some(Command::Replay(args)) => cli::replay::run(args),
        Some(Command::CheckScenario(args)) => cli::scenarios::check(args),
        None => cli::serve::run(cli.serve),
    };
    result.unwrap_or_else(|error| {
        eprintln!("messaging-mock: {error:#}");
        ExitCode::FAILURE
    })
}
