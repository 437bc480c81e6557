//! Every bad client frame of spec §10.6 and §12 B7–B11, B13, with the exact error string.

use mock_server::protocol::{
    ClientEvent, ClientFrameError, DecodeOptions, RawFrame, catalog, decode_client_frame,
};

const FORMAT: &str = catalog::UNKNOWN_EVENT_OR_INVALID_FORMAT;

#[test]
fn each_bad_frame_gets_its_catalog_string() {
    let oversized = format!(
        r#"{{"type":"EVENT_TYPE_USER_MESSAGE","payload":{{"text":"{}"}}}}"#,
        "x".repeat(131_072)
    );
    // (case, frame, expected SYSTEM_MESSAGE text, expected metadata echoed)
    let cases: Vec<(&str, RawFrame<'_>, String, bool)> = vec![
        (
            "§10.6 not JSON",
            RawFrame::Text("{not json"),
            FORMAT.into(),
            false,
        ),
        (
            "§10.6 empty frame",
            RawFrame::Text(""),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B11 JSON array",
            RawFrame::Text(r#"[{"type":"EVENT_TYPE_HEARTBEAT"}]"#),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B11 JSON string",
            RawFrame::Text(r#""EVENT_TYPE_HEARTBEAT""#),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B11 JSON null",
            RawFrame::Text("null"),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B11 binary frame",
            RawFrame::Binary(br#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{}}"#),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B11 binary, not UTF-8",
            RawFrame::Binary(&[0xff, 0xfe, 0x00]),
            FORMAT.into(),
            false,
        ),
        (
            "§10.6 missing type",
            RawFrame::Text(r#"{"payload":{},"metadata":{"custom":{"k":"v"}}}"#),
            FORMAT.into(),
            true,
        ),
        (
            "§10.6 type not a string",
            RawFrame::Text(r#"{"type":7,"payload":{},"metadata":{"custom":{"k":"v"}}}"#),
            FORMAT.into(),
            true,
        ),
        (
            "§10.6 unknown type",
            RawFrame::Text(
                r#"{"type":"EVENT_TYPE_NOPE","payload":{},"metadata":{"custom":{"k":"v"}}}"#,
            ),
            FORMAT.into(),
            true,
        ),
        (
            "§10.6 lowercase type",
            RawFrame::Text(r#"{"type":"event_type_heartbeat","payload":{}}"#),
            FORMAT.into(),
            false,
        ),
        (
            "§10.6 server-only type",
            RawFrame::Text(
                r#"{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE","payload":{},"metadata":{"custom":{"k":"v"}}}"#,
            ),
            "Event type not allowed: EVENT_TYPE_POLY_AGENT_MESSAGE".into(),
            true,
        ),
        (
            "§10.6 server-only batch",
            RawFrame::Text(r#"{"type":"EVENT_TYPE_EVENT_BATCH","payload":{"events":[]}}"#),
            "Event type not allowed: EVENT_TYPE_EVENT_BATCH".into(),
            false,
        ),
        (
            "§12 F4 join with greeting",
            RawFrame::Text(
                r#"{"type":"EVENT_TYPE_REQUEST_POLY_AGENT_JOIN_WITH_GREETING_MESSAGE","payload":{}}"#,
            ),
            "Event type not allowed: EVENT_TYPE_REQUEST_POLY_AGENT_JOIN_WITH_GREETING_MESSAGE"
                .into(),
            false,
        ),
        (
            "§12 B9 missing payload",
            RawFrame::Text(r#"{"type":"EVENT_TYPE_HEARTBEAT","metadata":{"custom":{"k":"v"}}}"#),
            FORMAT.into(),
            true,
        ),
        (
            "§12 B9 null payload",
            RawFrame::Text(r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":null}"#),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B9 payload is an array",
            RawFrame::Text(r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":[]}"#),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B9 payload is a string",
            RawFrame::Text(r#"{"type":"EVENT_TYPE_REQUEST_POLY_AGENT_JOIN","payload":"{}"}"#),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B10 message without text",
            RawFrame::Text(
                r#"{"type":"EVENT_TYPE_USER_MESSAGE","payload":{},"metadata":{"custom":{"k":"v"}}}"#,
            ),
            FORMAT.into(),
            true,
        ),
        (
            "§12 B10 empty text",
            RawFrame::Text(r#"{"type":"EVENT_TYPE_USER_MESSAGE","payload":{"text":""}}"#),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B10 text is a number",
            RawFrame::Text(r#"{"type":"EVENT_TYPE_USER_MESSAGE","payload":{"text":42}}"#),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B10 text is null",
            RawFrame::Text(r#"{"type":"EVENT_TYPE_USER_MESSAGE","payload":{"text":null}}"#),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B10 unknown typing state",
            RawFrame::Text(
                r#"{"type":"EVENT_TYPE_USER_TYPING","payload":{"state":"TYPING_STATE_PAUSED"}}"#,
            ),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B10 typing state missing",
            RawFrame::Text(r#"{"type":"EVENT_TYPE_USER_TYPING","payload":{}}"#),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B10 typing state not a string",
            RawFrame::Text(r#"{"type":"EVENT_TYPE_USER_TYPING","payload":{"state":true}}"#),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B7 metadata without custom",
            RawFrame::Text(
                r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{},"metadata":{"local_id":"a"}}"#,
            ),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B7 metadata not an object",
            RawFrame::Text(r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{},"metadata":"a"}"#),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B7 metadata null",
            RawFrame::Text(r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{},"metadata":null}"#),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B7 custom not an object",
            RawFrame::Text(
                r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{},"metadata":{"custom":[1]}}"#,
            ),
            FORMAT.into(),
            false,
        ),
        (
            "§10.6 duplicate key",
            RawFrame::Text(
                r#"{"type":"EVENT_TYPE_HEARTBEAT","type":"EVENT_TYPE_HEARTBEAT","payload":{}}"#,
            ),
            FORMAT.into(),
            false,
        ),
        (
            "§12 B13 oversized frame",
            RawFrame::Text(&oversized),
            "Message too large".into(),
            false,
        ),
    ];
    let options = DecodeOptions::default();
    for (case, frame, expected, echoes_metadata) in cases {
        let rejection = match decode_client_frame(frame, &options) {
            Ok(frame) => panic!("{case}: accepted as {frame:?}"),
            Err(rejection) => rejection,
        };
        assert_eq!(
            rejection.error.system_message(),
            expected,
            "{case}: {:?}",
            rejection.error
        );
        assert_eq!(
            rejection.metadata.is_some(),
            echoes_metadata,
            "{case}: metadata echo"
        );
        if let Some(metadata) = rejection.metadata {
            assert_eq!(metadata.custom_str("k"), Some("v"), "{case}");
        }
    }
}

#[test]
fn a_frame_at_exactly_the_size_limit_is_accepted_and_one_byte_more_is_not() {
    let options = DecodeOptions {
        max_message_size_bytes: 64,
        ..DecodeOptions::default()
    };
    let base = r#"{"type":"EVENT_TYPE_USER_MESSAGE","payload":{"text":""}}"#;
    let text = "y".repeat(64 - base.len());
    let exact = format!(r#"{{"type":"EVENT_TYPE_USER_MESSAGE","payload":{{"text":"{text}"}}}}"#);
    assert_eq!(exact.len(), 64);
    assert!(decode_client_frame(RawFrame::Text(&exact), &options).is_ok());
    let over = format!(r#"{{"type":"EVENT_TYPE_USER_MESSAGE","payload":{{"text":"{text}y"}}}}"#);
    let rejection = decode_client_frame(RawFrame::Text(&over), &options).expect_err("too large");
    assert_eq!(
        rejection.error,
        ClientFrameError::TooLarge {
            size: 65,
            limit: 64
        }
    );
}

#[test]
fn the_configurable_leniencies_of_spec_12_b9_and_b10_work_both_ways() {
    let no_payload = RawFrame::Text(r#"{"type":"EVENT_TYPE_HEARTBEAT"}"#);
    let blank = RawFrame::Text(r#"{"type":"EVENT_TYPE_USER_MESSAGE","payload":{"text":"   "}}"#);
    let strict = DecodeOptions {
        allow_blank_text: false,
        ..DecodeOptions::default()
    };
    let lenient = DecodeOptions {
        missing_payload_is_empty: true,
        ..DecodeOptions::default()
    };
    assert!(decode_client_frame(no_payload, &DecodeOptions::default()).is_err());
    assert_eq!(
        decode_client_frame(no_payload, &lenient)
            .expect("lenient")
            .event,
        ClientEvent::Heartbeat
    );
    assert!(decode_client_frame(blank, &DecodeOptions::default()).is_ok());
    assert!(decode_client_frame(blank, &strict).is_err());
}

#[test]
fn server_assigned_fields_are_reported_and_otherwise_ignored() {
    let frame = decode_client_frame(
        RawFrame::Text(
            r#"{"id":"x","sequence":9,"timestamp":"t","type":"EVENT_TYPE_HEARTBEAT","payload":{}}"#,
        ),
        &DecodeOptions::default(),
    )
    .expect("accepted (spec §12 B8)");
    assert_eq!(frame.event, ClientEvent::Heartbeat);
    assert_eq!(
        frame.server_assigned_fields,
        ["id", "sequence", "timestamp"]
    );
}

#[test]
fn unknown_payload_fields_are_dropped_not_rejected() {
    // Appendix A: a `greeting_message` on the join is dropped by the backend.
    let frame = decode_client_frame(
        RawFrame::Text(
            r#"{"type":"EVENT_TYPE_REQUEST_POLY_AGENT_JOIN","payload":{"greeting_message":"hi"}}"#,
        ),
        &DecodeOptions::default(),
    )
    .expect("accepted");
    assert_eq!(frame.event, ClientEvent::RequestPolyAgentJoin);
}
