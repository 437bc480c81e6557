//! The client obligations of spec §11: their ids (an enum, so a typo is a compile error and an
//! unknown id in a case file a load error), levels, and what the kit's check for each looks at
//! and cannot see.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How binding an obligation is: a broken MUST fails a case, a broken SHOULD warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum Level {
    Must,
    MustNot,
    Should,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Must => "MUST",
            Self::MustNot => "MUST NOT",
            Self::Should => "SHOULD",
        }
    }

    /// Whether breaking it fails a case (a SHOULD only warns).
    pub fn fails(self) -> bool {
        !matches!(self, Self::Should)
    }
}

/// One row of spec §11.
#[derive(Debug, Clone, Copy)]
pub struct Obligation {
    pub id: ObligationId,
    pub level: Level,
    pub summary: &'static str,
    /// What the check judges, in a sentence (the README's table comes from here).
    pub looks_for: &'static str,
    /// What the evidence cannot show; empty when nothing.
    pub cannot_see: &'static str,
}

macro_rules! obligations {
    ($( $variant:ident $id:literal $level:ident $summary:literal, looks_for: $looks:literal, cannot_see: $blind:literal; )*) => {
        /// An obligation id of spec §11 (`AUTH-1`, `WS-4`, …).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        pub enum ObligationId {
            $( #[serde(rename = $id)] $variant, )*
        }

        impl ObligationId {
            pub fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $id, )* }
            }
        }

        /// Every obligation of spec §11, in the spec's order.
        pub const OBLIGATIONS: &[Obligation] = &[
            $( Obligation { id: ObligationId::$variant, level: Level::$level, summary: $summary, looks_for: $looks, cannot_see: $blind }, )*
        ];

        impl FromStr for ObligationId {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $( $id => Ok(Self::$variant), )*
                    other => Err(format!("`{other}` is not an obligation id of spec §11")),
                }
            }
        }
    };
}

