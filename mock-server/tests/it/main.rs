//! The one integration-test binary of `mock-server` (one link, many modules).

mod protocol_bad_frames;
mod protocol_examples;
mod protocol_properties;
mod schemas_fresh;
