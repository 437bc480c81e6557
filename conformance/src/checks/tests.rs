//! The evidence model on hand-written journals: which frames reached the client, what was
//! batch-only, which closes were unexpected.

use std::sync::Arc;

use mock_server::journal::JournalEntry;
use serde_json::json;

use super::*;

fn entry(at_ms: u64, event: serde_json::Value) -> JournalEntry {
    let mut value = event;
    value["at_ms"] = at_ms.into();
    value["unix_ms"] = 0.into();
    serde_json::from_value(value).expect("a journal entry")
}

fn frame(
    id: &str,
    sequence: Option<u64>,
    kind: &str,
    payload: serde_json::Value,
) -> serde_json::Value {
    json!({"id": id, "sequence": sequence, "timestamp": "2026-01-01T00:00:00.000Z", "type": kind, "payload": payload})
}

fn session(journal: Vec<JournalEntry>) -> SessionRecord {
    SessionRecord {
        summary: serde_json::from_value(json!({
            "session_id": "s1", "connector": "c", "scenario": "x", "streaming": false,
            "phase": "agent", "state": "agent", "status": "active", "open_sockets": 0, "last_sequence": 0,
            "journal_entries": 0, "created_at_ms": 0
        }))
        .expect("a summary"),
        journal,
    }
}

#[test]
fn only_frames_sent_while_a_connection_was_open_are_deliveries() {
    let message = frame(
        "e2",
        Some(2),
        "EVENT_TYPE_POLY_AGENT_MESSAGE",
        json!({"message_id": "m1", "text": "hi"}),
    );
    let record = session(vec![
        entry(
            10,
            json!({"kind": "handshake", "conn": 1, "query": {}, "status": 101}),
        ),
        entry(
            11,
            json!({"kind": "server_frame", "conn": 1, "frame": {"type": "EVENT_TYPE_EVENT_BATCH", "payload": {"events": [
                {"id": "e1", "sequence": 1, "type": "EVENT_TYPE_SESSION_START", "session_start": {"capabilities": {}}}
            ]}}}),
        ),
        entry(20, json!({"kind": "close", "conn": 1, "by": "server"})),
        entry(30, json!({"kind": "server_frame", "frame": message})),
        entry(
            40,
            json!({"kind": "handshake", "conn": 2, "query": {"cursor": "1"}, "status": 101}),
        ),
        entry(
            41,
            json!({"kind": "server_frame", "conn": 2, "frame": {"type": "EVENT_TYPE_EVENT_BATCH", "payload": {"events": [message]}}}),
        ),
    ]);
    let deliveries = record.deliveries();
    let kinds: Vec<(u64, &str, bool)> = deliveries
        .iter()
        .map(|d| (d.at_ms, event_type(&d.event), d.in_batch))
        .collect();
    assert_eq!(
        kinds,
        [
            (11, "EVENT_TYPE_SESSION_START", true),
            (41, "EVENT_TYPE_POLY_AGENT_MESSAGE", true)
        ],
        "the message sent while no socket was open reached the client only in the replay"
    );
    assert_eq!(
        deliveries[0].event["payload"]["capabilities"],
        json!({}),
        "the alternate payload key is read as the payload"
    );
    let connections = record.connections();
    assert_eq!(connections.len(), 2);
    assert_eq!(connections[0].closed_by, Some(Closer::Server));
    assert_eq!(connections[1].cursor.as_deref(), Some("1"));
    let history: Vec<String> = record
        .history()
        .iter()
        .map(|(_, e)| event_type(e).to_owned())
        .collect();
    assert_eq!(
        history,
        ["EVENT_TYPE_SESSION_START", "EVENT_TYPE_POLY_AGENT_MESSAGE"],
        "the history, from frames and batches, once each, in sequence order"
    );
}

#[test]
fn a_drop_is_unexpected_but_a_close_after_session_end_is_not() {
    let end = frame(
        "e9",
        Some(9),
        "EVENT_TYPE_SESSION_END",
        json!({"reason": "REASON_USER_END"}),
    );
    let ended = session(vec![
        entry(
            1,
            json!({"kind": "handshake", "conn": 1, "query": {}, "status": 101}),
        ),
        entry(5, json!({"kind": "server_frame", "frame": end})),
        entry(
            6,
            json!({"kind": "close", "conn": 1, "code": 1000, "by": "server"}),
        ),
    ]);
    let dropped = session(vec![
        entry(
            1,
            json!({"kind": "handshake", "conn": 1, "query": {}, "status": 101}),
        ),
        entry(6, json!({"kind": "close", "conn": 1, "by": "server"})),
    ]);
    let evidence = |s: SessionRecord| Evidence {
        case: crate::cases::catalogue().expect("cases")[0]
            .instantiate(&crate::params::Params::draw(0))
            .expect("instantiates"),
        sessions: vec![s],
        http: Vec::new(),
        samples: Vec::new(),
        steps: Vec::new(),
        expectations: Vec::new(),
        exit_ms: 100,
        end_ms: 100,
    };
    assert!(evidence(ended).unexpected_closes().is_empty());
    assert_eq!(evidence(dropped).unexpected_closes().len(), 1);
}

