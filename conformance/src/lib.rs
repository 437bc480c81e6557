//! `conformance`: grades a Messaging API client SDK against the client obligations of spec §11,
//! by driving it through the driver contract (`docs/driver-contract.md`) against the mock.
//!
//! - [`contract`]: the driver contract as types (commands, replies, the view).
//! - [`driver`]: [`driver::ClientUnderTest`], the one interface the runner drives, with its two
//!   implementations ([`driver::ProcessDriver`] for external drivers, [`driver::InProcess`] for
//!   the reference client) and the [`driver::Launcher`]s that make one per case.
//! - [`generative`]: sessions drawn from a seed across the coverage matrix, and their
//!   shrinking.
//! - [`obligations`]: the §11 obligations, their levels, and what each check looks for.
//! - [`params`]: numbers and texts drawn from a run's seed.
//! - [`cases`]: the case catalogue, data under `fixtures/conformance/`, validated on load.
//! - [`coverage`]: the spec-coverage matrix (data) and what a run's evidence exercised of it.
//! - [`runner`]: plays a case against a fresh mock, samples the view, grades; runs many at once.
//! - [`checks`]: one function per obligation, reading the evidence (journals, HTTP log, views).
//! - [`reference`]: the reference client (and its deliberate defects, the built-in mutants).
//! - [`rest`]: the small HTTP client the reference client uses for the REST handshake.
//! - [`report`]: a run's records (each case's result and timelines, the summaries), and
//!   `results.json`, `junit.xml` and a self-contained `report.html` made of them.
//! - [`schemas`]: `schemas/conformance/`, generated from the case file and view types.
//! - [`tls`]: `run --tls`: the run's certificate, and the CA file handed to drivers.
//! - [`tolerance`]: the timing tolerances the checks judge with (and the draws are proved
//!   against).
//!
//! `conformance` depends on `mock-server`, never the reverse.

pub mod cases;
pub mod checks;
pub mod contract;
pub mod coverage;
pub mod driver;
pub mod generative;
pub mod obligations;
pub mod params;
pub mod reference;
pub mod report;
pub mod rest;
pub mod runner;
pub mod schemas;
pub mod tls;
pub mod tolerance;
