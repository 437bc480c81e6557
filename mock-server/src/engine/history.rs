//! The session's history: every journaled event, encoded once, replayed on every connect
//! (spec §3.4, §3.6, §12 B2, C1–C3).

use crate::protocol::{Sequence, Timestamp};

use super::ids::IdGen;

/// One journaled event: its sequence and its encoded envelope, kept verbatim so a replay sends
/// the original `id` and `timestamp` (spec §12 B3).
#[derive(Debug, Clone)]
struct Entry {
    sequence: Sequence,
    json: Box<str>,
}

/// Journaled events in sequence order; sequences are contiguous from 1.
#[derive(Debug, Default)]
pub struct History {
    entries: Vec<Entry>,
}

impl History {
    /// The sequence the next journaled event gets.
    pub fn next_sequence(&self) -> Sequence {
        Sequence(self.entries.len() as u64 + 1)
    }

    pub fn last_sequence(&self) -> Option<Sequence> {
        self.entries.last().map(|e| e.sequence)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The encoded event with this sequence.
    pub fn get(&self, sequence: Sequence) -> Option<&str> {
        let index = usize::try_from(sequence.0.checked_sub(1)?).ok()?;
        self.entries.get(index).map(|e| &*e.json)
    }

    pub fn push(&mut self, sequence: Sequence, json: &str) {
        debug_assert_eq!(sequence, self.next_sequence());
        self.entries.push(Entry {
            sequence,
            json: json.into(),
        });
    }

    /// The encoded events of a replay after `cursor`: `SESSION_START` first unless
    /// `strict_cursor` (spec §12 C2), then every event with `sequence > cursor` (spec §12 C1).
    fn replay_after(&self, cursor: u64, strict_cursor: bool) -> impl Iterator<Item = &str> {
        let start = usize::try_from(cursor)
            .unwrap_or(usize::MAX)
            .min(self.entries.len());
        let session_start = (!strict_cursor && start > 0)
            .then(|| self.entries.first())
            .flatten();
        session_start
            .into_iter()
            .chain(&self.entries[start..])
            .map(|e| &*e.json)
    }

    /// The replay as `EVENT_TYPE_EVENT_BATCH` frames of at most `batch_size` events and, where
    /// possible, at most `max_frame_bytes` bytes (spec §12 C3). Always at least one frame.
    pub fn replay_batches(
        &self,
        request: &ReplayRequest,
        ids: &mut IdGen,
        unix_millis: u64,
    ) -> Vec<String> {
        let batch_size = request.batch_size.max(1);
        let mut batches = Vec::new();
        let mut current: Vec<&str> = Vec::new();
        let mut current_bytes = 0usize;
        let mut events: Vec<&str> = self
            .replay_after(request.cursor, request.strict_cursor)
            .collect();
        if request.reversed {
            let keep = usize::from(!request.strict_cursor && !events.is_empty());
            events[keep..].reverse();
        }
        for json in events {
            let would_overflow = !current.is_empty()
                && current_bytes + json.len() + BATCH_OVERHEAD > request.max_frame_bytes;
            if current.len() == batch_size || would_overflow {
                batches.push(encode_batch(&current, ids, unix_millis));
                current.clear();
                current_bytes = 0;
            }
            current_bytes += json.len() + 1;
            current.push(json);
        }
        if !current.is_empty() || batches.is_empty() {
            batches.push(encode_batch(&current, ids, unix_millis));
        }
        batches
    }
}

/// What a connect asks of the history.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    pub cursor: u64,
    pub strict_cursor: bool,
    pub batch_size: usize,
    pub max_frame_bytes: usize,
    /// Events after `SESSION_START` in reverse order (a fault).
    pub reversed: bool,
}

/// Bytes of a batch frame around its events: id, timestamp, type, keys and brackets.
const BATCH_OVERHEAD: usize = 160;

