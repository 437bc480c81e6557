//! Session timers under paused tokio time: ten minutes pass in no time (spec §12 C7, C8).

use std::time::Duration;

use mock_server::Config;
use mock_server::auth::AccessClaims;
use mock_server::engine::SessionStatus;
use mock_server::state::AppState;

fn claims() -> AccessClaims {
    AccessClaims {
        sub: "default".into(),
        host: "localhost".into(),
        iat: 0,
        exp: u64::MAX,
        jti: "jti-1".into(),
        scenario: None,
    }
}

/// Lets the timer task run after the clock moved.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn an_untouched_session_expires_after_the_default_ten_minutes() {
    let state = AppState::new(Config::default()).expect("state");
    let id = state
        .create_session(&claims(), false, Default::default())
        .expect("room");
    settle().await;
    tokio::time::advance(Duration::from_secs(599)).await;
    settle().await;
    assert!(state.session(id.as_str()).is_some(), "alive at 9:59");
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    assert!(state.session(id.as_str()).is_none(), "gone after 10:00");
    assert_eq!(state.session_count(), 0, "removed from the registry");
}

#[tokio::test(start_paused = true)]
async fn an_ended_session_is_kept_for_the_retention_period_then_forgotten() {
    let state = AppState::new(Config {
        session_idle_timeout_seconds: 60.0,
        session_retention_seconds: 300.0,
        ..Config::default()
    })
    .expect("state");
    let id = state
        .create_session(&claims(), false, Default::default())
        .expect("room");
    settle().await;
    tokio::time::advance(Duration::from_secs(61)).await;
    settle().await;
    // Idle expiry ends the session and marks it expired at once (spec §12 C7).
    assert!(state.session(id.as_str()).is_none());

    let id = state
        .create_session(&claims(), false, Default::default())
        .expect("room");
    let slot = state.session(id.as_str()).expect("alive");
    let end = r#"{"type":"EVENT_TYPE_USER_END_SESSION","payload":{}}"#;
    let decoded = mock_server::protocol::decode_client_frame(
        mock_server::protocol::RawFrame::Text(end),
        state.decode_options(),
    );
    state.receive(&slot, 1, Some(end), end.len(), decoded, false);
    assert_eq!(slot.status(), SessionStatus::Ended);
    tokio::time::advance(Duration::from_secs(299)).await;
    settle().await;
    assert!(
        state.session(id.as_str()).is_some(),
        "ended sessions still replay (spec §12 C8)"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    assert!(state.session(id.as_str()).is_none(), "gone after retention");
}