obligations! {
    Auth1 "AUTH-1" Must "access-token call with X-Token, X-Host, Content-Type: application/json, body {}",
        looks_for: "every access-token call the mock answered, refused ones too: both headers present, JSON content type, a body that parses to {}; a conversation the user started that never called it",
        cannot_see: "";
    Auth2 "AUTH-2" Must "sessions call with Authorization: Bearer and Content-Type: application/json, valid JSON body",
        looks_for: "every sessions call: a well-formed Bearer header with a valid token, JSON content type, a body the server parses (known field types)",
        cannot_see: "";
    Auth3 "AUTH-3" Should "a fresh access token for each new session",
        looks_for: "cases with two or more sessions: each created with a token never used for an earlier one",
        cannot_see: "";
    Auth4 "AUTH-4" MustNot "no connector token in client-side code",
        looks_for: "nothing: always skipped",
        cannot_see: "the app's code and how it is deployed; a mock only sees requests";
    Auth5 "AUTH-5" Should "back off and respect Retry-After on 429; back off on 5xx",
        looks_for: "after a 429 with a drawn Retry-After (1 s and 5 s, or 2 s and 4 s), the retry neither before it nor long after (a quarter more and half a second: the wait was the header's); after a 5xx a retry that is not immediate, and growing gaps over consecutive 5xx; a retry at all",
        cannot_see: "";
    Ws1 "WS-1" Must "open /ws with session_id and access_token",
        looks_for: "every /ws handshake the mock answered carries both parameters; at least one was accepted; under `--tls`, no request in the clear (a `ws://` socket or an `http://` REST call to the TLS mock)",
        cannot_see: "without `--tls`, whether the client would use wss:// (the mock is then plain ws:// on loopback)";
    Ws2 "WS-2" Should "wait for the history before deciding to join",
        looks_for: "the mock holds each connection's history back for a drawn time (330–640 ms, 2.3–3 s); a join before it was sent, or more than 1.5 s after it (a timer, not a decision taken on the history)",
        cannot_see: "";
    Ws3 "WS-3" Must "join a new session exactly once",
        looks_for: "every session whose history had no POLY_AGENT_JOINED gets exactly one join over the whole case",
        cannot_see: "";
    Ws4 "WS-4" Must "do not join again on a reconnect",
        looks_for: "no join on any connection (reconnect, restart) opened after the agent joined the session",
        cannot_see: "";
    Ws5 "WS-5" Must "send only the five client types, type + object payload, never id/sequence/timestamp",
        looks_for: "every client frame of every session: JSON object, one of the five types, object payload, optional metadata.custom, no other top-level key",
        cannot_see: "";
    Ws6 "WS-6" Must "USER_MESSAGE text is a string; USER_TYPING state is valid",
        looks_for: "every USER_MESSAGE has string text; every USER_TYPING a valid state matching what the user did; typing the driver accepted but never sent fails",
        cannot_see: "typing, when the driver answers `unsupported` to it";
    Ws7 "WS-7" Must "keep every frame within max_message_size_bytes",
        looks_for: "the mock advertises a drawn limit below 128 KiB and the user sends a longer text: no client frame may exceed the advertised limit",
        cannot_see: "";
    Hb1 "HB-1" Must "send heartbeats periodically",
        looks_for: "every connection on its own: none for 40 s (long enough for the 30 s default; the full profile's long-haul case holds one that long), or heartbeats that stop (a silence of 2.5 of the client's own gaps and a second, on the same connection or a later one)",
        cannot_see: "a 10-minute silence itself (cases last seconds)";
    Hb2 "HB-2" Should "heartbeat at the advertised interval",
        looks_for: "on every connection: the first heartbeat within a quarter more than the interval (and a second) after it opened, and the median gap within 25 % of it; the interval is drawn (2 s or 3 s, 6 s or 7 s) or the 30 s default when none is advertised",
        cannot_see: "";
    Rc1 "RC-1" Must "after an unexpected close, reconnect to the same session",
        looks_for: "after every drop or non-final close: a handshake to the same session with its own token, and no new session while it lives",
        cannot_see: "";
    Rc2 "RC-2" Should "reconnect with cursor = highest sequence seen",
        looks_for: "every handshake after a session's first (refused ones too): cursor equals the highest sequence delivered before it (or stops short only of frames written in the second before a drop without a close frame, which the network may have lost); after an app restart, anything from the highest sequence the restarted app shows up to that (0 only when it shows nothing)",
        cannot_see: "";
    Rc3 "RC-3" Should "reconnect with exponential backoff from about 1 s, capped at 30 s",
        looks_for: "first retry 0.6–2 s after the drop, each later gap clearly larger (×1.3) until the 30 s cap (four attempts in the full profile: three growth steps); the cap itself in the thorough profile; an app restarted during a drop connects at once, which is not a retry",
        cannot_see: "the cap, in the quick and full profiles";
    Rc4 "RC-4" Should "stop after about max_reconnect_attempts failures",
        looks_for: "exactly the drawn max_reconnect_attempts attempts after a drop into refusals (1 or 2, and 4), then the view shows the connection closed, no further attempt, and no new session until the user starts one (a drop the app restarted through is not counted)",
        cannot_see: "";
    Rc5 "RC-5" Should "on a 404/401 handshake, get a new token and session",
        looks_for: "after a 404: a new session, connected; after a 401: a token minted after the refusal, then a new session with it",
        cannot_see: "";
    Msg1 "MSG-1" Must "flatten EVENT_BATCH events into the stream",
        looks_for: "every message, and every chunk's text, that reached the client only inside EVENT_BATCH is shown",
        cannot_see: "";
    Msg2 "MSG-2" Must "deduplicate events by id",
        looks_for: "events delivered twice (duplicates, resent history, replays, an old message again after a reconnect): no view sample ever shows a message twice, by id, or by author and text for messages shown without one",
        cannot_see: "";
    Msg3 "MSG-3" Must "order by sequence; tolerate sequence: null",
        looks_for: "the final view's messages, duplicates aside and batch-only losses excused (MSG-1), equal the case's expected conversation exactly, each by its author (user, agent, live agent), user echoes included, in sequence order, with null-sequence events shown; the conversation's system messages shown under system_messages, never as someone's message",
        cannot_see: "";
    Msg4 "MSG-4" Must "assemble streamed chunks by message_id in chunk_index order",
        looks_for: "each streamed message shown once with its chunks in chunk_index order (also when swapped or split by a drop), extras of every chunk (an empty final one too), complete only after the final chunk",
        cannot_see: "";
    Msg5 "MSG-5" Should "use echoes as receipts; resend unechoed messages",
        looks_for: "a message whose echo was lost is resent 4–7.5 s later with the same metadata.custom, never sooner than 4 s after the previous try, never after its echo (nor across a reconnect), never on a connection whose history holds its echo (the server would get it twice); at most 3 resends, and the message shown failed 4–9 s after the third (the full profile's long-haul case)",
        cannot_see: "";
    Ux1 "UX-1" Should "show typing indicators and clear them on the message",
        looks_for: "the view timeline: typing shown while the agent thinks or the live agent types, and never when the evidence cannot justify it (before thinking started, 0.5 s after the message)",
        cannot_see: "";
    Ux2 "UX-2" Should "a tapped suggestion is sent as its message_text",
        looks_for: "the greeting's drawn suggestions shown in order; tapping one sends exactly its text",
        cannot_see: "";
    Ux3 "UX-3" Should "show handoff progress and queue status",
        looks_for: "the timeline shows the handoff as triggered or accepted, the drawn queue position while queued, then live with the drawn live agent; a handoff that fails or times out shown as such",
        cannot_see: "";
    Ux4 "UX-4" Must "on SESSION_END: show the reason, close, do not reconnect",
        looks_for: "the view shows ended with the reason sent; the client closes its socket itself within the mock's grace; no handshake or new session afterwards until the user starts one; a message the user sends once the end is shown is refused (input disabled)",
        cannot_see: "how the app disables its input (only that the driver refuses the message)";
    Ux5 "UX-5" Should "route the user on CLIENT_HANDOFF_REQUIRED",
        looks_for: "the view shows client_required with the drawn reason and queue name",
        cannot_see: "where the app actually sends the user";
    Ux6 "UX-6" Should "apply the latest LANGUAGE_CHANGED",
        looks_for: "the view's language is the latest by sequence, also after an older change is delivered again",
        cannot_see: "";
    Err1 "ERR-1" Must "an error SYSTEM_MESSAGE is not fatal",
        looks_for: "after error system messages: no close or reconnect by the client, and the conversation goes on (the next reply shows)",
        cannot_see: "";
    Err2 "ERR-2" Should "ignore unknown event types and fields",
        looks_for: "after an undocumented event type (live, or inside a replay) and unknown fields: no close or reconnect, later messages shown, nothing extra shown; the other events of a batch that carried one shown, as the client shows other batches",
        cannot_see: "";
    Sec1 "SEC-1" Must "never log or persist the access token; use TLS",
        looks_for: "nothing: always skipped (the TLS half is judged under WS-1 with `--tls`)",
        cannot_see: "the app's logs and storage";
}