/// Builds the batch frame around already-encoded events, so replay never re-encodes history.
/// The envelope of the batch itself: a new id, `sequence: null`, now (spec §12 B4).
pub(crate) fn encode_batch(events: &[&str], ids: &mut IdGen, unix_millis: u64) -> String {
    let id = ids.event_id(unix_millis);
    let timestamp = Timestamp::from_unix_millis(unix_millis);
    let body: usize = events.iter().map(|e| e.len() + 1).sum();
    let mut out = String::with_capacity(body + BATCH_OVERHEAD);
    out.push_str(r#"{"id":""#);
    out.push_str(id.as_str());
    out.push_str(r#"","sequence":null,"timestamp":""#);
    out.push_str(timestamp.as_str());
    out.push_str(r#"","type":"EVENT_TYPE_EVENT_BATCH","payload":{"events":["#);
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(event);
    }
    out.push_str("]}}");
    out
}

/// Parses the `cursor` query parameter (spec §3.1, §12 C1): `N` or `seq:N`, or with
/// `plain: false` (the 2026-05 revision, spec §0) only `seq:N`. Anything else, including
/// overflow, is `Err` and means full replay.
pub fn parse_cursor(raw: Option<&str>, plain: bool) -> Result<u64, InvalidCursor> {
    let Some(raw) = raw else { return Ok(0) };
    let digits = match raw.strip_prefix("seq:") {
        Some(digits) => digits,
        None if plain => raw,
        None => return Err(InvalidCursor),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidCursor);
    }
    digits.parse().map_err(|_| InvalidCursor)
}

/// A `cursor` that is neither `N` nor `seq:N` (or not `seq:N` under 2026-05); the server logs it and replays everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCursor;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ServerEvent, decode_server_frame};

    fn history_of(n: u64) -> History {
        let mut history = History::default();
        for seq in 1..=n {
            let json = format!(
                r#"{{"id":"e{seq}","sequence":{seq},"timestamp":"t","type":"EVENT_TYPE_LANGUAGE_CHANGED","payload":{{"language_code":"x{seq}"}}}}"#
            );
            history.push(Sequence(seq), &json);
        }
        history
    }

    fn replayed(history: &History, request: &ReplayRequest) -> Vec<Vec<u64>> {
        let mut ids = IdGen::from_seed(1);
        history
            .replay_batches(request, &mut ids, 0)
            .iter()
            .map(|frame| {
                let envelope = decode_server_frame(frame).expect("batch decodes");
                assert_eq!(envelope.sequence, None, "a batch is not journaled");
                let ServerEvent::EventBatch(batch) = envelope.event else {
                    panic!("not a batch: {frame}");
                };
                batch
                    .events
                    .iter()
                    .map(|e| e.sequence.expect("journaled").0)
                    .collect()
            })
            .collect()
    }

    fn request(cursor: u64, batch_size: usize) -> ReplayRequest {
        ReplayRequest {
            cursor,
            strict_cursor: false,
            batch_size,
            max_frame_bytes: 131_072,
            reversed: false,
        }
    }

    #[test]
    fn replay_starts_with_session_start_then_everything_after_the_cursor() {
        let history = history_of(6);
        assert_eq!(
            replayed(&history, &request(0, 50)),
            vec![vec![1, 2, 3, 4, 5, 6]]
        );
        assert_eq!(replayed(&history, &request(4, 50)), vec![vec![1, 5, 6]]);
        assert_eq!(
            replayed(&history, &request(1, 50)),
            vec![vec![1, 2, 3, 4, 5, 6]]
        );
        assert_eq!(replayed(&history, &request(99, 50)), vec![vec![1]]);
        let strict = ReplayRequest {
            strict_cursor: true,
            ..request(4, 50)
        };
        assert_eq!(replayed(&history, &strict), vec![vec![5, 6]]);
    }

    #[test]
    fn replay_is_split_by_count_and_by_frame_size() {
        let history = history_of(5);
        assert_eq!(
            replayed(&history, &request(0, 2)),
            vec![vec![1, 2], vec![3, 4], vec![5]]
        );
        let small = ReplayRequest {
            max_frame_bytes: 400,
            ..request(0, 50)
        };
        let batches = replayed(&history, &small);
        assert!(batches.len() > 1, "no split by size: {batches:?}");
        assert_eq!(batches.concat(), vec![1, 2, 3, 4, 5]);
        let mut ids = IdGen::from_seed(1);
        for frame in history.replay_batches(&small, &mut ids, 0) {
            assert!(frame.len() <= 400, "frame of {} bytes", frame.len());
        }
    }

    #[test]
    fn an_empty_history_still_replays_one_batch() {
        assert_eq!(
            replayed(&History::default(), &request(0, 50)),
            vec![Vec::<u64>::new()]
        );
    }

    #[test]
    fn cursor_forms_of_spec_3_1() {
        assert_eq!(parse_cursor(None, true), Ok(0));
        assert_eq!(parse_cursor(Some("12"), true), Ok(12));
        assert_eq!(parse_cursor(Some("seq:12"), true), Ok(12));
        assert_eq!(parse_cursor(Some("0"), true), Ok(0));
        // The 2026-05 revision: only `seq:N`; a plain number means a full replay.
        assert_eq!(parse_cursor(Some("seq:12"), false), Ok(12));
        assert_eq!(parse_cursor(Some("12"), false), Err(InvalidCursor));
        assert_eq!(parse_cursor(None, false), Ok(0));
        assert_eq!(parse_cursor(Some("seq:x"), false), Err(InvalidCursor));
        for bad in [
            "",
            "-1",
            " 12",
            "12 ",
            "seq:",
            "seq:-1",
            "SEQ:1",
            "1.5",
            "abc",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_cursor(Some(bad), true), Err(InvalidCursor), "{bad:?}");
        }
    }
}