fn handshake_call(at_ms: u64, cursor: Option<u64>) -> HttpCall {
    let query = match cursor {
        Some(n) => json!({"session_id": "s1", "cursor": n.to_string()}),
        None => json!({"session_id": "s1"}),
    };
    serde_json::from_value(json!({
        "at_ms": at_ms, "endpoint": "/ws", "status": 101, "session_id": "s1",
        "request": {"query": query, "upgrade": true}
    }))
    .expect("an HTTP call")
}

/// Two connections: the first gets sequences 1–3 at 10 ms and 4–5 at `late_ms`, then ends at
/// 1,500 ms with `close_code` (none: dropped without a close frame); the second opens with
/// `cursor` at 2,600 ms.
fn reconnect_evidence(late_ms: u64, close_code: Option<u16>, cursor: u64) -> Evidence {
    let events = |from: u64, to: u64| -> Vec<serde_json::Value> {
        (from..=to)
            .map(|n| {
                frame(
                    &format!("e{n}"),
                    Some(n),
                    "EVENT_TYPE_POLY_AGENT_MESSAGE",
                    json!({"message_id": format!("m{n}"), "text": "hi"}),
                )
            })
            .collect()
    };
    let batch = |from, to| json!({"type": "EVENT_TYPE_EVENT_BATCH", "payload": {"events": events(from, to)}});
    let mut close = json!({"kind": "close", "conn": 1, "by": "server"});
    if let Some(code) = close_code {
        close["code"] = code.into();
    }
    let record = session(vec![
        entry(
            5,
            json!({"kind": "handshake", "conn": 1, "query": {}, "status": 101}),
        ),
        entry(
            10,
            json!({"kind": "server_frame", "conn": 1, "frame": batch(1, 3)}),
        ),
        entry(
            late_ms,
            json!({"kind": "server_frame", "conn": 1, "frame": batch(4, 5)}),
        ),
        entry(1_500, close),
        entry(
            2_600,
            json!({"kind": "handshake", "conn": 2, "query": {"cursor": cursor.to_string()}, "status": 101}),
        ),
    ]);
    Evidence {
        case: crate::cases::catalogue().expect("cases")[0]
            .instantiate(&crate::params::Params::draw(0))
            .expect("instantiates"),
        sessions: vec![record],
        http: vec![handshake_call(5, None), handshake_call(2_600, Some(cursor))],
        samples: Vec::new(),
        steps: Vec::new(),
        expectations: Vec::new(),
        exit_ms: 3_000,
        end_ms: 3_000,
    }
}

#[test]
fn frames_written_just_before_a_drop_are_in_flight_and_a_cursor_may_stop_short_of_them() {
    let kept = |o: &Outcome| matches!(o, Outcome::Kept(_));
    let in_flight: Vec<bool> = reconnect_evidence(1_400, None, 3).sessions[0]
        .deliveries()
        .iter()
        .map(|d| d.in_flight_at_drop)
        .collect();
    assert_eq!(in_flight, [false, false, false, true, true]);
    // The whole history, or all but what was in flight: both kept.
    for cursor in [5, 3] {
        let outcome =
            super::reconnect::cursor_on_every_reconnect(&reconnect_evidence(1_400, None, cursor));
        assert!(kept(&outcome), "cursor {cursor}: {outcome:?}");
    }
    // Negative controls: short of a frame that had arrived long before the drop, short of
    // frames followed by a close frame (they arrived before it), and ahead of the history.
    for (late_ms, code, cursor) in [
        (1_400, None, 2),
        (200, None, 3),
        (1_400, Some(4002), 3),
        (1_400, None, 6),
    ] {
        let outcome =
            super::reconnect::cursor_on_every_reconnect(&reconnect_evidence(late_ms, code, cursor));
        assert!(
            matches!(outcome, Outcome::Broken(_)),
            "frames at {late_ms} ms, close {code:?}, cursor {cursor}: {outcome:?}"
        );
    }
}

