//! The typed journal: everything that happened to a session, in order, for the control API,
//! recordings (`--record DIR`) and the conformance kit. Access tokens never appear in it.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Entries kept in memory per session by default (`Config::journal_max_entries`); older ones
/// are dropped (a recording keeps them all). About 200 KiB for a session that reaches it.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000;

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
        endpoint: String,
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
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "optional_raw_from_value"
        )]
        #[schemars(with = "Option<serde_json::Value>")]
        frame: Option<Box<RawValue>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A frame sent to one connection (`conn`) or to all of them.
    ServerFrame {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conn: Option<u64>,
        #[serde(deserialize_with = "raw_from_value")]
        #[schemars(with = "serde_json::Value")]
        frame: Box<RawValue>,
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
    /// Entries dropped from the front of `entries` by the cap.
    dropped: u64,
    file: Option<std::fs::File>,
    write_error: Option<String>,
}

impl SessionJournal {
    /// A journal keeping the newest `max_entries` in memory and recording all of them to
    /// `path` when given (appending).
    pub fn new(path: Option<&Path>, max_entries: usize) -> Self {
        let mut journal = Self {
            entries: VecDeque::new(),
            max_entries,
            dropped: 0,
            file: None,
            write_error: None,
        };
        if let Some(path) = path {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(file) => journal.file = Some(file),
                Err(error) => journal.write_error = Some(format!("{}: {error}", path.display())),
            }
        }
        journal
    }

    pub fn push(&mut self, entry: JournalEntry) {
        if let Some(file) = &mut self.file {
            let mut line = serde_json::to_string(&entry).unwrap_or_default();
            line.push('\n');
            if let Err(error) = file.write_all(line.as_bytes()) {
                self.write_error = Some(error.to_string());
                self.file = None;
            }
        }
        if self.max_entries == 0 {
            self.dropped += 1;
            return;
        }
        if self.entries.len() == self.max_entries {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(entry);
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

// Entries are an internally tagged, flattened enum: serde buffers them, and a buffered value
// cannot become a `RawValue` directly, so frames are read as `Value` and re-serialised.
fn raw_from_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Box<RawValue>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(raw_json(&value.to_string()))
}

fn optional_raw_from_value<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Box<RawValue>>, D::Error> {
    Ok(Option::<serde_json::Value>::deserialize(d)?.map(|v| raw_json(&v.to_string())))
}

/// `RawValue` of a frame known to be JSON (falls back to a JSON string of it).
pub fn raw_json(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap_or_else(|_| {
        let quoted = serde_json::to_string(text).unwrap_or_else(|_| "null".into());
        RawValue::from_string(quoted).unwrap_or_else(|_| unreachable!("a JSON string is JSON"))
    })
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
                frame: raw_json(r#"{"type":"EVENT_TYPE_HEARTBEAT"}"#),
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
        let mut journal = SessionJournal::new(None, CAP);
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
    fn a_zero_cap_keeps_nothing_in_memory_but_still_records() {
        let dir = std::env::temp_dir().join(format!("journal-zero-cap-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("s.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut journal = SessionJournal::new(Some(&path), 0);
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
