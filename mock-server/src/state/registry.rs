//! The sessions the server holds, and the journals of gone ones: who is in, room for one more,
//! and what the control API and the kit can still read once a session is gone.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::session::{SessionSlot, SessionSummary, dispatch};
use super::{SessionsFull, lock};
use crate::engine::{Now, SessionStatus};
use crate::journal::{JournalBudget, JournalEntry};
use crate::protocol::SessionId;

/// Gone sessions whose journals are kept for reading (and no more than
/// `journal_total_max_bytes` of journal between them).
const ARCHIVE: usize = 256;

/// Journals of gone sessions, newest last, bounded in count and bytes.
#[derive(Debug, Default)]
struct Archive {
    sessions: VecDeque<(SessionSummary, Vec<JournalEntry>, usize)>,
    bytes: usize,
}

impl Archive {
    fn push(&mut self, summary: SessionSummary, journal: Vec<JournalEntry>, max_bytes: usize) {
        let bytes = journal.iter().map(JournalEntry::weight).sum();
        self.sessions.push_back((summary, journal, bytes));
        self.bytes += bytes;
        while self.sessions.len() > ARCHIVE || (self.bytes > max_bytes && self.sessions.len() > 1) {
            if let Some((_, _, bytes)) = self.sessions.pop_front() {
                self.bytes -= bytes;
            }
        }
    }
}

/// The session registry: live sessions by id, the archive of gone ones, and the journal byte
/// budget they share (each session's share follows how many are held).
#[derive(Debug)]
pub(super) struct Registry {
    sessions: Mutex<HashMap<SessionId, Arc<SessionSlot>>>,
    archive: Mutex<Archive>,
    budget: Arc<JournalBudget>,
    /// `journal_total_max_bytes`: the archive keeps no more journal than this.
    archive_max_bytes: usize,
}

impl Registry {
    pub(super) fn new(budget: Arc<JournalBudget>, archive_max_bytes: usize) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            archive: Mutex::new(Archive::default()),
            budget,
            archive_max_bytes,
        }
    }

    /// The journal budget every session's journal draws from.
    pub(super) fn budget(&self) -> &Arc<JournalBudget> {
        &self.budget
    }

    fn held(&self) -> MutexGuard<'_, HashMap<SessionId, Arc<SessionSlot>>> {
        lock(&self.sessions)
    }

    pub(super) fn len(&self) -> usize {
        self.held().len()
    }

    pub(super) fn get(&self, id: &str) -> Option<Arc<SessionSlot>> {
        self.held().get(id).cloned()
    }

    /// Every session held, in no order.
    pub(super) fn slots(&self) -> Vec<Arc<SessionSlot>> {
        self.held().values().cloned().collect()
    }

    pub(super) fn insert(&self, slot: Arc<SessionSlot>) {
        let mut held = self.held();
        held.insert(slot.id.clone(), slot);
        self.budget.sessions(held.len());
    }

    /// Takes a session out (it may already be out).
    pub(super) fn forget(&self, slot: &SessionSlot) {
        let mut held = self.held();
        held.remove(&slot.id);
        self.budget.sessions(held.len());
    }

    /// Takes every session out and forgets the archive: what `reset` then closes.
    pub(super) fn drain(&self) -> Vec<Arc<SessionSlot>> {
        let slots = self.held().drain().map(|(_, s)| s).collect();
        *lock(&self.archive) = Archive::default();
        self.budget.sessions(0);
        slots
    }

    /// Keeps a gone session's summary and journal for reading.
    pub(super) fn archive(&self, slot: &SessionSlot) {
        let (summary, journal) = (slot.summary(), slot.journal_since(0).0);
        lock(&self.archive).push(summary, journal, self.archive_max_bytes);
    }

    /// Makes room for one more session under `max`: at the cap, the sessions that ended first
    /// are forgotten now (their retention cut short), a hundredth of the cap at a time so the
    /// scan is paid once per many creations; with none ended, there is no room.
    pub(super) fn make_room(&self, max: usize, now: Now) -> Result<(), SessionsFull> {
        if self.len() < max {
            return Ok(());
        }
        let mut ended: Vec<(Duration, Arc<SessionSlot>)> = self
            .slots()
            .into_iter()
            .filter_map(|slot| {
                let locked = slot.lock();
                let ended = locked.engine.ended_at();
                let expired = locked.engine.status() == SessionStatus::Expired;
                drop(locked);
                ended.filter(|_| !expired).map(|at| (at, slot))
            })
            .collect();
        if ended.is_empty() {
            return Err(SessionsFull(max));
        }
        let batch = (max / 100).clamp(1, ended.len());
        ended.select_nth_unstable_by_key(batch - 1, |(at, _)| *at);
        for (_, slot) in ended.into_iter().take(batch) {
            let mut locked = slot.lock();
            let actions = locked.engine.retire();
            dispatch(&mut locked, None, actions, now);
            drop(locked);
            self.forget(&slot);
            // Its timer task sees it expired and archives it.
            slot.wake.notify_one();
        }
        Ok(())
    }

    /// Every session held plus the archived ones, oldest first, with journals.
    pub(super) fn with_journals(&self) -> Vec<(SessionSummary, Vec<JournalEntry>)> {
        let mut all: Vec<(SessionSummary, Vec<JournalEntry>)> = lock(&self.archive)
            .sessions
            .iter()
            .map(|(summary, journal, _)| (summary.clone(), journal.clone()))
            .collect();
        for slot in self.slots() {
            if all.iter().all(|(s, _)| s.session_id != slot.id.as_str()) {
                all.push((slot.summary(), slot.journal_since(0).0));
            }
        }
        all.sort_by_key(|(s, _)| s.created_at_ms);
        all
    }
}
