//! `conformance`: grades a Messaging API client SDK against the client obligations of spec §11,
//! by driving it through the driver contract (`shared/spec/driver-contract.md`) against the mock.
//!
//! Built so far (the groundwork of the kit):
//!
//! - [`contract`]: the driver contract as types (commands, replies, the view).
//! - [`driver`]: [`driver::ClientUnderTest`], the one interface the runner drives, with its two
//!   implementations: [`driver::ProcessDriver`] for external drivers and
//!   [`driver::InProcess`] for the reference client.
//! - [`reference`]: the reference client, which keeps every obligation; also usable as an SDK.
//! - [`rest`]: the small HTTP client the reference client uses for the REST handshake.
//!
//! Not built yet: the case catalogue, checks and grading, mutants, property and snapshot
//! suites, reports and the Node driver. `conformance` depends on `mock-server`, never the
//! reverse.

pub mod contract;
pub mod driver;
pub mod reference;
pub mod rest;
