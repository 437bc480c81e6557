//! `schemas/` is generated from the protocol types; this test fails when it is stale.

use std::collections::BTreeSet;
use std::path::PathBuf;

const FIX: &str = "run `cargo run -p mock-server -- generate-schemas` and commit schemas/";

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

#[test]
fn committed_schemas_match_the_protocol_types() {
    let dir = schemas_dir();
    let generated = mock_server::schemas::generate();
    let mut stale = Vec::new();
    for file in &generated {
        let committed = std::fs::read_to_string(dir.join(&file.name)).unwrap_or_default();
        if committed != file.contents {
            stale.push(file.name.clone());
        }
    }
    let expected: BTreeSet<String> = generated.iter().map(|f| f.name.clone()).collect();
    let extra: Vec<String> = std::fs::read_dir(&dir)
        .expect("schemas/ exists")
        .filter_map(|entry| entry.ok())
        // Sub-folders hold other crates' schemas (conformance/), checked there.
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| !expected.contains(name))
        .collect();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "schemas/ is stale (changed: {stale:?}, not generated: {extra:?}): {FIX}"
    );
}

#[test]
fn every_documented_event_type_has_a_schema_file() {
    let names: BTreeSet<String> = mock_server::schemas::generate()
        .into_iter()
        .map(|f| f.name)
        .collect();
    for event_type in mock_server::protocol::ServerEvent::KNOWN_TYPES {
        let file = mock_server::schemas::event_file_name("server", event_type);
        assert!(names.contains(&file), "no {file}");
    }
    for event_type in mock_server::protocol::ClientEvent::TYPES {
        let file = mock_server::schemas::event_file_name("client", event_type);
        assert!(names.contains(&file), "no {file}");
    }
    // spec §6.6 lists 25 types: 5 client (4 also echoed) and 20 server-only.
    assert_eq!(mock_server::protocol::ServerEvent::KNOWN_TYPES.len(), 24);
}
