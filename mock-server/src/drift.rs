//! `messaging-mock drift RECORDING.jsonl`: plays the client side of a recorded session (a
//! `proxy` recording of the real service, or a mock's own `--record`) against a fresh mock and
//! reports where the mock's answers differ from what was recorded: event types and their
//! order, fields present on one side only, and differing values. Ids, timestamps and sequence
//! numbers are not compared (any key `id`, `timestamp`, `sequence` or ending in `_id`).
//!
//! The recording is cut at each client frame: the server frames between two client frames are
//! what the client frame was answered with. Each connection of the recording is replayed in
//! turn with its query (cursor included); a refused handshake is skipped.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde::Serialize;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::journal::{Closer, JournalEntry, JournalEvent};
use crate::{Config, MockServer};

/// How long the mock gets to send what the recording says came next (after the last
/// expected frame, a moment more for anything extra).
const ANSWER_WAIT: Duration = Duration::from_secs(5);
const EXTRA_WAIT: Duration = Duration::from_millis(150);

/// Why a drift check could not run.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("the recording has no accepted WebSocket connection to replay")]
    NothingToReplay,
    #[error("the mock: {0}")]
    Mock(String),
}

/// One way the mock's answer differs from the recording's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The recording's connection number.
    pub conn: u64,
    /// What the answer answered: `the connection's opening` or `client frame N (TYPE)`.
    pub after: String,
    pub what: String,
    /// A fault had been injected into the recorded session by then (it is not replayed).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub after_fault: bool,
}

/// What a drift check found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DriftReport {
    pub connections: usize,
    pub client_frames: usize,
    /// Server events the recording had (batches count as one).
    pub recorded_events: usize,
    /// The faults injected into the recorded session, as journaled.
    pub faults: Vec<String>,
    pub differences: Vec<Difference>,
}

/// The server frames that answered one client frame (or the opening).
#[derive(Debug, Default)]
struct Segment {
    client_frame: Option<String>,
    expected: Vec<Value>,
    /// A fault had been injected by the time this segment began or during it.
    after_fault: bool,
}

#[derive(Debug)]
struct Connection {
    conn: u64,
    query: BTreeMap<String, String>,
    segments: Vec<Segment>,
    /// The client closed it with this code (`None`: the server closed or it dropped).
    client_close: Option<u16>,
}

/// The connections of a recording, with what each client frame was answered with, and the
/// faults injected into it.
fn script(entries: &[JournalEntry]) -> (Vec<Connection>, Vec<String>) {
    let mut connections: Vec<Connection> = Vec::new();
    let mut faults = Vec::new();
    let mut open: Option<usize> = None;
    let conn_index =
        |connections: &[Connection], conn: u64| connections.iter().position(|c| c.conn == conn);
    for entry in entries {
        match &entry.event {
            JournalEvent::Handshake {
                conn: Some(conn),
                query,
                status: 101,
                ..
            } => {
                connections.push(Connection {
                    conn: *conn,
                    query: query.clone(),
                    segments: vec![Segment {
                        after_fault: !faults.is_empty(),
                        ..Segment::default()
                    }],
                    client_close: None,
                });
                open = Some(connections.len() - 1);
            }
            JournalEvent::ClientFrame {
                conn, frame, text, ..
            } => {
                if let Some(i) = conn_index(&connections, *conn) {
                    let sent = frame
                        .as_ref()
                        .map(|f| f.get().to_owned())
                        .or_else(|| text.clone())
                        .unwrap_or_default();
                    connections[i].segments.push(Segment {
                        client_frame: Some(sent),
                        expected: Vec::new(),
                        after_fault: !faults.is_empty(),
                    });
                }
            }
            JournalEvent::ServerFrame { conn, frame } => {
                let i = conn.and_then(|c| conn_index(&connections, c)).or(open);
                if let (Some(i), Ok(value)) = (i, serde_json::from_str::<Value>(frame.get()))
                    && let Some(segment) = connections[i].segments.last_mut()
                {
                    segment.expected.push(value);
                }
            }
            JournalEvent::Close {
                conn: Some(conn),
                code,
                by,
            } => {
                if let Some(i) = conn_index(&connections, *conn) {
                    if *by == Closer::Client {
                        connections[i].client_close = Some(code.unwrap_or(1000));
                    }
                    if open == Some(i) {
                        open = None;
                    }
                }
            }
            JournalEvent::Fault { fault } => {
                faults.push(fault.clone());
                // The open segments of every connection saw it arrive.
                for connection in &mut connections {
                    if let Some(segment) = connection.segments.last_mut() {
                        segment.after_fault = true;
                    }
                }
            }
            _ => {}
        }
    }
    (connections, faults)
}

