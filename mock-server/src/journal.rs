//! The typed journal: everything that happened to a session, in order, for the control API,
//! recordings (`--record DIR`) and the conformance kit. Access tokens never appear in it.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::ws::Utf8Bytes;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

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

/// What an entry costs besides the strings it owns: its own slot in the ring, and the
/// allocator's header and rounding for each of its (at most three) heap blocks.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<JournalEntry>() + 3 * 16;

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
    /// Approximate heap and inline bytes this entry holds.
    pub fn weight(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let raw = |r: &Option<WireJson>| r.as_ref().map_or(0, |r| r.get().len());
        ENTRY_OVERHEAD
            + match &self.event {
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

/// A session's journal: in memory (capped) and, with `--record`, appended to a JSON Lines file
/// with one write per entry, so a crash loses at most the entry in flight.
#[derive(Debug)]
pub struct SessionJournal {
    /// A ring: at the cap the oldest entry goes in O(1) (a `Vec` shifted 10 000 entries per
    /// frame, which was most of the echo path's CPU).
    entries: VecDeque<JournalEntry>,
    max_entries: usize,
    /// The sum of `entries`' weights, kept under the budget's share.
    bytes: usize,
    budget: Arc<JournalBudget>,
    /// Entries dropped from the front of `entries` by the cap.
    dropped: u64,
    /// Where the recording goes, and the open handle while the session has sockets (held
    /// sessions without one would otherwise use a descriptor each: 20 000 ended sessions
    /// exhausted the limit and lost recordings).
    path: Option<std::path::PathBuf>,
    file: Option<std::fs::File>,
    write_error: Option<String>,
}

impl SessionJournal {
    /// A journal keeping the newest `max_entries` in memory, within the bytes `budget` allows
    /// it, and recording all of them to `path` when given (appending).
    pub fn new(path: Option<&Path>, max_entries: usize, budget: Arc<JournalBudget>) -> Self {
        let mut journal = Self {
            entries: VecDeque::new(),
            max_entries,
            bytes: 0,
            budget,
            dropped: 0,
            path: path.map(Path::to_path_buf),
            file: None,
            write_error: None,
        };
        journal.open();
        journal
    }

    /// Opens the recording for appending, unless it is open or recording has failed.
    fn open(&mut self) -> Option<&mut std::fs::File> {
        if self.file.is_none() && self.write_error.is_none() {
            let path = self.path.as_ref()?;
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(file) => self.file = Some(file),
                Err(error) => self.fail(format!("{}: {error}", path.display())),
            }
        }
        self.file.as_mut()
    }

    fn fail(&mut self, error: String) {
        tracing::error!(%error, "recording stopped; the in-memory journal goes on");
        self.write_error = Some(error);
        self.file = None;
    }

    /// Closes the recording's file handle; the next entry opens it again.
    pub fn release_file(&mut self) {
        self.file = None;
    }

    pub fn push(&mut self, entry: JournalEntry) {
        if let Some(file) = self.open() {
            let mut line = serde_json::to_string(&entry).unwrap_or_default();
            line.push('\n');
            if let Err(error) = file.write_all(line.as_bytes()) {
                self.fail(error.to_string());
            }
        }
        let weight = entry.weight();
        let share = self.budget.share();
        if self.max_entries == 0 || weight > share {
            self.dropped += 1;
            return;
        }
        while self.entries.len() >= self.max_entries || self.bytes + weight > share {
            let Some(oldest) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= oldest.weight();
            self.dropped += 1;
        }
        self.bytes += weight;
        self.entries.push_back(entry);
    }

    /// The bytes the in-memory entries hold (by [`JournalEntry::weight`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Total entries ever pushed.
    pub fn total(&self) -> u64 {
        self.dropped + self.entries.len() as u64
    }

    /// Entries from absolute index `from` on (those still in memory).
    pub fn since(&self, from: u64) -> Vec<JournalEntry> {
        let skip = from.saturating_sub(self.dropped);
        let skip = usize::try_from(skip)
            .unwrap_or(usize::MAX)
            .min(self.entries.len());
        self.entries.range(skip..).cloned().collect()
    }

    pub fn entries(&self) -> impl ExactSizeIterator<Item = &JournalEntry> {
        self.entries.iter()
    }

    /// Why recording stopped, if it did.
    pub fn write_error(&self) -> Option<&str> {
        self.write_error.as_deref()
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
    /// A frame's text, sharing the bytes (no copy).
    pub fn shared(frame: &Utf8Bytes) -> Self {
        Self(frame.clone())
    }

    /// A copy of a text already known to be JSON, or any text when `validate` is set: then
    /// `None` unless it is JSON.
    pub fn copied(text: &str, validate: bool) -> Option<Self> {
        if validate && serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
            return None;
        }
        Some(Self(Utf8Bytes::from(text)))
    }

    /// Any text: itself when it is JSON, else a JSON string of it (an upstream's broken frame).
    pub fn quoting(text: &str) -> Self {
        Self::copied(text, true).unwrap_or_else(|| {
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
        assert!(WireJson::copied("{\"a\":1}", true).is_some());
        assert!(WireJson::copied("{\"a\":", true).is_none(), "validated");
        assert_eq!(
            WireJson::copied("{\"a\":", false).map(|w| w.get().to_owned()),
            Some("{\"a\":".to_owned()),
            "trusted as is"
        );
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
        let shared = Utf8Bytes::from("{}".to_owned());
        assert_eq!(WireJson::shared(&shared).get(), "{}");
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
            journal.entries().last().map(JournalEntry::weight),
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
        assert_eq!(journal.total(), 3);
        assert_eq!(journal.entries().len(), 0);
        let text = std::fs::read_to_string(&path).expect("recording written");
        assert_eq!(read_recording(&text).expect("reads").len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
