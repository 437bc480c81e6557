//! A session's journal as it is kept: in memory, within a byte budget, with the echo path's
//! frames in one byte ring, and appended to a recording with `--record`.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use super::{JournalBudget, JournalEntry, JournalEvent, WireJson, boxed_weight};

/// The frames of the echo path, for [`SessionJournal::push_frame`]: a client frame that
/// decoded (so its text is JSON, kept whole) and a server frame.
#[derive(Debug, Clone, Copy)]
pub enum EchoFrame {
    Client {
        conn: u64,
        before_history: bool,
        bytes: u64,
    },
    Server {
        conn: Option<u64>,
    },
}

impl EchoFrame {
    /// The journal event of this frame with `text`.
    fn event(self, text: &str) -> JournalEvent {
        match self {
            Self::Client {
                conn,
                before_history,
                bytes,
            } => JournalEvent::ClientFrame {
                conn,
                before_history,
                bytes,
                frame: Some(WireJson::from(text)),
                text: None,
                truncated: false,
                error: None,
            },
            Self::Server { conn } => JournalEvent::ServerFrame {
                conn,
                frame: WireJson::from(text),
            },
        }
    }
}

/// A journal entry as a session's journal holds it in memory.
///
/// The two entries of every echo (the client's frame, once it decoded, and the server's
/// frame) keep their text in the journal's byte ring rather than in a heap block each, and
/// everything else is boxed, so a slot is small. With a heap block per frame, a full journal
/// freed a cold block for every block it allocated: at 100 busy sessions sharing the 16 MiB
/// budget that was a third of the mock's CPU per echo (BENCHMARKS.md).
#[derive(Debug)]
pub(super) struct Held {
    at_ms: u64,
    unix_ms: u64,
    kept: Kept,
}

#[derive(Debug)]
enum Kept {
    /// A `ClientFrame` whose frame is JSON, whole, with no error.
    Client {
        conn: u64,
        before_history: bool,
        bytes: u64,
        text: Span,
    },
    /// A `ServerFrame`.
    Server { conn: Option<u64>, text: Span },
    /// Any other event.
    Whole(Box<JournalEvent>),
}

/// Where a frame's text is in the ring: its absolute offset and length.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u64,
    len: usize,
}

/// What a held entry's slot takes, besides its text or its boxed event.
/// Counted twice: its own slot and the spare one the deque may hold for it (a `VecDeque`
/// grows by doubling).
pub(super) const HELD_SLOT: usize = 2 * std::mem::size_of::<Held>();

/// What `len` bytes of text in the ring cost: the bytes, and the quarter the ring may hold
/// spare (it grows by a quarter).
pub(super) fn ring_weight(len: usize) -> usize {
    len + len / 4
}

impl Held {
    /// The same as [`JournalEntry::weight`] of the entry it holds.
    fn weight(&self) -> usize {
        HELD_SLOT
            + match &self.kept {
                Kept::Client { text, .. } | Kept::Server { text, .. } => ring_weight(text.len),
                Kept::Whole(event) => boxed_weight(event),
            }
    }

    /// The bytes of the ring its text takes.
    pub(super) fn text_len(&self) -> usize {
        match &self.kept {
            Kept::Client { text, .. } | Kept::Server { text, .. } => text.len,
            Kept::Whole(_) => 0,
        }
    }
}