/// Whether the recorded session streamed (its creation's body says so).
fn streaming(entries: &[JournalEntry]) -> bool {
    entries.iter().any(|e| match &e.event {
        JournalEvent::Http {
            endpoint: crate::http_log::Endpoint::Sessions,
            body: Some(body),
            ..
        } => serde_json::from_str::<Value>(body).is_ok_and(|b| b["streaming_enabled"] == true),
        _ => false,
    })
}

/// Plays the client side of `entries` against a fresh mock started with `config` and compares.
pub async fn drift(entries: &[JournalEntry], config: Config) -> Result<DriftReport, DriftError> {
    let (connections, faults) = script(entries);
    if connections.is_empty() {
        return Err(DriftError::NothingToReplay);
    }
    let server = MockServer::start_with(config)
        .await
        .map_err(|e| DriftError::Mock(e.to_string()))?;
    let result = play(&server, &connections, streaming(entries)).await;
    server.shutdown().await;
    result.map(|report| DriftReport { faults, ..report })
}

async fn play(
    server: &MockServer,
    connections: &[Connection],
    streaming: bool,
) -> Result<DriftReport, DriftError> {
    let (token, session) = open_session(server, streaming).await?;
    let mut report = DriftReport {
        connections: connections.len(),
        ..DriftReport::default()
    };
    for connection in connections {
        let mut url = format!(
            "{}?session_id={session}&access_token={token}",
            server.ws_url()
        );
        if let Some(cursor) = connection.query.get("cursor") {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .map_err(|e| DriftError::Mock(format!("connection {}: {e}", connection.conn)))?;
        for (n, segment) in connection.segments.iter().enumerate() {
            let after = match &segment.client_frame {
                None => "the connection's opening".to_owned(),
                Some(frame) => {
                    report.client_frames += 1;
                    if socket.send(Message::text(frame.as_str())).await.is_err() {
                        report.differences.push(Difference {
                            conn: connection.conn,
                            after: format!("client frame {n}"),
                            what: "the mock had closed the socket before this frame".into(),
                            after_fault: segment.after_fault,
                        });
                        break;
                    }
                    let kind = serde_json::from_str::<Value>(frame)
                        .ok()
                        .and_then(|v| v["type"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| "not JSON".into());
                    format!("client frame {n} ({kind})")
                }
            };
            report.recorded_events += segment.expected.len();
            let got = collect(&mut socket, segment.expected.len()).await;
            for what in compare(&segment.expected, &got) {
                report.differences.push(Difference {
                    conn: connection.conn,
                    after: after.clone(),
                    what,
                    after_fault: segment.after_fault,
                });
            }
        }
        if let Some(code) = connection.client_close {
            let _ = socket
                .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: code.into(),
                    reason: "".into(),
                }))
                .await;
        }
    }
    Ok(report)
}

/// Token and session through the router (no socket): the token and the session id.
async fn open_session(
    server: &MockServer,
    streaming: bool,
) -> Result<(String, String), DriftError> {
    let (connector, host) = server.credentials();
    let post = |path: &str, headers: Vec<(&str, String)>, body: String| {
        let mut request = axum::http::Request::post(path)
            .header("host", server.addr().to_string())
            .header("content-type", "application/json")
            .extension(axum::extract::ConnectInfo(server.addr()));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request.body(axum::body::Body::from(body));
        let router = crate::router::router(server.state().clone());
        async move {
            let request = request.map_err(|e| DriftError::Mock(e.to_string()))?;
            let response = tower::ServiceExt::oneshot(router, request)
                .await
                .map_err(|e| DriftError::Mock(e.to_string()))?;
            let bytes = http_body_util::BodyExt::collect(response.into_body())
                .await
                .map_err(|e| DriftError::Mock(e.to_string()))?
                .to_bytes();
            serde_json::from_slice::<Value>(&bytes).map_err(|e| DriftError::Mock(e.to_string()))
        }
    };
    let token = post(
        "/api/v1/access-token",
        vec![("x-token", connector), ("x-host", host)],
        "{}".into(),
    )
    .await?;
    let token = token["access_token"]
        .as_str()
        .ok_or_else(|| DriftError::Mock(format!("no access token: {token}")))?
        .to_owned();
    let session = post(
        "/api/v1/sessions",
        vec![("authorization", format!("Bearer {token}"))],
        format!(r#"{{"streaming_enabled": {streaming}}}"#),
    )
    .await?;
    let session = session["session_id"]
        .as_str()
        .ok_or_else(|| DriftError::Mock(format!("no session: {session}")))?
        .to_owned();
    Ok((token, session))
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The server's events until `expected` have come and a moment has passed without more, or
/// [`ANSWER_WAIT`] is over, or the socket ends.
async fn collect(socket: &mut Socket, expected: usize) -> Vec<Value> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + ANSWER_WAIT;
    loop {
        let wait = if got.len() >= expected {
            EXTRA_WAIT
        } else {
            deadline.saturating_duration_since(tokio::time::Instant::now())
        };
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                if let Ok(value) = serde_json::from_str::<Value>(text.as_str()) {
                    got.push(value);
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) | Err(_) => return got,
        }
    }
}