/// A session that ends at 100 ms (the client closes its socket at 101 ms), a view read at
/// 100 ms that shows the end, and a `send` accepted at 100 ms that began before (`0`) or
/// after (`1`) that view was read.
fn ended_evidence(send_samples_before: usize) -> Evidence {
    let end = frame(
        "e9",
        Some(9),
        "EVENT_TYPE_SESSION_END",
        json!({"reason": "REASON_NATURAL_END"}),
    );
    let record = session(vec![
        entry(
            5,
            json!({"kind": "handshake", "conn": 1, "query": {}, "status": 101}),
        ),
        entry(100, json!({"kind": "server_frame", "frame": end})),
        entry(
            101,
            json!({"kind": "close", "conn": 1, "code": 1000, "by": "client"}),
        ),
    ]);
    let view: crate::contract::View =
        serde_json::from_value(json!({"ended": {"reason": "REASON_NATURAL_END"}})).expect("a view");
    Evidence {
        case: crate::cases::catalogue().expect("cases")[0]
            .instantiate(&crate::params::Params::draw(0))
            .expect("instantiates"),
        sessions: vec![record],
        http: vec![handshake_call(5, None)],
        samples: vec![Sample {
            sent_ms: 100,
            replied_ms: 100,
            view: Arc::new(view),
        }],
        steps: vec![StepRecord {
            index: 3,
            step: crate::cases::Step::Send("bye".into()),
            at_ms: 100,
            samples_before: send_samples_before,
            reply: StepReply::Ok,
        }],
        expectations: Vec::new(),
        exit_ms: 2_000,
        end_ms: 2_000,
    }
}

#[test]
fn input_after_end_is_judged_by_the_order_of_steps_and_views_not_by_the_millisecond() {
    // The message whose answer ended the session began before the view showed the end.
    let outcome = super::ux::session_end(&ended_evidence(0));
    assert!(
        !matches!(outcome, Outcome::Broken(_)),
        "the ending message itself: {outcome:?}"
    );
    // Negative control: a message taken after the view showed the end, in the same ms.
    let outcome = super::ux::session_end(&ended_evidence(1));
    assert!(
        matches!(&outcome, Outcome::Broken(why) if why.contains("accepted a message")),
        "{outcome:?}"
    );
}

/// A client that went in the clear to a TLS mock fails WS-1, whether it was the socket
/// (`ws://`) or a REST call (`http://`); a TLS-only run with the same calls keeps it.
#[test]
fn a_request_in_the_clear_to_a_tls_mock_breaks_ws1() {
    let plaintext = |mut call: HttpCall, endpoint: &str| {
        call.request.plaintext = true;
        call.status = 400;
        call.endpoint = serde_json::from_value(json!(endpoint)).expect("an endpoint");
        call
    };
    let ws1 = |http: Vec<HttpCall>| {
        let mut e = reconnect_evidence(1_400, None, 5);
        e.http = http;
        super::ws::handshake_parameters(&e)
    };
    let mut fine = reconnect_evidence(1_400, None, 5).http;
    for call in &mut fine {
        call.request.query.insert("access_token".into(), "t".into());
    }
    assert!(
        matches!(ws1(fine.clone()), Outcome::Kept(_)),
        "{:?}",
        ws1(fine.clone())
    );
    for (endpoint, says) in [
        ("/ws", "opened /ws with ws://"),
        (
            "/api/v1/access-token",
            "sent POST /api/v1/access-token over http://",
        ),
    ] {
        let mut http = fine.clone();
        http.insert(0, plaintext(handshake_call(1, None), endpoint));
        match ws1(http) {
            Outcome::Broken(reason) => assert!(reason.contains(says), "{reason}"),
            other => panic!("{endpoint} in the clear: {other:?}"),
        }
    }
}

/// A message sent at 100 ms on connection 1, which the server closes at 500 ms; connection 2
/// opens at 1,000 ms, its history (at 1,100 ms) carries the message's echo when `echoed`, and
/// the client sends the message again at 1,150 ms with `metadata.custom` `custom`.
fn resend_on_reconnect_evidence(echoed: bool, custom: &str) -> Evidence {
    let message = |custom: &str| {
        json!({"type": "EVENT_TYPE_USER_MESSAGE", "payload": {"text": "hello"},
               "metadata": {"custom": {"client_event_id": custom}}})
    };
    let echo = {
        let mut echo = frame(
            "e2",
            Some(2),
            "EVENT_TYPE_USER_MESSAGE",
            json!({"text": "hello", "message_id": "m2"}),
        );
        echo["metadata"] = json!({"custom": {"client_event_id": "a"}});
        echo
    };
    let start = frame("e1", Some(1), "EVENT_TYPE_SESSION_START", json!({}));
    let history = if echoed {
        vec![start.clone(), echo]
    } else {
        vec![start.clone()]
    };
    let batch = |events: Vec<serde_json::Value>| json!({"type": "EVENT_TYPE_EVENT_BATCH", "payload": {"events": events}});
    let record = session(vec![
        entry(
            5,
            json!({"kind": "handshake", "conn": 1, "query": {}, "status": 101}),
        ),
        entry(
            10,
            json!({"kind": "server_frame", "conn": 1, "frame": batch(vec![start])}),
        ),
        entry(
            100,
            json!({"kind": "client_frame", "conn": 1, "frame": message("a")}),
        ),
        entry(
            500,
            json!({"kind": "close", "conn": 1, "by": "server", "code": 1001}),
        ),
        entry(
            1_000,
            json!({"kind": "handshake", "conn": 2, "query": {"cursor": "1"}, "status": 101}),
        ),
        entry(
            1_100,
            json!({"kind": "server_frame", "conn": 2, "frame": batch(history)}),
        ),
        entry(
            1_150,
            json!({"kind": "client_frame", "conn": 2, "frame": message(custom)}),
        ),
    ]);
    Evidence {
        case: crate::cases::catalogue().expect("cases")[0]
            .instantiate(&crate::params::Params::draw(0))
            .expect("instantiates"),
        sessions: vec![record],
        http: vec![handshake_call(5, None), handshake_call(1_000, Some(1))],
        samples: Vec::new(),
        steps: Vec::new(),
        expectations: Vec::new(),
        exit_ms: 2_000,
        end_ms: 2_000,
    }
}