/// A session's journal: in memory (capped) and, with `--record`, appended to a JSON Lines file
/// with one write per entry, so a crash loses at most the entry in flight.
#[derive(Debug)]
pub struct SessionJournal {
    /// A ring: at the cap the oldest entry goes in O(1) (a `Vec` shifted 10 000 entries per
    /// frame, which was most of the echo path's CPU).
    pub(super) entries: VecDeque<Held>,
    /// The text of the frames in `entries`, in their order: one byte ring per journal instead
    /// of a heap block per frame (see [`Held`]).
    pub(super) text: VecDeque<u8>,
    /// The absolute offset of `text`'s first byte (bytes ever appended before it).
    text_start: u64,
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
            text: VecDeque::new(),
            text_start: 0,
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
        let held = self.hold(entry);
        self.keep(held);
    }

    /// Journals an echo-path frame from its borrowed text: with no recording, it goes
    /// straight into the ring, without a `JournalEntry` (and its allocations) in between.
    pub fn push_frame(&mut self, at_ms: u64, unix_ms: u64, frame: EchoFrame, text: &str) {
        if self.path.is_some() && self.write_error.is_none() {
            return self.push(JournalEntry {
                at_ms,
                unix_ms,
                event: frame.event(text),
            });
        }
        let text = self.append(text);
        let kept = match frame {
            EchoFrame::Client {
                conn,
                before_history,
                bytes,
            } => Kept::Client {
                conn,
                before_history,
                bytes,
                text,
            },
            EchoFrame::Server { conn } => Kept::Server { conn, text },
        };
        self.keep(Held {
            at_ms,
            unix_ms,
            kept,
        });
    }

    /// Keeps `held` (its text already at the end of the ring) if the cap and the budget's
    /// share allow it, dropping the oldest entries to make room.
    fn keep(&mut self, held: Held) {
        let weight = held.weight();
        let share = self.budget.share();
        if self.max_entries == 0 || weight > share {
            self.dropped += 1;
            self.text.truncate(self.text.len() - held.text_len());
            return;
        }
        let mut freed_text = 0;
        while self.entries.len() >= self.max_entries || self.bytes + weight > share {
            let Some(oldest) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= oldest.weight();
            freed_text += oldest.text_len();
            self.dropped += 1;
        }
        // The evicted frames' text is the ring's front, in order.
        self.text.drain(..freed_text);
        self.text_start += freed_text as u64;
        // The share shrank (more sessions): give the memory back, so what the journal takes
        // stays within what its weights count.
        if self.text.capacity() > self.text.len() + self.text.len() / 2 + 4096 {
            self.text.shrink_to(self.text.len() + self.text.len() / 4);
        }
        if self.entries.capacity() > 2 * self.entries.len() + 64 {
            self.entries
                .shrink_to(self.entries.len() + self.entries.len() / 2);
        }
        self.bytes += weight;
        self.entries.push_back(held);
    }

    /// The entry as held: an echo-path frame's text goes to the end of the ring.
    fn hold(&mut self, entry: JournalEntry) -> Held {
        let JournalEntry {
            at_ms,
            unix_ms,
            event,
        } = entry;
        let kept = match event {
            JournalEvent::ServerFrame { conn, frame } => Kept::Server {
                conn,
                text: self.append(frame.get()),
            },
            JournalEvent::ClientFrame {
                conn,
                before_history,
                bytes,
                frame: Some(frame),
                text: None,
                truncated: false,
                error: None,
            } => Kept::Client {
                conn,
                before_history,
                bytes,
                text: self.append(frame.get()),
            },
            event => Kept::Whole(Box::new(event)),
        };
        Held {
            at_ms,
            unix_ms,
            kept,
        }
    }

    /// Appends a frame's text to the ring; where it went.
    fn append(&mut self, text: &str) -> Span {
        let start = self.text_start + self.text.len() as u64;
        let free = self.text.capacity() - self.text.len();
        if free < text.len() {
            // Grows by a quarter, not double: the ring's capacity is memory the budget counts.
            self.text
                .reserve_exact(text.len().max(self.text.len() / 4).max(256));
        }
        self.text.extend(text.as_bytes());
        Span {
            start,
            len: text.len(),
        }
    }

    /// An entry as the API shows it, its frame text copied out of the ring.
    fn entry(&self, held: &Held) -> JournalEntry {
        let text = |span: &Span| {
            let from = usize::try_from(span.start - self.text_start).unwrap_or(usize::MAX);
            let bytes: Vec<u8> = self.text.range(from..from + span.len).copied().collect();
            WireJson::from(String::from_utf8_lossy(&bytes).into_owned())
        };
        let event = match &held.kept {
            Kept::Client {
                conn,
                before_history,
                bytes,
                text: span,
            } => JournalEvent::ClientFrame {
                conn: *conn,
                before_history: *before_history,
                bytes: *bytes,
                frame: Some(text(span)),
                text: None,
                truncated: false,
                error: None,
            },
            Kept::Server { conn, text: span } => JournalEvent::ServerFrame {
                conn: *conn,
                frame: text(span),
            },
            Kept::Whole(event) => (**event).clone(),
        };
        JournalEntry {
            at_ms: held.at_ms,
            unix_ms: held.unix_ms,
            event,
        }
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
        self.entries
            .range(skip..)
            .map(|held| self.entry(held))
            .collect()
    }

    /// The entries in memory, oldest first, each copied out.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = JournalEntry> + '_ {
        self.entries.iter().map(|held| self.entry(held))
    }

    /// Why recording stopped, if it did.
    pub fn write_error(&self) -> Option<&str> {
        self.write_error.as_deref()
    }
}
