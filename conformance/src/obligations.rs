//! The client obligations of spec §11, with their levels.

/// How binding an obligation is: a broken MUST fails a case, a broken SHOULD warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum Level {
    Must,
    MustNot,
    Should,
}

#[derive(Debug, Clone, Copy)]
pub struct Obligation {
    pub id: &'static str,
    pub level: Level,
    pub summary: &'static str,
}

const fn ob(id: &'static str, level: Level, summary: &'static str) -> Obligation {
    Obligation { id, level, summary }
}

/// Every obligation id of spec §11, in the spec's order.
pub const OBLIGATIONS: &[Obligation] = &[
    ob(
        "AUTH-1",
        Level::Must,
        "access-token call with X-Token, X-Host, Content-Type: application/json, body {}",
    ),
    ob(
        "AUTH-2",
        Level::Must,
        "sessions call with Authorization: Bearer and Content-Type: application/json, valid JSON body",
    ),
    ob(
        "AUTH-3",
        Level::Should,
        "a fresh access token for each new session",
    ),
    ob(
        "AUTH-4",
        Level::MustNot,
        "no connector token in client-side code",
    ),
    ob(
        "AUTH-5",
        Level::Should,
        "back off and respect Retry-After on 429; back off on 5xx",
    ),
    ob(
        "WS-1",
        Level::Must,
        "open /ws with session_id and access_token",
    ),
    ob(
        "WS-2",
        Level::Must,
        "wait for the history before deciding to join",
    ),
    ob("WS-3", Level::Must, "join a new session exactly once"),
    ob("WS-4", Level::Must, "do not join again on a reconnect"),
    ob(
        "WS-5",
        Level::Must,
        "send only the five client types, type + object payload, never id/sequence/timestamp",
    ),
    ob(
        "WS-6",
        Level::Must,
        "USER_MESSAGE text is a string; USER_TYPING state is valid",
    ),
    ob(
        "WS-7",
        Level::Must,
        "keep every frame within max_message_size_bytes",
    ),
    ob("HB-1", Level::Must, "send heartbeats periodically"),
    ob(
        "HB-2",
        Level::Should,
        "heartbeat at the advertised interval",
    ),
    ob(
        "RC-1",
        Level::Must,
        "after an unexpected close, reconnect to the same session",
    ),
    ob(
        "RC-2",
        Level::Should,
        "reconnect with cursor = highest sequence seen",
    ),
    ob(
        "RC-3",
        Level::Should,
        "reconnect with exponential backoff from about 1 s, capped at 30 s",
    ),
    ob(
        "RC-4",
        Level::Should,
        "stop after about max_reconnect_attempts failures",
    ),
    ob(
        "RC-5",
        Level::Should,
        "on a 404/401 handshake, get a new token and session",
    ),
    ob(
        "MSG-1",
        Level::Must,
        "flatten EVENT_BATCH events into the stream",
    ),
    ob("MSG-2", Level::Must, "deduplicate events by id"),
    ob(
        "MSG-3",
        Level::Must,
        "order by sequence; tolerate sequence: null",
    ),
    ob(
        "MSG-4",
        Level::Must,
        "assemble streamed chunks by message_id in chunk_index order",
    ),
    ob(
        "MSG-5",
        Level::Should,
        "use echoes as receipts; resend unechoed messages",
    ),
    ob(
        "UX-1",
        Level::Should,
        "show typing indicators and clear them on the message",
    ),
    ob(
        "UX-2",
        Level::Should,
        "a tapped suggestion is sent as its message_text",
    ),
    ob(
        "UX-3",
        Level::Should,
        "show handoff progress and queue status",
    ),
    ob(
        "UX-4",
        Level::Must,
        "on SESSION_END: show the reason, close, do not reconnect",
    ),
    ob(
        "UX-5",
        Level::Should,
        "route the user on CLIENT_HANDOFF_REQUIRED",
    ),
    ob("UX-6", Level::Should, "apply the latest LANGUAGE_CHANGED"),
    ob("ERR-1", Level::Must, "an error SYSTEM_MESSAGE is not fatal"),
    ob(
        "ERR-2",
        Level::Should,
        "ignore unknown event types and fields",
    ),
    ob(
        "SEC-1",
        Level::Must,
        "never log or persist the access token; use TLS",
    ),
];

pub fn obligation(id: &str) -> Option<&'static Obligation> {
    OBLIGATIONS.iter().find(|o| o.id == id)
}
