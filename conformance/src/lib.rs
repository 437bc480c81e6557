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
//! - [`obligations`]: the §11 obligation table. [`catalogue`]: the cases.
//!   [`checks`]: one function per obligation, reading the evidence (journal + view).
//!   [`runner`]: runs a case against a fresh mock and grades it.
//!
//! - [`report`]: JSON, JUnit XML and a self-contained HTML page of a run.
//!
//! The tests add view snapshots, a property suite of generated fault schedules, and the
//! independent Node 20 driver in `examples/drivers/node/`.
//!
//! Not built yet: `restart` (optional in the driver contract).
//!
//! `conformance` depends on `mock-server`, never the reverse.

pub mod catalogue;
pub mod checks;
pub mod contract;
pub mod driver;
pub mod obligations;
pub mod reference;
pub mod report;
pub mod rest;
pub mod runner;
