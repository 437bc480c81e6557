//! The docs' minimal JavaScript flow works against the mock by changing only the base URL.
//! Runs `examples/minimal-flow.mjs` with Node 20.

use std::path::PathBuf;
use std::process::Command;

use mock_server::Config;

use crate::support::{bounded, start};

pub async fn the_minimal_javascript_flow_gets_the_greeting() {
    bounded(async {
        let server = start(Config::default()).await;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/minimal-flow.mjs");
        let base_url = server.base_url();
        let output = tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg("--experimental-websocket")
                .arg(script)
                .arg(base_url)
                .output()
        })
        .await
        .expect("joined")
        .expect("node runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "node failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
        assert_eq!(result["greeting"], "Hello! How can I help you today?");
        assert_eq!(
            result["received"][0], "EVENT_TYPE_EVENT_BATCH",
            "the history comes first"
        );
        server.shutdown().await;
    })
    .await;
}
