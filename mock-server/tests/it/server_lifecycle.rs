//! The full lifecycle of spec §9 over a real socket, with streaming off and on. Each canonical
//! transcript (both directions, ids and timestamps redacted) is an insta snapshot.

use mock_server::Config;

use crate::support::{
    Client, JOIN, bounded, new_session, new_session_client, normalise, start, types, user_message,
    ws_url,
};

/// Reads until the agent's reply is complete: the message, or the final chunk.
async fn until_reply(client: &mut Client, streaming: bool) {
    loop {
        let event = client.next_event().await;
        let done = if streaming {
            event["type"] == "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK"
                && event["payload"]["is_complete"] == true
        } else {
            event["type"] == "EVENT_TYPE_POLY_AGENT_MESSAGE"
        };
        if done {
            return;
        }
    }
}

/// Steps 0a–22 and E1–E3 of spec §9, through a server-managed handoff.
async fn lifecycle(streaming: bool) -> Client {
    let server = start(Config::default()).await;
    let (token, session) = new_session(&server, streaming).await;
    let mut client = Client::connect(&ws_url(&server, &session, &token, None))
        .await
        .expect("open");
    // 1–2: history with SESSION_START.
    let batch = client.next_event().await;
    assert_eq!(batch["type"], "EVENT_TYPE_EVENT_BATCH");
    // 3–7: join, echo, joined, thinking, greeting.
    client.send(JOIN).await;
    until_reply(&mut client, streaming).await;
    // 8–13: typing (not echoed), a message, its echo, thinking, the reply.
    client
        .send(r#"{"type":"EVENT_TYPE_USER_TYPING","payload":{"state":"TYPING_STATE_STARTED"}}"#)
        .await;
    client
        .send(r#"{"type":"EVENT_TYPE_USER_TYPING","payload":{"state":"TYPING_STATE_STOPPED"}}"#)
        .await;
    client.send(&user_message("I'd like to book a table")).await;
    until_reply(&mut client, streaming).await;
    // 14–21: the handoff, then a message to the human.
    client
        .send(&user_message("Can I talk to a person? #handoff"))
        .await;
    client.until("EVENT_TYPE_LIVE_AGENT_MESSAGE").await;
    client.send(&user_message("Hi Sarah")).await;
    client.until("EVENT_TYPE_LIVE_AGENT_MESSAGE").await;
    // E1–E3 (with 22 first, since a human is present: spec §12 D3).
    client
        .send(r#"{"type":"EVENT_TYPE_USER_END_SESSION","payload":{}}"#)
        .await;
    client.until("EVENT_TYPE_SESSION_END").await;
    assert_eq!(client.closed().await, 1000);
    server.shutdown().await;
    client
}

#[tokio::test]
async fn full_lifecycle_without_streaming() {
    let client = bounded(lifecycle(false)).await;
    let received: Vec<_> = client
        .log
        .iter()
        .filter(|(d, _)| *d == "←")
        .map(|(_, f)| f.clone())
        .collect();
    assert!(types(&received).contains(&"POLY_AGENT_MESSAGE".to_owned()));
    assert!(!types(&received).contains(&"POLY_AGENT_MESSAGE_CHUNK".to_owned()));
    insta::assert_json_snapshot!("lifecycle-streaming-off", normalise(&client.log));
}

#[tokio::test]
async fn full_lifecycle_with_streaming() {
    let client = bounded(lifecycle(true)).await;
    let received: Vec<_> = client
        .log
        .iter()
        .filter(|(d, _)| *d == "←")
        .map(|(_, f)| f.clone())
        .collect();
    assert!(
        !types(&received).contains(&"POLY_AGENT_MESSAGE".to_owned()),
        "no whole messages when streaming"
    );
    // Live-agent messages are never chunked (spec §12 E8).
    assert!(types(&received).contains(&"LIVE_AGENT_MESSAGE".to_owned()));
    insta::assert_json_snapshot!("lifecycle-streaming-on", normalise(&client.log));
}

#[tokio::test]
async fn client_managed_handoff_then_rejoin() {
    bounded(async {
        let server = start(Config::default()).await;
        let (_token, _session, mut client) = new_session_client(&server, false).await;
        client.next_event().await;
        client.send(JOIN).await;
        client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        client.send(&user_message("#client_handoff")).await;
        let events = client.until("EVENT_TYPE_POLY_AGENT_LEFT").await;
        assert_eq!(
            types(&events),
            [
                "USER_MESSAGE",
                "POLY_AGENT_TRIGGERED_HANDOFF",
                "CLIENT_HANDOFF_REQUIRED",
                "POLY_AGENT_LEFT"
            ]
        );
        assert_eq!(
            events[2]["payload"],
            serde_json::json!({"reason": "COMPLEX_QUERY", "queue_name": "Support Queue"})
        );
        client.send(JOIN).await;
        let events = client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        assert_eq!(
            types(&events),
            [
                "REQUEST_POLY_AGENT_JOIN",
                "POLY_AGENT_JOINED",
                "POLY_AGENT_THINKING",
                "POLY_AGENT_MESSAGE"
            ]
        );
        server.shutdown().await;
    })
    .await;
}
