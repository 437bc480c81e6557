//! The typed journal: everything that happened to a session, in order, for the control API,
//! recordings (`--record DIR`) and the conformance kit. Access tokens never appear in it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::ws::Utf8Bytes;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

mod session;

#[cfg(test)]
use session::Held;
pub use session::{EchoFrame, SessionJournal};
use session::{HELD_SLOT, ring_weight};

/// Entries kept in memory per session by default (`Config::journal_max_entries`); older ones
/// are dropped (a recording keeps them all). About 200 KiB for a session that reaches it.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000;

/// A client frame longer than this is journaled as its first this-many bytes of text, its
/// length and `truncated: true` (`Config::journal_frame_max_bytes`).
pub const DEFAULT_FRAME_MAX_BYTES: usize = 8 * 1024;

/// In-memory journal bytes one session may hold (`Config::journal_max_bytes`).
pub const DEFAULT_MAX_BYTES: usize = 1024 * 1024;

/// In-memory journal bytes all sessions together may hold (`Config::journal_total_max_bytes`):
/// each session's share is this divided by the sessions held, at most [`DEFAULT_MAX_BYTES`].
pub const DEFAULT_TOTAL_MAX_BYTES: usize = 16 * 1024 * 1024;

/// One thing that happened.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct JournalEntry {
    /// Mock-clock milliseconds since the server started (monotonic).
    pub at_ms: u64,
    /// Wall-clock Unix milliseconds.
    pub unix_ms: u64,
    #[serde(flatten)]
    pub event: JournalEvent,
}

/// Who closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Closer {
    Server,
    Client,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JournalEvent {
    /// A REST call attributed to this session (its token or its creation).
    Http {
        endpoint: crate::http_log::Endpoint,
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The request's `Content-Type`, as sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_type: Option<String>,
        /// The request body (first 1 KiB). These bodies carry no secrets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    /// A WebSocket handshake; `query` has the access token redacted.
    Handshake {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conn: Option<u64>,
        query: BTreeMap<String, String>,
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A frame from the client: the frame itself when it was JSON, else its text, and the
    /// decode error when it was rejected.
    ClientFrame {
        conn: u64,
        /// Sent before the connection's history was (see `replay_delay_ms`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        before_history: bool,
        /// The frame's size on the wire, in bytes.
        #[serde(default)]
        bytes: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(with = "Option<serde_json::Value>")]
        frame: Option<WireJson>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// The frame was longer than the journal keeps: `text` holds its start, `bytes` its
        /// length.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A frame sent to one connection (`conn`) or to all of them.
    ServerFrame {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conn: Option<u64>,
        #[schemars(with = "serde_json::Value")]
        frame: WireJson,
    },
    /// A connection ended; `code` is absent for a drop without a close frame.
    Close {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conn: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u16>,
        by: Closer,
    },
    /// A timer fired (inactivity, retention).
    Timer { what: String },
    /// A scenario or control-API fault took effect.
    Fault { fault: String },
    /// A control-API action on this session.
    Control { action: String },
}

impl JournalEntry {
    /// The bytes this entry takes in a session's in-memory journal (what its budget counts):
    /// its slot, and its frame's text in the journal's ring, or its event in a heap block of
    /// its own with the strings that event owns.
    pub fn weight(&self) -> usize {
        HELD_SLOT
            + match &self.event {
                JournalEvent::ServerFrame { frame, .. } => ring_weight(frame.get().len()),
                JournalEvent::ClientFrame {
                    frame: Some(frame),
                    text: None,
                    truncated: false,
                    error: None,
                    ..
                } => ring_weight(frame.get().len()),
                event => boxed_weight(event),
            }
    }
}

/// An event kept whole: its heap block, each string's, and an allocator header and rounding
/// for each (at most four blocks).
fn boxed_weight(event: &JournalEvent) -> usize {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let raw = |r: &Option<WireJson>| r.as_ref().map_or(0, |r| r.get().len());
    std::mem::size_of::<JournalEvent>()
        + 4 * 16
        + match event {
            JournalEvent::Http {
                error,
                content_type,
                body,
                ..
            } => text(error) + text(content_type) + text(body),
            JournalEvent::Handshake { query, error, .. } => {
                query
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 48)
                    .sum::<usize>()
                    + text(error)
            }
            JournalEvent::ClientFrame {
                frame,
                text: t,
                error,
                ..
            } => raw(frame) + text(t) + text(error),
            JournalEvent::ServerFrame { frame, .. } => frame.get().len(),
            JournalEvent::Close { .. } => 0,
            JournalEvent::Timer { what } => what.len(),
            JournalEvent::Fault { fault } => fault.len(),
            JournalEvent::Control { action } => action.len(),
        }
}

/// The longest prefix of `text` that is at most `max` bytes and ends on a character boundary.
pub fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The byte budget each session's in-memory journal may use now, shared by every journal and
/// updated as sessions come and go: `min(per_session, total / sessions)`.
#[derive(Debug)]
pub struct JournalBudget {
    per_session: usize,
    total: usize,
    share: AtomicUsize,
}

impl JournalBudget {
    pub fn new(per_session: usize, total: usize) -> Arc<Self> {
        Arc::new(Self {
            per_session,
            total,
            share: AtomicUsize::new(per_session.min(total)),
        })
    }

    /// Recomputes the share for this many sessions held.
    pub fn sessions(&self, count: usize) {
        let share = self.per_session.min(self.total / count.max(1));
        self.share.store(share, Ordering::Relaxed);
    }

    pub fn share(&self) -> usize {
        self.share.load(Ordering::Relaxed)
    }
}

/// What the journal keeps of a REST request: its content type and (start of) body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestNote {
    pub content_type: Option<String>,
    pub body: Option<String>,
}

