//! The one integration-test binary of `conformance`.

#[allow(dead_code)] // the browser runner serves the `catalogue` binary
#[path = "../../../tools/browser_test.rs"]
mod browser;
mod controls;
mod drivers;
mod kit;
mod process_driver;
mod properties;
mod reference;

use std::time::Duration;

use conformance::contract::{Author, Command, ConnectionState, Reply, View};
use conformance::driver::{ClientUnderTest, DriverEnv};
use mock_server::{Config, MockServer};

/// Every async test runs inside this bound.
pub async fn bounded<T>(test: impl std::future::Future<Output = T>) -> T {
    bounded_by(Duration::from_secs(30), test).await
}

pub async fn bounded_by<T>(limit: Duration, test: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, test)
        .await
        .unwrap_or_else(|_| panic!("test exceeded its {} s bound", limit.as_secs()))
}

pub async fn mock(config: Config) -> MockServer {
    MockServer::start_with(config).await.expect("mock starts")
}

/// The driver environment for `server`, optionally selecting a scenario through the
/// connector token (`scenario:<name>`).
pub fn env_for(server: &MockServer, scenario: Option<&str>) -> DriverEnv {
    let (token, host) = server.credentials();
    DriverEnv {
        base_url: server.base_url(),
        connector_token: scenario.map_or(token, |name| format!("scenario:{name}")),
        host,
        case_id: "test".into(),
        ca_file: None,
        node_extra_ca_certs: None,
    }
}

pub async fn view_of(client: &mut impl ClientUnderTest) -> View {
    match client.call(Command::View).await.expect("driver alive") {
        Reply::Ok(Some(view)) => *view,
        other => panic!("view failed: {other:?}"),
    }
}

/// Polls the view until `done` holds (or panics after 10 s with the last view).
pub async fn wait_for(
    client: &mut impl ClientUnderTest,
    what: &str,
    done: impl Fn(&View) -> bool,
) -> View {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let view = view_of(client).await;
        if done(&view) {
            return view;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "never saw {what}; last view: {}",
                serde_json::to_string_pretty(&view).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `(from, text, complete)` of every message in the view.
pub fn messages(view: &View) -> Vec<(Author, String, bool)> {
    view.messages
        .iter()
        .flatten()
        .map(|m| (m.from, m.text.clone(), m.complete))
        .collect()
}

pub fn is_open(view: &View) -> bool {
    view.connection == Some(ConnectionState::Open)
}

pub async fn ok(client: &mut impl ClientUnderTest, command: Command) {
    let reply = client.call(command.clone()).await.expect("driver alive");
    assert_eq!(reply, Reply::Ok(None), "{command:?}");
}

pub use browser::required;
