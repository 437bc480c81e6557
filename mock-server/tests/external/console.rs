//! The web consoles in a real browser: `tests/browser/console.mjs` drives the mock's
//! `/_mock/ui/` and `tests/browser/proxy_console.mjs` the proxy's, in headless Chromium like a
//! user, against servers started here, with a real WebSocket client.

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

pub async fn the_proxy_console_shows_a_session_and_injects_a_drop() {
    use mock_server::proxy::{Proxy, ProxyConfig, Upstream};
    let upstream = start(Config::default()).await;
    let proxy = Proxy::new(ProxyConfig::new(
        Upstream::new(&upstream.base_url(), None).expect("an upstream"),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let stop = tokio_util::sync::CancellationToken::new();
    let signal = stop.clone();
    tokio::spawn(mock_server::proxy::serve(
        listener,
        proxy,
        None,
        async move {
            signal.cancelled().await;
        },
    ));
    let script = browser::repo().join("mock-server/tests/browser/proxy_console.mjs");
    let env = [
        ("CONSOLE_URL", format!("{base}/_mock/ui/")),
        ("BASE_URL", base),
        ("SCREENSHOTS", browser::screenshots().display().to_string()),
    ];
    let output = tokio::task::spawn_blocking(move || {
        browser::run_browser_test(&script, &env, Duration::from_secs(120))
    })
    .await
    .expect("joined");
    for step in [
        "ok - the journal shows the fault and the drop",
        "ok - the client reconnects through the proxy",
        "ok - the violations table lists AUTH-1",
        "ok - no script errors in the page",
    ] {
        assert!(output.contains(step), "{step}: {output}");
    }
    stop.cancel();
    upstream.shutdown().await;
}