#[test]
fn a_message_resent_on_a_connection_whose_history_held_its_echo_breaks_msg5() {
    let judge = |echoed, custom| {
        super::messages::lost_messages_resent(&resend_on_reconnect_evidence(echoed, custom))
    };
    // The history had no echo: resending right after the reconnect is what MSG-5 asks.
    let outcome = judge(false, "a");
    assert!(matches!(outcome, Outcome::Kept(_)), "{outcome:?}");
    // The history held the echo: the server got the message twice.
    let outcome = judge(true, "a");
    assert!(
        matches!(&outcome, Outcome::Broken(why) if why.contains("history held its echo")),
        "{outcome:?}"
    );
    // Differently broken: a resend that is not the same event (another metadata.custom).
    let outcome = judge(false, "b");
    assert!(
        matches!(&outcome, Outcome::Broken(why) if why.contains("metadata.custom")),
        "{outcome:?}"
    );
}

/// The driver carried out the `restart` step at `at_ms`.
fn restarted_at(e: &mut Evidence, at_ms: u64) {
    e.steps.push(StepRecord {
        index: 0,
        step: crate::cases::Step::Restart,
        at_ms,
        samples_before: 0,
        reply: StepReply::Ok,
    });
}

#[test]
fn a_restarted_app_connects_at_once_without_breaking_rc3() {
    // The drop at 1,500 ms, then a handshake 300 ms later; `restart`: the app restarted just
    // before that handshake.
    let judge = |restart: bool| {
        let mut e = reconnect_evidence(200, Some(1001), 5);
        e.http[1] = handshake_call(1_800, Some(5));
        if restart {
            restarted_at(&mut e, 1_700);
        }
        super::reconnect::backoff_grows(&e)
    };
    let outcome = judge(false);
    assert!(
        matches!(&outcome, Outcome::Broken(why) if why.contains("first retry 300 ms")),
        "the same instance retried too soon: {outcome:?}"
    );
    let outcome = judge(true);
    assert!(
        matches!(outcome, Outcome::NotObservable(_)),
        "a restarted app's first connection is not a retry: {outcome:?}"
    );
}

#[test]
fn attempts_a_restarted_app_makes_are_not_counted_against_the_instance_that_lost_the_socket() {
    // The drop at 1,500 ms; one refused attempt at 2,500 ms by the app that saw it, then
    // (with `restart`) the app restarts at 3,000 ms and its new instance tries the session
    // `max` more times. Without the restart, the same handshakes are one instance's
    // `max + 1` attempts.
    let judge = |restart: bool| {
        let mut e = reconnect_evidence(200, Some(1001), 5);
        let max = u64::from(e.case.config.max_reconnect_attempts);
        let refused = |at_ms: u64| {
            let mut call = handshake_call(at_ms, Some(5));
            call.status = 503;
            call
        };
        e.http.truncate(1);
        e.http.push(refused(2_500));
        e.http.extend((0..max).map(|n| refused(3_100 + 1_000 * n)));
        if restart {
            restarted_at(&mut e, 3_000);
        }
        (max, super::reconnect::gives_up_after_max_attempts(&e))
    };
    let (max, outcome) = judge(false);
    assert!(
        matches!(&outcome, Outcome::Broken(why) if why.starts_with(&format!("{} attempt(s)", max + 1))),
        "one instance made one attempt too many: {outcome:?}"
    );
    let (_, outcome) = judge(true);
    assert!(
        matches!(outcome, Outcome::NotObservable(_)),
        "two instances' attempts are not one instance's count: {outcome:?}"
    );
}
