//! The one integration-test binary of `mock-server` (one link, many modules).

mod support;

#[allow(dead_code)] // the browser runner serves the `external` binary
#[path = "../../../tools/browser_test.rs"]
mod browser;

mod apidocs;
mod cli;
mod console;
mod control;
mod docs;
mod drift;
mod evidence;
mod fuzz;
mod hostile;
mod hostile_files;
mod hostile_frames;
mod hostile_inputs;
mod limits;
mod protocol_bad_frames;
mod protocol_examples;
mod protocol_properties;
mod proxy;
mod scenarios;
mod schemas_fresh;
mod server_http;
mod server_lifecycle;
mod server_timers;
mod server_ws;
mod tls;
