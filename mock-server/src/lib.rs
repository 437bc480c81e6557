//! `mock_server`: an offline mock of PolyAI's Messaging API.
//!
//! Module map (dependencies point one way, top to bottom):
//!
//! - [`protocol`]: wire types only (serde + schemars); no I/O.
//! - [`engine`]: the session state machine, `(state, input, now) -> actions`; no I/O.
//! - [`auth`]: connector registry, `X-Host` matching, access-token JWTs (pure; time passed in).
//! - [`config`]: every configurable decision of spec §12, with defaults.
//! - [`state`]: the session registry and the glue that carries engine actions to connections.
//! - [`http`]: the REST handshake handlers. [`ws`]: the WebSocket endpoint and connection tasks.
//! - [`journal`]: the typed journal of each session, and recordings. [`http_log`]: every REST
//!   call and `/ws` handshake, session or not, and the REST failures armed for the next calls.
//! - [`control`]: the control API under `/_mock/` (and its OpenAPI description).
//! - [`router`]: routes, CORS, correlation ids. [`server`]: `serve` and the [`MockServer`] handle.
//! - [`schemas`]: the JSON Schemas published in `schemas/`, generated from [`protocol`].
//! - [`scenario`]: scenario files (raw serde shapes, validation, the script vocabulary) and
//!   recordings read back as scenarios.
//! - [`tls`]: the generated CA and certificate, PEM files, the one crypto provider.
//! - [`http_client`]: one fresh HTTP/1.1 connection, plain or TLS (`ctl`, the proxy, the kit).
//! - [`proxy`]: `messaging-mock proxy`, in front of the real service: forwards, records,
//!   checks each frame, injects faults. [`drift`]: a recording's client side replayed against
//!   the mock, answers compared.
//! - [`apidocs`]: the AsyncAPI (WebSocket) and OpenAPI (REST) descriptions of the protocol.
//! - [`output`]: stdout for the command-line tools, quiet when the reader has gone.

pub mod apidocs;
pub mod auth;
pub mod config;
pub mod control;
pub mod drift;
pub mod engine;
pub mod http;
pub mod http_client;
pub mod http_log;
pub mod journal;
pub mod output;
pub mod protocol;
pub mod proxy;
pub mod router;
pub mod scenario;
pub mod schemas;
pub mod server;
pub mod state;
pub mod tls;
pub mod ws;

pub use config::Config;
pub use server::{MockServer, StartError, serve};

/// The Rust examples of `docs/mock.md` compile (`cargo test --doc`), so the guide cannot drift
/// from the API it shows.
#[cfg(doctest)]
#[doc = include_str!("../../docs/mock.md")]
struct MockGuideExamples;

/// The Rust example of the README compiles too.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
