//! The hostile-input suite: bad requests across REST, the handshake, WebSocket frames and the
//! control API, each with its documented answer, and after each one the server still serves a
//! whole ordinary session. (Raw malformed WebSocket frames are in `hostile_frames`; together
//! with them this is well over 150 distinct inputs; `the_suite_is_as_large_as_documented`
//! counts.)

use std::time::Duration;

use mock_server::{Config, MockServer};
use tokio_tungstenite::tungstenite::Message;

use crate::hostile::still_serves;
use crate::support::{
    Client, JOIN, access_token, bounded, http, new_session, new_session_client, start,
};

/// An HTTP request and its documented answer: status, and a string the body must contain.
struct Bad {
    name: String,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: String,
    status: u16,
    says: &'static str,
}

fn bad(
    name: impl Into<String>,
    method: &'static str,
    path: impl Into<String>,
    headers: Vec<(&'static str, String)>,
    body: impl Into<String>,
    status: u16,
    says: &'static str,
) -> Bad {
    Bad {
        name: name.into(),
        method,
        path: path.into(),
        headers,
        body: body.into(),
        status,
        says,
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

fn json() -> (&'static str, String) {
    (JSON.0, JSON.1.to_owned())
}

/// Sends each request; every answer must match, and the server must still serve after each.
async fn judge(server: &MockServer, cases: Vec<Bad>) -> usize {
    let count = cases.len();
    let mut wrong = Vec::new();
    for case in cases {
        let headers: Vec<(&str, &str)> =
            case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = http(server, case.method, &case.path, &headers, &case.body).await;
        let body = String::from_utf8_lossy(&response.body);
        if response.status.as_u16() != case.status || !body.contains(case.says) {
            wrong.push(format!(
                "{}: got {} {:?}; expected {} containing {:?}",
                case.name.chars().take(100).collect::<String>(),
                response.status.as_u16(),
                body.chars().take(300).collect::<String>(),
                case.status,
                case.says
            ));
        }
        still_serves(server).await;
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    count
}

fn access_token_inputs(token: &str, host: &str) -> Vec<Bad> {
    let path = "/api/v1/access-token";
    let missing = "Missing authentication headers";
    let unknown = "Connector token does not exist";
    let mismatch = "Failed to validate connector";
    let both = |t: &str, h: &str| vec![("x-token", t.to_owned()), ("x-host", h.to_owned()), json()];
    vec![
        bad(
            "token: no headers",
            "POST",
            path,
            vec![json()],
            "{}",
            401,
            missing,
        ),
        bad(
            "token: X-Token only",
            "POST",
            path,
            vec![("x-token", token.into())],
            "{}",
            401,
            missing,
        ),
        bad(
            "token: X-Host only",
            "POST",
            path,
            vec![("x-host", host.into())],
            "{}",
            401,
            missing,
        ),
        bad(
            "token: unknown connector",
            "POST",
            path,
            both("nope", host),
            "{}",
            401,
            unknown,
        ),
        bad(
            "token: empty connector token",
            "POST",
            path,
            both("", host),
            "{}",
            401,
            "",
        ),
        bad(
            "token: 8 KiB connector token",
            "POST",
            path,
            both(&"t".repeat(8192), host),
            "{}",
            401,
            unknown,
        ),
        bad(
            "token: other host",
            "POST",
            path,
            both(token, "https://evil.example"),
            "{}",
            401,
            mismatch,
        ),
        bad(
            "token: host suffix trick",
            "POST",
            path,
            both(token, &format!("{host}.evil.example")),
            "{}",
            401,
            mismatch,
        ),
        bad(
            "token: empty host",
            "POST",
            path,
            both(token, ""),
            "{}",
            401,
            "",
        ),
        bad(
            "token: host with a NUL escape",
            "POST",
            path,
            both(token, "www%00.example"),
            "{}",
            401,
            mismatch,
        ),
        bad(
            "token: unicode host",
            "POST",
            path,
            both(token, "https://ẁẁẁ.example"),
            "{}",
            401,
            "",
        ),
        bad(
            "token: scenario: unknown",
            "POST",
            path,
            both("scenario:no-such", host),
            "{}",
            401,
            unknown,
        ),
        bad(
            "token: scenario: traversal",
            "POST",
            path,
            both("scenario:../../etc/passwd", host),
            "{}",
            401,
            unknown,
        ),
        bad("token: GET", "GET", path, both(token, host), "", 405, ""),
        bad("token: PUT", "PUT", path, both(token, host), "{}", 405, ""),
        bad(
            "token: DELETE",
            "DELETE",
            path,
            both(token, host),
            "",
            405,
            "",
        ),
        // Bodies are ignored (spec §12 A5): the answer is a token whatever comes.
        bad(
            "token: body not JSON",
            "POST",
            path,
            both(token, host),
            "{not json",
            200,
            "access_token",
        ),
        bad(
            "token: body an array",
            "POST",
            path,
            both(token, host),
            "[1,2,3]",
            200,
            "access_token",
        ),
        bad(
            "token: body 1 MiB",
            "POST",
            path,
            both(token, host),
            "x".repeat(1 << 20),
            200,
            "access_token",
        ),
        bad(
            "token: body over the 2 MiB limit",
            "POST",
            path,
            both(token, host),
            "x".repeat(3 << 20),
            413,
            "",
        ),
        bad(
            "token: unknown path",
            "POST",
            "/api/v1/access-tokens",
            both(token, host),
            "{}",
            404,
            "",
        ),
        bad(
            "token: path with ..",
            "POST",
            "/api/v1/../v1/access-token",
            both(token, host),
            "{}",
            404,
            "",
        ),
    ]
}

fn session_inputs(token: &str) -> Vec<Bad> {
    let path = "/api/v1/sessions";
    let bearer = |v: &str| vec![("authorization", v.to_owned()), json()];
    let ok = || bearer(&format!("Bearer {token}"));
    let missing = "Missing access token";
    let malformed = "Missing authentication headers";
    let invalid = "Invalid access token";
    let parsing = "Error parsing request";
    // A JWT with `alg: none`, and one signed with another key.
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhY21lIiwiZXhwIjo0MTAyNDQ0ODAwfQ.";
    let forged = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJkZWZhdWx0IiwiaG9zdCI6ImxvY2FsaG9zdCIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwLCJqdGkiOiJ4In0.c2lnbmVkLXdpdGgtYW5vdGhlci1rZXk";
    let mut tampered = token.to_owned();
    let last = tampered
        .pop()
        .map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
    tampered.push(last);
    vec![
        bad(
            "sessions: no Authorization",
            "POST",
            path,
            vec![json()],
            "{}",
            400,
            missing,
        ),
        bad(
            "sessions: empty Authorization",
            "POST",
            path,
            bearer(""),
            "{}",
            401,
            malformed,
        ),
        bad(
            "sessions: Bearer and nothing",
            "POST",
            path,
            bearer("Bearer "),
            "{}",
            401,
            malformed,
        ),
        bad(
            "sessions: Basic scheme",
            "POST",
            path,
            bearer("Basic dXNlcjpwYXNz"),
            "{}",
            401,
            malformed,
        ),
        bad(
            "sessions: garbage token",
            "POST",
            path,
            bearer("Bearer garbage"),
            "{}",
            401,
            invalid,
        ),
        bad(
            "sessions: three empty JWT parts",
            "POST",
            path,
            bearer("Bearer .."),
            "{}",
            401,
            invalid,
        ),
        bad(
            "sessions: alg none",
            "POST",
            path,
            bearer(&format!("Bearer {none}")),
            "{}",
            401,
            invalid,
        ),
        bad(
            "sessions: signed with another key",
            "POST",
            path,
            bearer(&format!("Bearer {forged}")),
            "{}",
            401,
            invalid,
        ),
        bad(
            "sessions: signature tampered",
            "POST",
            path,
            bearer(&format!("Bearer {tampered}")),
            "{}",
            401,
            invalid,
        ),
        bad(
            "sessions: 64 KiB token",
            "POST",
            path,
            bearer(&format!("Bearer {}", "a".repeat(65_536))),
            "{}",
            401,
            invalid,
        ),
        bad(
            "sessions: streaming_enabled a string",
            "POST",
            path,
            ok(),
            r#"{"streaming_enabled":"yes"}"#,
            400,
            parsing,
        ),
        bad(
            "sessions: streaming_enabled a number",
            "POST",
            path,
            ok(),
            r#"{"streaming_enabled":1}"#,
            400,
            parsing,
        ),
        bad(
            "sessions: streaming_enabled null",
            "POST",
            path,
            ok(),
            r#"{"streaming_enabled":null}"#,
            200,
            "session_id",
        ),
        bad(
            "sessions: platform a number",
            "POST",
            path,
            ok(),
            r#"{"platform":5}"#,
            400,
            parsing,
        ),
        bad(
            "sessions: platform an object",
            "POST",
            path,
            ok(),
            r#"{"platform":{}}"#,
            400,
            parsing,
        ),
        bad(
            "sessions: body an array",
            "POST",
            path,
            ok(),
            "[]",
            400,
            parsing,
        ),
        bad(
            "sessions: body a string",
            "POST",
            path,
            ok(),
            r#""{}""#,
            400,
            parsing,
        ),
        bad(
            "sessions: body null",
            "POST",
            path,
            ok(),
            "null",
            400,
            parsing,
        ),
        bad(
            "sessions: body not JSON",
            "POST",
            path,
            ok(),
            "{streaming_enabled: true}",
            400,
            parsing,
        ),
        bad(
            "sessions: body truncated",
            "POST",
            path,
            ok(),
            r#"{"streaming_enabled": tr"#,
            400,
            parsing,
        ),
        bad(
            "sessions: deeply nested body",
            "POST",
            path,
            ok(),
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
            400,
            parsing,
        ),
        bad(
            "sessions: unknown fields ignored",
            "POST",
            path,
            ok(),
            r#"{"admin":true,"x":[1,2]}"#,
            200,
            "session_id",
        ),
        bad(
            "sessions: unknown platform accepted",
            "POST",
            path,
            ok(),
            r#"{"platform":"toaster"}"#,
            200,
            "session_id",
        ),
        bad(
            "sessions: body over the 2 MiB limit",
            "POST",
            path,
            ok(),
            "x".repeat(3 << 20),
            413,
            "",
        ),
        bad("sessions: GET", "GET", path, ok(), "", 405, ""),
    ]
}

fn control_inputs() -> Vec<Bad> {
    let j = || vec![json()];
    let clock = |body: &str, status: u16, says: &'static str| {
        bad(
            format!("clock: {body}"),
            "POST",
            "/_mock/clock",
            j(),
            body,
            status,
            says,
        )
    };
    let failures = |body: &str, status: u16, says: &'static str| {
        bad(
            format!("http-failures: {body}"),
            "POST",
            "/_mock/http-failures",
            j(),
            body,
            status,
            says,
        )
    };
    let scenario = |body: &str, status: u16, says: &'static str| {
        bad(
            format!("next-scenario: {body}"),
            "PUT",
            "/_mock/next-scenario",
            j(),
            body,
            status,
            says,
        )
    };
    let unreadable = mock_server::scenario::UNREADABLE;
    let unknown = "00000000-0000-4000-8000-000000000000";
    vec![
        clock("{}", 400, "advance_ms"),
        clock(r#"{"advance_ms": -1}"#, 400, "advance_ms"),
        clock(r#"{"advance_ms": 1.5}"#, 400, "advance_ms"),
        clock(r#"{"advance_ms": "10"}"#, 400, "advance_ms"),
        clock(r#"{"advance_ms": 1e300}"#, 400, "advance_ms"),
        clock(r#"{"advance_ms": 18446744073709551615}"#, 400, "advance_ms"),
        clock(r#"{"advance_ms": 18446744073709551616}"#, 400, "advance_ms"),
        clock(r#"{"advance_ms": null}"#, 400, "advance_ms"),
        clock(r#"{"scale": 0}"#, 400, "scale"),
        clock(r#"{"scale": -2}"#, 400, "scale"),
        clock(r#"{"scale": 1e-20}"#, 400, "scale"),
        clock(r#"{"scale": 1e7}"#, 400, "scale"),
        clock(r#"{"scale": 1e400}"#, 400, "number out of range"),
        clock(r#"{"scale": "fast"}"#, 400, "scale"),
        clock(r#"{"scale": true}"#, 400, "scale"),
        clock(r#"{"advance": 5}"#, 400, "advance"),
        clock("[]", 400, ""),
        clock("not json", 400, ""),
        clock("", 400, ""),
        failures(r#"{"access_token": -1}"#, 400, "access_token"),
        failures(r#"{"access_token": "3"}"#, 400, "access_token"),
        failures(r#"{"sessions": 1e3}"#, 400, "sessions"),
        failures(r#"{"sessions": 4294967296}"#, 400, "sessions"),
        failures(
            r#"{"sessions_429": {"count": 1, "retry_after_seconds": -5}}"#,
            400,
            "retry_after_seconds",
        ),
        failures(
            r#"{"sessions_429": {"count": 1, "retry_after_seconds": 1e9}}"#,
            400,
            "retry_after_seconds",
        ),
        failures(
            r#"{"sessions_429": {"retry_after_seconds": 1}}"#,
            400,
            "count",
        ),
        failures(r#"{"access_token_429": 3}"#, 400, "access_token_429"),
        failures(r#"{"everything": 1}"#, 400, "everything"),
        failures("null", 400, ""),
        scenario(r#"{"scenario": "no-such-scenario"}"#, 400, unreadable),
        scenario(r#"{"scenario": ""}"#, 400, unreadable),
        scenario(r#"{"scenario": "../../../../etc/passwd"}"#, 400, unreadable),
        scenario(r#"{"scenario": "/etc/hostname"}"#, 400, unreadable),
        scenario(r#"{"scenario": "/no/such/dir/x.json"}"#, 400, unreadable),
        scenario(r#"{"scenario": "/proc/self/mem"}"#, 400, unreadable),
        scenario(r#"{"scenario": "/"}"#, 400, unreadable),
        scenario(r#"{"scenario": 7}"#, 400, "scenario"),
        scenario(r#"{"scenario": null}"#, 400, "scenario"),
        scenario(r#"{"name": "playground"}"#, 400, "name"),
        scenario(
            &format!(r#"{{"scenario": "{}"}}"#, "a".repeat(100_000)),
            400,
            unreadable,
        ),
        bad(
            "connector scenario: unknown connector",
            "PUT",
            "/_mock/connectors/tok/scenario",
            j(),
            r#"{"scenario": "playground"}"#,
            400,
            "no connector with token",
        ),
        bad(
            "steps: unknown session",
            "POST",
            format!("/_mock/sessions/{unknown}/steps"),
            j(),
            r#""handoff_accepted""#,
            404,
            "",
        ),
        bad(
            "steps: not UTF-8 in the id",
            "POST",
            "/_mock/sessions/%00%ff/steps",
            j(),
            r#""handoff_accepted""#,
            400,
            "Invalid URL",
        ),
        bad(
            "faults: unknown session",
            "POST",
            format!("/_mock/sessions/{unknown}/faults"),
            j(),
            r#""drop""#,
            404,
            "",
        ),
        bad(
            "end: unknown session",
            "POST",
            format!("/_mock/sessions/{unknown}/end"),
            j(),
            "{}",
            404,
            "",
        ),
        bad(
            "journal: unknown session",
            "GET",
            format!("/_mock/sessions/{unknown}/journal"),
            vec![],
            "",
            404,
            "",
        ),
        bad(
            "journal: follow=maybe",
            "GET",
            format!("/_mock/sessions/{unknown}/journal?follow=maybe"),
            vec![],
            "",
            400,
            "",
        ),
        bad(
            "session: 10 KiB id",
            "GET",
            format!("/_mock/sessions/{}", "s".repeat(10_240)),
            vec![],
            "",
            404,
            "",
        ),
        bad("reset: GET", "GET", "/_mock/reset", vec![], "", 405, ""),
        bad(
            "unknown control path",
            "GET",
            "/_mock/admin",
            vec![],
            "",
            404,
            "",
        ),
        bad(
            "ui path traversal",
            "GET",
            "/_mock/../api/v1/access-token",
            vec![],
            "",
            404,
            "",
        ),
    ]
}

/// Control inputs on a live session: steps and faults that do not parse or do not fit.
fn session_control_inputs(session: &str) -> Vec<Bad> {
    let steps = |body: &str, status: u16, says: &'static str| {
        bad(
            format!("steps: {body}"),
            "POST",
            format!("/_mock/sessions/{session}/steps"),
            vec![json()],
            body,
            status,
            says,
        )
    };
    let faults = |body: &str, status: u16, says: &'static str| {
        bad(
            format!("faults: {body}"),
            "POST",
            format!("/_mock/sessions/{session}/faults"),
            vec![json()],
            body,
            status,
            says,
        )
    };
    vec![
        steps(r#""no_such_step""#, 400, ""),
        steps(r#"{"reply": {"text": 5}}"#, 400, "/reply/text"),
        steps(r#"{"reply": {}}"#, 400, "reply"),
        steps(r#"{"pause_ms": -1}"#, 400, "pause_ms"),
        steps(r#"{"pause_ms": 1e30}"#, 400, "pause_ms"),
        steps(r#"{"think_ms": "soon"}"#, 400, "think_ms"),
        steps(r#"[{"reply": {"text": "a"}}, {"bogus": 1}]"#, 400, "/1"),
        steps(r#"{"live_agent_message": {"text": "Hi"}}"#, 409, ""),
        steps("[]", 200, r#""accepted":0"#),
        steps("{", 400, ""),
        faults(r#""explode""#, 400, ""),
        faults(r#"{"close": 70000}"#, 400, "close"),
        faults(r#"{"close": "1000"}"#, 400, "close"),
        faults(
            r#"{"refuse_handshakes": {"count": -1, "status": 503}}"#,
            400,
            "count",
        ),
        faults(
            r#"{"refuse_handshakes": {"count": 1, "status": 99}}"#,
            400,
            "status",
        ),
        faults(
            r#"{"refuse_handshakes": {"count": 1, "status": 1000}}"#,
            400,
            "status",
        ),
        faults(
            r#"{"refuse_handshakes": {"count": 1, "status": 200}}"#,
            400,
            "status",
        ),
        faults(r#"{"duplicate_next": -3}"#, 400, ""),
        faults("null", 400, ""),
        bad(
            "end: reason an array",
            "POST",
            format!("/_mock/sessions/{session}/end"),
            vec![json()],
            r#"{"reason": ["REASON_USER_END"]}"#,
            400,
            "reason",
        ),
        bad(
            "end: reason a number",
            "POST",
            format!("/_mock/sessions/{session}/end"),
            vec![json()],
            r#"{"reason": 3}"#,
            400,
            "reason",
        ),
        // Last, as it ends the session: an undocumented reason is played as given, for
        // clients' tolerance tests (spec §12 D5).
        steps(r#"{"end": "REASON_NOT_A_REASON"}"#, 200, "accepted"),
    ]
}

#[tokio::test]
async fn rest_inputs_get_their_documented_answers_and_the_server_still_serves() {
    bounded(async {
        let server = start(Config::default()).await;
        let (connector, host) = server.credentials();
        let token = access_token(&server).await;
        let mut count = judge(&server, access_token_inputs(&connector, &host)).await;
        count += judge(&server, session_inputs(&token)).await;
        assert!(count >= 45, "{count} REST inputs");
    })
    .await;
}

#[tokio::test]
async fn control_inputs_get_their_documented_answers_and_the_server_still_serves() {
    bounded(async {
        let server = start(Config::default()).await;
        let mut count = judge(&server, control_inputs()).await;
        let (_, session) = new_session(&server, false).await;
        count += judge(&server, session_control_inputs(&session)).await;
        assert!(count >= 65, "{count} control inputs");
    })
    .await;
}

/// `Ok(())`: accepted; else the refusal's status and body.
type HandshakeAnswer = Result<(), (u16, &'static str)>;

/// A handshake variant (the query after `/ws?`) and its answer: `Ok(())` for an accepted
/// handshake, else status and body.
fn handshake_inputs(
    session: &str,
    token: &str,
    other_token: &str,
) -> Vec<(String, HandshakeAnswer)> {
    let params = "invalid connection parameters";
    let not_found = "session not found";
    let auth = "authentication failed";
    let unknown = "00000000-0000-4000-8000-000000000000";
    vec![
        (String::new(), Err((400, params))),
        (format!("session_id={session}"), Err((400, params))),
        (format!("access_token={token}"), Err((400, params))),
        (
            format!("session_id=&access_token={token}"),
            Err((400, params)),
        ),
        (
            format!("session_id={session}&access_token="),
            Err((400, params)),
        ),
        (
            format!("session_id={unknown}&access_token={token}"),
            Err((404, not_found)),
        ),
        (
            format!("session_id={unknown}&access_token=garbage"),
            Err((401, auth)),
        ),
        (
            format!("session_id={session}&access_token=garbage"),
            Err((401, auth)),
        ),
        (
            format!("session_id={session}&access_token={other_token}"),
            Err((401, auth)),
        ),
        (
            format!("session_id={}&access_token={token}", "s".repeat(8_000)),
            Err((404, not_found)),
        ),
        (
            format!("session_id={session}%00&access_token={token}"),
            Err((404, not_found)),
        ),
        (
            format!("session_id={session}&access_token={token}&session_id={unknown}"),
            Err((400, params)),
        ),
        (
            format!("session_id={session}&access_token={token}%ZZ"),
            Err((401, auth)),
        ),
        // A cursor the server cannot read replays everything (spec §12 C1): accepted.
        (
            format!("session_id={session}&access_token={token}&cursor=garbage"),
            Ok(()),
        ),
        (
            format!("session_id={session}&access_token={token}&cursor=-5"),
            Ok(()),
        ),
        (
            format!("session_id={session}&access_token={token}&cursor=99999999999999999999999"),
            Ok(()),
        ),
        (
            format!("session_id={session}&access_token={token}&cursor=seq:"),
            Ok(()),
        ),
        (
            format!(
                "session_id={session}&access_token={token}&cursor={}",
                "9".repeat(4_000)
            ),
            Ok(()),
        ),
    ]
}

#[tokio::test]
async fn handshake_inputs_get_their_documented_answers_and_the_server_still_serves() {
    bounded(async {
        let server = start(Config::default()).await;
        let (token, session) = new_session(&server, false).await;
        let (other_token, _) = new_session(&server, false).await;
        let inputs = handshake_inputs(&session, &token, &other_token);
        assert!(inputs.len() >= 18);
        let mut wrong = Vec::new();
        for (query, expected) in inputs {
            let url = format!("{}?{query}", server.ws_url());
            let got = match Client::connect(&url).await {
                Ok(mut client) => {
                    client.send_raw(Message::Close(None)).await;
                    Ok(())
                }
                Err(refused) => Err((refused.status, refused.body)),
            };
            let matches = match (&got, &expected) {
                (Ok(()), Ok(())) => true,
                (Err((status, body)), Err((want, says))) => status == want && body == says,
                _ => false,
            };
            if !matches {
                wrong.push(format!(
                    "{}: got {got:?}, expected {expected:?}",
                    query.chars().take(120).collect::<String>()
                ));
            }
            still_serves(&server).await;
        }
        // Not an upgrade at all.
        let plain = http(
            &server,
            "GET",
            &format!("/ws?session_id={session}&access_token={token}"),
            &[],
            "",
        )
        .await;
        assert_eq!(plain.status.as_u16(), 400, "a plain GET is refused");
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    })
    .await;
}

/// A client frame and the answer on the socket: the `SYSTEM_MESSAGE` error text, or the type
/// of the event that answers an accepted frame.
fn frame_inputs() -> Vec<(String, Message, &'static str)> {
    let format = "Unknown event type or invalid message format";
    let text = |s: &str| Message::text(s.to_owned());
    let user =
        |payload: &str| format!(r#"{{"type":"EVENT_TYPE_USER_MESSAGE","payload":{payload}}}"#);
    let mut inputs: Vec<(String, Message, &'static str)> = vec![
        ("not JSON".into(), text("{not json"), format),
        ("empty".into(), text(""), format),
        ("whitespace".into(), text("   \n"), format),
        ("an array".into(), text("[]"), format),
        ("a number".into(), text("42"), format),
        ("a string".into(), text(r#""hello""#), format),
        ("null".into(), text("null"), format),
        ("true".into(), text("true"), format),
        ("no type".into(), text(r#"{"payload":{}}"#), format),
        (
            "type null".into(),
            text(r#"{"type":null,"payload":{}}"#),
            format,
        ),
        (
            "type a number".into(),
            text(r#"{"type":7,"payload":{}}"#),
            format,
        ),
        (
            "type an array".into(),
            text(r#"{"type":["EVENT_TYPE_HEARTBEAT"],"payload":{}}"#),
            format,
        ),
        (
            "unknown type".into(),
            text(r#"{"type":"EVENT_TYPE_NOPE","payload":{}}"#),
            format,
        ),
        (
            "lowercase type".into(),
            text(r#"{"type":"event_type_heartbeat","payload":{}}"#),
            format,
        ),
        (
            "type with spaces".into(),
            text(r#"{"type":" EVENT_TYPE_HEARTBEAT ","payload":{}}"#),
            format,
        ),
        (
            "8 KiB type".into(),
            text(&format!(
                r#"{{"type":"{}","payload":{{}}}}"#,
                "T".repeat(8192)
            )),
            format,
        ),
        (
            "payload missing".into(),
            text(r#"{"type":"EVENT_TYPE_USER_MESSAGE"}"#),
            format,
        ),
        ("payload an array".into(), text(&user("[]")), format),
        ("payload a string".into(), text(&user(r#""hi""#)), format),
        ("payload null".into(), text(&user("null")), format),
        ("text missing".into(), text(&user("{}")), format),
        ("text a number".into(), text(&user(r#"{"text":5}"#)), format),
        ("text null".into(), text(&user(r#"{"text":null}"#)), format),
        (
            "text an object".into(),
            text(&user(r#"{"text":{"a":1}}"#)),
            format,
        ),
        (
            "text an array".into(),
            text(&user(r#"{"text":["a"]}"#)),
            format,
        ),
        (
            "trailing garbage".into(),
            text(&format!("{} x", user(r#"{"text":"a"}"#))),
            format,
        ),
        (
            "two objects".into(),
            text(&format!("{0}{0}", user(r#"{"text":"a"}"#))),
            format,
        ),
        (
            "a lone surrogate escape".into(),
            text(&user(r#"{"text":"\ud800"}"#)),
            format,
        ),
        (
            "a bad escape".into(),
            text(&user(r#"{"text":"\q"}"#)),
            format,
        ),
        ("NaN".into(), text(&user(r#"{"text":NaN}"#)), format),
        (
            "nesting 10 000 deep".into(),
            text(&format!(
                r#"{{"type":"EVENT_TYPE_HEARTBEAT","payload":{}{}}}"#,
                "[".repeat(10_000),
                "]".repeat(10_000)
            )),
            format,
        ),
        (
            "a binary frame".into(),
            Message::binary(user(r#"{"text":"a"}"#).into_bytes()),
            format,
        ),
        (
            "binary, not UTF-8".into(),
            Message::binary(vec![0xff, 0xfe, 0x00]),
            format,
        ),
        (
            "a byte-order mark first".into(),
            text(&format!("\u{feff}{}", user(r#"{"text":"a"}"#))),
            format,
        ),
        (
            "server-only type".into(),
            text(r#"{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE","payload":{"text":"x"}}"#),
            "Event type not allowed: EVENT_TYPE_POLY_AGENT_MESSAGE",
        ),
        (
            "server-only SESSION_END".into(),
            text(r#"{"type":"EVENT_TYPE_SESSION_END","payload":{}}"#),
            "Event type not allowed: EVENT_TYPE_SESSION_END",
        ),
        (
            "server-only batch".into(),
            text(r#"{"type":"EVENT_TYPE_EVENT_BATCH","payload":{"events":[]}}"#),
            "Event type not allowed: EVENT_TYPE_EVENT_BATCH",
        ),
        (
            "over 128 KB".into(),
            text(&user(&format!(r#"{{"text":"{}"}}"#, "x".repeat(140_000)))),
            "Message too large",
        ),
        (
            "metadata a string".into(),
            text(r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{},"metadata":"x"}"#),
            format,
        ),
        // Accepted oddities: answered as the frame they are (spec §12 B7, B8, A6).
        (
            "duplicate keys".into(),
            text(r#"{"type":"EVENT_TYPE_HEARTBEAT","type":"EVENT_TYPE_HEARTBEAT","payload":{}}"#),
            format,
        ),
        (
            "server fields included".into(),
            text(
                r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{},"id":"x","sequence":9,"timestamp":"t"}"#,
            ),
            "EVENT_TYPE_HEARTBEAT",
        ),
        (
            "unknown payload fields".into(),
            text(&user(r#"{"text":"a","admin":true}"#)),
            "EVENT_TYPE_USER_MESSAGE",
        ),
        (
            "text with NUL and RTL marks".into(),
            text(&user(r#"{"text":"a\u0000b\u202e"}"#)),
            "EVENT_TYPE_USER_MESSAGE",
        ),
    ];
    inputs.push((
        "a number past f64 in metadata".into(),
        text(&format!(
            r#"{{"type":"EVENT_TYPE_HEARTBEAT","payload":{{}},"metadata":{{"custom":{{"n":1{}}}}}}}"#,
            "0".repeat(400)
        )),
        format,
    ));
    inputs
}

/// What the server answers to one frame: the system message's text, or the event's type.
async fn answer(client: &mut Client) -> String {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(3), client.next_event())
            .await
            .expect("an answer within 3 s");
        let kind = event["type"].as_str().unwrap_or_default().to_owned();
        match kind.as_str() {
            "EVENT_TYPE_SYSTEM_MESSAGE" => {
                return event["payload"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
            }
            // Typing and thinking come and go around answers.
            "EVENT_TYPE_POLY_AGENT_THINKING" | "EVENT_TYPE_POLY_AGENT_MESSAGE" => continue,
            _ => return kind,
        }
    }
}

#[tokio::test]
async fn frame_inputs_get_their_documented_answers_on_an_open_socket() {
    bounded(async {
        let server = start(Config::default()).await;
        let (_token, _session, mut client) = new_session_client(&server, false).await;
        client.next_event().await;
        client.send(JOIN).await;
        client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        let inputs = frame_inputs();
        assert!(inputs.len() >= 40, "{} frame inputs", inputs.len());
        let mut wrong = Vec::new();
        for (name, frame, expected) in inputs {
            client.send_raw(frame).await;
            let got = answer(&mut client).await;
            if got != expected {
                wrong.push(format!("{name}: got {got:?}, expected {expected:?}"));
            }
            // The same socket still works: a heartbeat is echoed.
            client
                .send(r#"{"type":"EVENT_TYPE_HEARTBEAT","payload":{}}"#)
                .await;
            let echo = answer(&mut client).await;
            if echo != "EVENT_TYPE_HEARTBEAT" {
                wrong.push(format!("{name}: after it, a heartbeat got {echo:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        still_serves(&server).await;
    })
    .await;
}

/// The suite's size, as the issue asks: at least 150 distinct inputs over all four surfaces.
#[test]
fn the_suite_is_as_large_as_documented() {
    let (s, t) = ("00000000-0000-4000-8000-000000000001", "tok");
    let http = access_token_inputs("c", "h").len()
        + session_inputs(t).len()
        + control_inputs().len()
        + session_control_inputs(s).len();
    let handshake = handshake_inputs(s, t, "other").len();
    let frames = frame_inputs().len() + crate::hostile_frames::violation_count();
    let total = http + handshake + frames;
    assert!(
        total >= 150,
        "{total} inputs ({http} HTTP, {handshake} handshake, {frames} frames)"
    );
}
