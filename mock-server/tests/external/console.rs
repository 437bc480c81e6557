//! The web console in a real browser: `tests/browser/console.mjs` drives `/_mock/ui/` in
//! headless Chromium like a user, against a mock started here, with a real WebSocket client.

use std::time::Duration;

use mock_server::Config;

use crate::browser;
use crate::support::start;

pub async fn the_console_lets_a_user_play_the_live_agent_and_inject_a_drop() {
    let server = start(Config::default()).await;
    let script = browser::repo().join("mock-server/tests/browser/console.mjs");
    let env = [
        ("CONSOLE_URL", format!("{}/_mock/ui/", server.base_url())),
        ("BASE_URL", server.base_url()),
        ("SCREENSHOTS", browser::screenshots().display().to_string()),
    ];
    let output = tokio::task::spawn_blocking(move || {
        browser::run_browser_test(&script, &env, Duration::from_secs(120))
    })
    .await
    .expect("joined");
    // The script's own checks decide; these make sure it really got to the end.
    assert!(
        output.contains("ok - the client receives the live agent's message"),
        "{output}"
    );
    assert!(
        output.contains("ok - the journal shows the client's reconnect"),
        "{output}"
    );
    assert!(
        output.contains("ok - no script errors in the page"),
        "{output}"
    );
    server.shutdown().await;
}