fn event_type(event: &Value) -> String {
    event["type"].as_str().unwrap_or("(no type)").to_owned()
}

/// The differences between what was recorded and what the mock sent.
fn compare(recorded: &[Value], mock: &[Value]) -> Vec<String> {
    let recorded_types: Vec<String> = recorded.iter().map(event_type).collect();
    let mock_types: Vec<String> = mock.iter().map(event_type).collect();
    if recorded_types != mock_types {
        return vec![format!(
            "events: recorded {recorded_types:?}, mock {mock_types:?}"
        )];
    }
    let mut out = Vec::new();
    for (i, (r, m)) in recorded.iter().zip(mock).enumerate() {
        let (r, m) = (leaves(r), leaves(m));
        let at = format!("event {i} ({})", recorded_types[i]);
        for (path, value) in &r {
            match m.get(path) {
                None => out.push(format!("{at}: `{path}` only in the recording ({value})")),
                Some(other) if other != value => {
                    out.push(format!("{at}: `{path}` recorded {value}, mock {other}"))
                }
                Some(_) => {}
            }
        }
        for (path, value) in &m {
            if !r.contains_key(path) {
                out.push(format!("{at}: `{path}` only from the mock ({value})"));
            }
        }
    }
    out
}

/// Whether a key names an id, a time or a sequence number, which are not compared.
fn ignored(key: &str) -> bool {
    matches!(key, "id" | "timestamp" | "sequence") || key.ends_with("_id")
}

/// Every compared leaf of an event, by its path (`payload.response_suggestions[0].message_text`).
fn leaves(value: &Value) -> BTreeMap<String, String> {
    fn walk(value: &Value, path: String, out: &mut BTreeMap<String, String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    if ignored(key) {
                        continue;
                    }
                    let path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    walk(value, path, out);
                }
            }
            Value::Array(items) => {
                if items.is_empty() {
                    out.insert(path.clone(), "[]".into());
                }
                for (i, item) in items.iter().enumerate() {
                    walk(item, format!("{path}[{i}]"), out);
                }
            }
            leaf => {
                out.insert(path, leaf.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(value, String::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_times_and_sequences_are_not_compared_but_everything_else_is() {
        let a = serde_json::json!({"id": "1", "sequence": 3, "timestamp": "t1", "type": "EVENT_TYPE_POLY_AGENT_MESSAGE",
            "payload": {"message_id": "m1", "text": "Hi", "response_suggestions": [{"message_text": "A"}]}});
        let mut b = a.clone();
        b["id"] = "2".into();
        b["sequence"] = 9.into();
        b["timestamp"] = "t2".into();
        b["payload"]["message_id"] = "m2".into();
        assert_eq!(
            compare(std::slice::from_ref(&a), std::slice::from_ref(&b)),
            Vec::<String>::new()
        );
        // Negative controls: a changed text, a missing field, another type.
        b["payload"]["text"] = "Hello".into();
        b["payload"]["response_suggestions"] = serde_json::json!([]);
        let found = compare(std::slice::from_ref(&a), &[b]);
        assert!(
            found
                .iter()
                .any(|d| d.contains("`payload.text` recorded \"Hi\", mock \"Hello\"")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|d| d
                .contains("payload.response_suggestions[0].message_text` only in the recording")),
            "{found:?}"
        );
        let mut c = a.clone();
        c["type"] = "EVENT_TYPE_POLY_AGENT_THINKING".into();
        assert_eq!(compare(&[a], &[c]).len(), 1);
    }
}