impl ObligationId {
    pub fn obligation(self) -> &'static Obligation {
        // Every variant has its row: the macro builds both from one list.
        OBLIGATIONS
            .iter()
            .find(|o| o.id == self)
            .unwrap_or(&OBLIGATIONS[0])
    }

    pub fn level(self) -> Level {
        self.obligation().level
    }

    /// Whether anything a client does on the wire or shows in its view can tell (AUTH-4 and
    /// SEC-1 are about the app's code and storage).
    pub fn observable(self) -> bool {
        !matches!(self, Self::Auth4 | Self::Sec1)
    }
}

/// The table of obligations, levels, what each check looks for and what it cannot see, with
/// the cases that grade each, as Markdown (`messaging-conformance list --markdown`; kept in
/// `conformance/README.md` by a test).
pub fn markdown_table(cases: &[crate::cases::Case]) -> String {
    let mut out = String::from(
        "| Id | Level | Obligation | The check looks for | It cannot see | Cases |\n|---|---|---|---|---|---|\n",
    );
    for o in OBLIGATIONS {
        let covering: Vec<String> = cases
            .iter()
            .filter(|c| c.checks().contains(&o.id))
            .map(|c| format!("`{}`", c.id))
            .collect();
        let cannot = if o.cannot_see.is_empty() {
            "—"
        } else {
            o.cannot_see
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            o.id,
            o.level.as_str(),
            o.summary,
            o.looks_for,
            cannot,
            covering.join(", ")
        ));
    }
    out
}

impl fmt::Display for ObligationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_parses_back_and_has_its_row() {
        assert_eq!(OBLIGATIONS.len(), 33);
        for obligation in OBLIGATIONS {
            assert_eq!(obligation.id.as_str().parse(), Ok(obligation.id));
            assert_eq!(obligation.id.obligation().id, obligation.id);
        }
        assert!("WS-9".parse::<ObligationId>().is_err());
        assert_eq!(
            ObligationId::Ws2.level(),
            Level::Should,
            "WS-2 is a SHOULD since issue 11"
        );
        assert_eq!(
            serde_json::to_string(&ObligationId::Msg3).expect("encodes"),
            "\"MSG-3\""
        );
    }
}
