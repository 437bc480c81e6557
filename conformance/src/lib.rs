//! `conformance`: grades a Messaging API client SDK against the client obligations of spec §11,
//! by driving it through the driver contract (`shared/spec/driver-contract.md`) against the mock.
//!
//! Not built yet: this crate currently only fixes the workspace shape (it depends on
//! `mock-server`, never the reverse). The catalogue, the driver adapter and the reference client
//! arrive with the conformance-kit issue.
