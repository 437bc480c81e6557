//! `mock_server`: an offline mock of PolyAI's Messaging API.
//!
//! Module map (dependencies point one way, top to bottom):
//!
//! - [`protocol`]: wire types only (serde + schemars); no I/O.
//! - [`auth`]: connector registry, `X-Host` matching, access-token JWTs (pure; time passed in).
//! - [`schemas`]: the JSON Schemas published in `schemas/`, generated from [`protocol`].

pub mod auth;
pub mod protocol;
pub mod schemas;