impl RequestNote {
    pub fn new(content_type: Option<&str>, body: &[u8]) -> Self {
        let body = String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned();
        Self {
            content_type: content_type.map(str::to_owned),
            body: Some(body),
        }
    }
}

/// Reads a recording (`--record` output). Blank lines are skipped; a torn last line (the
/// entry in flight at a crash) is ignored; any other bad line is an error naming its number.
pub fn read_recording(text: &str) -> Result<Vec<JournalEntry>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut entries = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(entry) => entries.push(entry),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(error) => return Err(format!("line {}: {error}", i + 1)),
        }
    }
    Ok(entries)
}

/// A frame's JSON text, kept as the bytes that went over the wire.
///
/// The echo path neither parses nor copies a frame for the journal: a client frame is known to
/// be JSON once it decoded, and a server frame shares its bytes with the frame written to the
/// socket. The text is checked as JSON only when the entry is serialised (a recording line, a
/// control-API answer); text that is not JSON (a fault can send such a frame) serialises as a
/// JSON string of it, so every journal line stays JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireJson(Utf8Bytes);

impl WireJson {
    /// A copy of `text` when it is JSON (checked here: it comes from a peer), else `None`.
    pub fn copied(text: &str) -> Option<Self> {
        serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
        Some(Self(Utf8Bytes::from(text)))
    }

    /// Any text: itself when it is JSON, else a JSON string of it (an upstream's broken frame).
    pub fn quoting(text: &str) -> Self {
        Self::copied(text).unwrap_or_else(|| {
            Self::from(serde_json::to_string(text).unwrap_or_else(|_| "null".into()))
        })
    }

    pub fn get(&self) -> &str {
        self.0.as_str()
    }
}

impl From<String> for WireJson {
    fn from(text: String) -> Self {
        Self(Utf8Bytes::from(text))
    }
}

impl From<&str> for WireJson {
    fn from(text: &str) -> Self {
        Self(Utf8Bytes::from(text))
    }
}

impl Serialize for WireJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match RawValue::from_string(self.get().to_owned()) {
            Ok(raw) => raw.serialize(serializer),
            Err(_) => serializer.serialize_str(self.get()),
        }
    }
}

// Entries are an internally tagged, flattened enum: serde buffers them, and a buffered value
// cannot become a `RawValue` directly, so frames are read as `Value` and written back as text.
impl<'de> Deserialize<'de> for WireJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from(serde_json::Value::deserialize(d)?.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    #[test]
    fn entries_round_trip_as_json_lines_and_a_torn_last_line_is_ignored() {
        let entry = JournalEntry {
            at_ms: 5,
            unix_ms: 6,
            event: JournalEvent::ServerFrame {
                conn: None,
                frame: WireJson::from(r#"{"type":"EVENT_TYPE_HEARTBEAT"}"#),
            },
        };
        let line = serde_json::to_string(&entry).expect("encodes");
        assert_eq!(
            line,
            r#"{"at_ms":5,"unix_ms":6,"kind":"server_frame","frame":{"type":"EVENT_TYPE_HEARTBEAT"}}"#
        );
        let text = format!("{line}\n{line}\n{{\"at_ms\":7,\"un");
        assert_eq!(read_recording(&text).expect("reads").len(), 2);
        let bad = format!("{line}\nnot json\n{line}\n");
        assert!(
            read_recording(&bad)
                .expect_err("bad line")
                .starts_with("line 2")
        );
    }

    #[test]
    fn wire_json_is_checked_only_when_asked_and_always_serialises_as_json() {
        assert!(WireJson::copied("{\"a\":1}").is_some());
        assert!(WireJson::copied("{\"a\":").is_none(), "validated");
        assert_eq!(WireJson::from("{\"a\":").get(), "{\"a\":", "trusted as is");
        let json = |w: &WireJson| serde_json::to_string(w).expect("encodes");
        assert_eq!(
            json(&WireJson::from("{\"a\": [1]}")),
            "{\"a\": [1]}",
            "as sent"
        );
        // Text that is not JSON never breaks a journal line: it becomes a JSON string.
        assert_eq!(json(&WireJson::from("not {json")), "\"not {json\"");
        assert_eq!(WireJson::quoting("not {json").get(), "\"not {json\"");
        assert_eq!(WireJson::quoting("[1]").get(), "[1]");
        let back: WireJson = serde_json::from_str(" { \"b\" : true } ").expect("decodes");
        assert_eq!(back.get(), "{\"b\":true}");
    }

    fn timer(i: u64) -> JournalEntry {
        JournalEntry {
            at_ms: i,
            unix_ms: i,
            event: JournalEvent::Timer { what: "t".into() },
        }
    }

    #[test]
    fn the_in_memory_journal_is_capped_and_indexes_stay_absolute() {
        const CAP: usize = 50;
        let mut journal = SessionJournal::new(None, CAP, JournalBudget::new(1 << 20, 1 << 30));
        for i in 0..(CAP as u64 + 5) {
            journal.push(timer(i));
        }
        assert_eq!(journal.total(), CAP as u64 + 5);
        assert_eq!(journal.entries().len(), CAP);
        assert_eq!(journal.entries().next().map(|e| e.at_ms), Some(5));
        let tail = journal.since(CAP as u64 + 3);
        assert_eq!(
            tail.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
            [CAP as u64 + 3, CAP as u64 + 4]
        );
    }

    #[test]
    fn an_entry_weighs_at_least_its_own_size() {
        let entry = timer(1);
        assert!(entry.weight() > std::mem::size_of::<JournalEntry>());
    }

    /// A mix of what a busy journal holds: client frames kept in the ring and ones kept whole
    /// (rejected, with an error), server frames, and other events.
    fn mixed(i: usize) -> JournalEntry {
        let text = format!(
            "{{\"type\":\"T\",\"n\":{i},\"pad\":\"{}\"}}",
            "é".repeat(i % 37)
        );
        let event = match i % 5 {
            0 | 1 => JournalEvent::ClientFrame {
                conn: 1,
                before_history: i.is_multiple_of(2),
                bytes: text.len() as u64,
                frame: Some(WireJson::from(text)),
                text: None,
                truncated: false,
                error: (i % 5 == 1).then(|| "rejected".to_owned()),
            },
            2 | 3 => JournalEvent::ServerFrame {
                conn: i.is_multiple_of(2).then_some(2),
                frame: WireJson::from(text),
            },
            _ => JournalEvent::Timer { what: "t".into() },
        };
        JournalEntry {
            at_ms: i as u64,
            unix_ms: i as u64,
            event,
        }
    }

    /// Pushes `entry`, through `push_frame` when `borrowed` and it is an echo-path frame.
    fn push_either_way(journal: &mut SessionJournal, entry: JournalEntry, borrowed: bool) {
        let (at, unix) = (entry.at_ms, entry.unix_ms);
        match &entry.event {
            JournalEvent::ServerFrame { conn, frame } if borrowed => {
                journal.push_frame(at, unix, EchoFrame::Server { conn: *conn }, frame.get());
            }
            JournalEvent::ClientFrame {
                conn,
                before_history,
                bytes,
                frame: Some(frame),
                error: None,
                ..
            } if borrowed => {
                let client = EchoFrame::Client {
                    conn: *conn,
                    before_history: *before_history,
                    bytes: *bytes,
                };
                journal.push_frame(at, unix, client, frame.get());
            }
            _ => journal.push(entry),
        }
    }

    #[test]
    fn frames_in_the_ring_come_back_as_pushed_through_eviction_and_a_shrinking_share() {
        let budget = JournalBudget::new(200_000, 1 << 30);
        let mut journal = SessionJournal::new(None, 5_000, Arc::clone(&budget));
        let mut model: VecDeque<String> = VecDeque::new();
        for i in 0..3_000 {
            if i == 2_000 {
                budget.sessions((1 << 30) / 4_000); // the share drops to 4 000 bytes
            }
            let entry = mixed(i);
            model.push_back(serde_json::to_string(&entry).expect("encodes"));
            push_either_way(&mut journal, entry, i.is_multiple_of(3));
            let held = journal.since(0);
            let first = model.len() - held.len();
            model.drain(..first);
            let lines: Vec<String> = held
                .iter()
                .map(|e| serde_json::to_string(e).expect("encodes"))
                .collect();
            assert_eq!(lines, Vec::from(model.clone()), "after entry {i}");
            assert_eq!(
                journal.bytes(),
                held.iter().map(JournalEntry::weight).sum::<usize>(),
                "the budget counts what is held"
            );
            assert!(journal.bytes() <= budget.share());
            let ring: usize = journal.entries.iter().map(Held::text_len).sum();
            assert_eq!(journal.text.len(), ring, "the ring holds only held text");
            assert!(journal.text.capacity() <= ring + ring / 2 + 4096 + 256);
            // What the journal takes in memory stays within what it counts (but for the
            // ring's and the deque's small fixed slack).
            let taken =
                journal.entries.capacity() * std::mem::size_of::<Held>() + journal.text.capacity();
            let boxed: usize = held.iter().map(JournalEntry::weight).sum::<usize>()
                - journal
                    .entries
                    .iter()
                    .map(|h| HELD_SLOT + ring_weight(h.text_len()))
                    .sum::<usize>();
            assert!(
                taken <= journal.bytes() - boxed + 4096 + 64 * std::mem::size_of::<Held>(),
                "after entry {i}: {taken} bytes taken, {} counted",
                journal.bytes() - boxed
            );
        }
        assert!(journal.entries().len() < 40, "the share shrank the journal");
    }

    fn frame(len: usize) -> JournalEntry {
        JournalEntry {
            at_ms: 0,
            unix_ms: 0,
            event: JournalEvent::ServerFrame {
                conn: None,
                frame: WireJson::from(format!("\"{}\"", "x".repeat(len))),
            },
        }
    }

    #[test]
    fn the_in_memory_journal_is_bounded_by_bytes_and_follows_the_shared_budget() {
        let budget = JournalBudget::new(10_000, 40_000);
        let mut journal = SessionJournal::new(None, 1_000, Arc::clone(&budget));
        for _ in 0..100 {
            journal.push(frame(900));
        }
        assert!(journal.bytes() <= 10_000, "{} bytes", journal.bytes());
        assert_eq!(journal.entries().len(), 10_000 / frame(900).weight());
        assert_eq!(journal.total(), 100, "indexes count every entry");
        // Eight sessions share 40 000 bytes: 5 000 each, enforced from the next push on.
        budget.sessions(8);
        journal.push(frame(900));
        assert!(journal.bytes() <= 5_000, "{} bytes", journal.bytes());
        // An entry bigger than the whole share is counted and not kept.
        let before = journal.entries().len();
        journal.push(frame(6_000));
        assert_eq!(journal.entries().len(), before);
        assert_eq!(journal.total(), 102);
        budget.sessions(1);
        journal.push(frame(6_000));
        assert_eq!(
            journal.entries().last().map(|e| e.weight()),
            Some(frame(6_000).weight())
        );
    }

    #[test]
    fn prefixes_end_on_character_boundaries() {
        assert_eq!(prefix("héllo", 2), "h");
        assert_eq!(prefix("héllo", 3), "hé");
        assert_eq!(prefix("abc", 10), "abc");
        assert_eq!(prefix("🎉🎉", 5), "🎉");
    }

    #[test]
    fn a_zero_cap_keeps_nothing_in_memory_but_still_records() {
        let dir = std::env::temp_dir().join(format!("journal-zero-cap-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("s.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut journal = SessionJournal::new(Some(&path), 0, JournalBudget::new(1 << 20, 1 << 30));
        for i in 0..3 {
            journal.push(timer(i));
        }
        // Frames journaled from borrowed text are recorded as whole entries too.
        let frames: Vec<JournalEntry> = (0..4).map(mixed).collect();
        for (i, frame) in frames.iter().enumerate() {
            push_either_way(&mut journal, frame.clone(), i != 1);
        }
        assert_eq!(journal.total(), 7);
        assert_eq!(journal.entries().len(), 0);
        let text = std::fs::read_to_string(&path).expect("recording written");
        let recorded = read_recording(&text).expect("reads");
        assert_eq!(recorded.len(), 7);
        let line = |e: &JournalEntry| serde_json::to_string(e).expect("encodes");
        assert_eq!(
            recorded[3..].iter().map(line).collect::<Vec<_>>(),
            frames.iter().map(line).collect::<Vec<_>>()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
