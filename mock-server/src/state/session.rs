//! One session behind its lock: the engine, its connections' queues, its journal; and the
//! dispatch that carries the engine's actions to those connections in order.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{Notify, mpsc};

use crate::auth::AccessClaims;
use crate::config::SessionBinding;
use crate::engine::{
    Action, CLOSE_SESSION_ENDED, ConnId, Note, Now, Phase, Recipient, Refusal, Session,
    SessionStatus,
};
use crate::journal::{Closer, EchoFrame, JournalEntry, JournalEvent, SessionJournal};
use crate::protocol::SessionId;

use super::stop::{Stop, StopReason};

/// Frames a connection's task must write, queued by other tasks.
#[derive(Debug)]
pub enum Outbound {
    Frame(Utf8Bytes),
    Close {
        code: u16,
        reason: &'static str,
    },
    /// End the TCP connection without a close frame.
    Drop,
}

/// Per-connection queue depth. A client this far behind is closed rather than buffered forever.
pub(super) const OUTBOUND_QUEUE: usize = 1024;

/// The close code for a connection that fell [`OUTBOUND_QUEUE`] frames behind.
pub const CLOSE_OVERFLOW: u16 = 1011;

#[derive(Debug)]
pub(super) struct ConnHandle {
    pub(super) id: ConnId,
    pub(super) tx: mpsc::Sender<Outbound>,
    /// Tripped when the session drops the connection for overflowing its queue (its task,
    /// blocked on a client that does not read, then closes it at once) or the server stops.
    pub(super) stop: Arc<Stop>,
}

/// What a handshake reserved: one of the session's connection slots.
#[derive(Debug)]
pub(super) struct Slots {
    pub(super) reserved: usize,
}

#[derive(Debug)]
pub(crate) struct Locked {
    pub(crate) engine: Session,
    pub(super) conns: Vec<ConnHandle>,
    pub(super) slots: Slots,
    /// The deadline the timer task sleeps towards; an earlier one must wake it.
    pub(super) timer_target: Option<Duration>,
    /// Frames counted in the current rate-limit window (spec §12 A11).
    pub(super) window: (Duration, u32),
    pub(crate) journal: SessionJournal,
    /// The client gets a grace to close after `SESSION_END` (the close is journaled by the
    /// connection task then, as it learns who closed).
    pub(super) end_close_grace: bool,
}

impl Locked {
    pub(super) fn note(&mut self, now: Now, event: JournalEvent) {
        self.journal.push(JournalEntry {
            at_ms: now.elapsed.as_millis() as u64,
            unix_ms: now.unix_millis,
            event,
        });
        self.release_idle_file();
    }

    /// Journals an echo-path frame from its borrowed text (see [`SessionJournal::push_frame`]).
    pub(super) fn note_frame(&mut self, now: Now, frame: EchoFrame, text: &str) {
        let at_ms = now.elapsed.as_millis() as u64;
        self.journal.push_frame(at_ms, now.unix_millis, frame, text);
        self.release_idle_file();
    }

    /// A session without sockets writes seldom: its recording holds no descriptor meanwhile.
    fn release_idle_file(&mut self) {
        if self.conns.is_empty() {
            self.journal.release_file();
        }
    }

    pub(crate) fn open_sockets(&self) -> usize {
        self.conns.len()
    }
}

/// One session: the engine and its connections, behind one lock.
#[derive(Debug)]
pub struct SessionSlot {
    pub id: SessionId,
    /// The connector (id) whose token created the session.
    pub connector: String,
    /// The scenario the session runs.
    pub scenario: String,
    /// Mock-clock milliseconds at creation.
    pub created_at_ms: u64,
    /// Woken whenever the journal grows (journal followers wait on it).
    pub(crate) journal_grew: Notify,
    /// The token `jti` or connector id the session is bound to (spec §12 A8).
    pub(super) binding: String,
    pub(super) locked: Mutex<Locked>,
    pub(super) wake: Notify,
}

impl SessionSlot {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Locked> {
        // A poisoned lock means a panic elsewhere; the data is still consistent enough to go on.
        self.locked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `claims` may use this session.
    pub fn accepts(&self, claims: &AccessClaims, binding: SessionBinding) -> bool {
        match binding {
            SessionBinding::Token => self.binding == claims.jti,
            SessionBinding::Connector => self.binding == claims.sub,
        }
    }

    pub fn status(&self) -> SessionStatus {
        self.lock().engine.status()
    }

    /// Journal entries from absolute index `from`, and the index after them.
    pub fn journal_since(&self, from: u64) -> (Vec<JournalEntry>, u64) {
        let locked = self.lock();
        (locked.journal.since(from), locked.journal.total())
    }

    /// Waits until the journal grows (or a timeout, so followers notice a closed client).
    pub async fn journal_changed(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.journal_grew.notified()).await;
    }

    /// A point-in-time summary for the control API.
    pub fn summary(&self) -> SessionSummary {
        let locked = self.lock();
        let (phase, live_agent_id, end_reason) = match locked.engine.phase() {
            Phase::AwaitingJoin => (SessionPhase::AwaitingJoin, None, None),
            Phase::Joining => (SessionPhase::Joining, None, None),
            Phase::PolyAgent => (SessionPhase::Agent, None, None),
            Phase::Queue => (SessionPhase::HandoffQueued, None, None),
            Phase::LiveAgent(agent) => (SessionPhase::LiveAgent, Some(agent.id.clone()), None),
            Phase::NoAgent => (SessionPhase::NoAgent, None, None),
            Phase::Ended(reason) => (SessionPhase::Ended, None, Some(reason.as_str().to_owned())),
        };
        let state = match (&live_agent_id, &end_reason) {
            (Some(agent), _) => format!("live_agent:{agent}"),
            (_, Some(reason)) => format!("ended:{reason}"),
            _ => phase.as_str().to_owned(),
        };
        SessionSummary {
            session_id: self.id.to_string(),
            connector: self.connector.clone(),
            scenario: self.scenario.clone(),
            streaming: locked.engine.streaming(),
            phase,
            live_agent_id,
            end_reason,
            state,
            status: match locked.engine.status() {
                SessionStatus::Active => SummaryStatus::Active,
                SessionStatus::Ended => SummaryStatus::Ended,
                SessionStatus::Expired => SummaryStatus::Expired,
            },
            open_sockets: locked.open_sockets(),
            last_sequence: locked.engine.history().last_sequence().map_or(0, |s| s.0),
            journal_entries: locked.journal.total(),
            recording_error: locked.journal.write_error().map(str::to_owned),
            created_at_ms: self.created_at_ms,
        }
    }
}

/// Where a session's conversation is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SessionPhase {
    /// No join request yet.
    AwaitingJoin,
    /// The join was requested; the agent's join steps are playing.
    Joining,
    /// The AI agent is in the conversation.
    Agent,
    /// Handed off, waiting in a live agent's queue.
    HandoffQueued,
    /// A live agent is in the conversation (`live_agent_id`).
    LiveAgent,
    /// After a client-managed or failed handoff, or a live agent left.
    NoAgent,
    /// `SESSION_END` was sent (`end_reason`).
    Ended,
}

impl SessionPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingJoin => "awaiting_join",
            Self::Joining => "joining",
            Self::Agent => "agent",
            Self::HandoffQueued => "handoff_queued",
            Self::LiveAgent => "live_agent",
            Self::NoAgent => "no_agent",
            Self::Ended => "ended",
        }
    }
}

/// Whether a session still runs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SummaryStatus {
    Active,
    /// Ended, and still replayable.
    Ended,
    /// Forgotten: handshakes get 404.
    Expired,
}

/// What the control API says about a session.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SessionSummary {
    pub session_id: String,
    pub connector: String,
    pub scenario: String,
    pub streaming: bool,
    /// Where the conversation is.
    pub phase: SessionPhase,
    /// The live agent's id, in the `live_agent` phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_agent_id: Option<String>,
    /// The `SESSION_END` reason, in the `ended` phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    /// The phase as one string, as before `phase` existed: `live_agent:<id>` and
    /// `ended:<reason>` carry the id and the reason. Read `phase` and its fields instead.
    pub state: String,
    pub status: SummaryStatus,
    pub open_sockets: usize,
    pub last_sequence: u64,
    pub journal_entries: u64,
    /// Why this session's recording (`--record`) stopped, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_error: Option<String>,
    pub created_at_ms: u64,
}

/// Why a connection slot could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveError {
    Gone,
    Full,
    /// A scenario fault refuses the handshake.
    Refused(Refusal),
}

/// Carries out `actions`: frames for other connections are queued now (under the lock, to keep
/// order); frames for `own` are returned for its task to write.
pub(super) fn dispatch(
    locked: &mut Locked,
    own: Option<ConnId>,
    actions: Vec<Action>,
    now: Now,
) -> Vec<Outbound> {
    let mut mine = Vec::new();
    let mut overflowed = Vec::new();
    for action in actions {
        if let Some((to, outbound)) = journal_action(locked, action, now) {
            deliver(locked, own, to, &outbound, now, &mut mine, &mut overflowed);
        }
    }
    // A connection that cannot keep up loses its queue, and its task closes it with 1011 at
    // once; the journal says so now (later frames went to no one).
    for conn in overflowed {
        if let Some(at) = locked.conns.iter().position(|c| c.id == conn) {
            let handle = locked.conns.remove(at);
            handle.stop.trip(StopReason::Overflowed);
            locked.note(
                now,
                JournalEvent::Close {
                    conn: Some(conn),
                    code: Some(CLOSE_OVERFLOW),
                    by: Closer::Server,
                },
            );
        }
    }
    mine
}

/// Journals an action; what it sends, and to whom (`None` for a note, which sends nothing).
/// A frame's bytes are shared by the journal and every connection's copy.
fn journal_action(locked: &mut Locked, action: Action, now: Now) -> Option<(Recipient, Outbound)> {
    match action {
        Action::Send { to, frame } => {
            let conn = match to {
                Recipient::All => None,
                Recipient::Conn(id) => Some(id),
            };
            locked.note_frame(now, EchoFrame::Server { conn }, &frame);
            Some((to, Outbound::Frame(Utf8Bytes::from(frame))))
        }
        Action::Close { to, code, reason } => Some((to, Outbound::Close { code, reason })),
        Action::Drop { to } => Some((to, Outbound::Drop)),
        Action::Note(note) => {
            let event = match note {
                Note::Fault(fault) => JournalEvent::Fault { fault },
                Note::Timer(what) => JournalEvent::Timer { what: what.into() },
            };
            locked.note(now, event);
            None
        }
    }
}

/// Hands `outbound` to each connection it is addressed to: `own`'s copy into `mine`, the
/// others' into their queues (a full queue is noted in `overflowed`). A connection sent a
/// close or drop leaves the session here.
fn deliver(
    locked: &mut Locked,
    own: Option<ConnId>,
    to: Recipient,
    outbound: &Outbound,
    now: Now,
    mine: &mut Vec<Outbound>,
    overflowed: &mut Vec<ConnId>,
) {
    let mut ending = Vec::new();
    for conn in &locked.conns {
        let addressed = match to {
            Recipient::All => true,
            Recipient::Conn(id) => id == conn.id,
        };
        if !addressed {
            continue;
        }
        let copy = match outbound {
            Outbound::Frame(frame) => Outbound::Frame(frame.clone()),
            Outbound::Close { code, reason } => {
                ending.push((conn.id, Some(*code)));
                Outbound::Close {
                    code: *code,
                    reason,
                }
            }
            Outbound::Drop => {
                ending.push((conn.id, None));
                Outbound::Drop
            }
        };
        if Some(conn.id) == own {
            mine.push(copy);
        } else if conn.tx.try_send(copy).is_err() && !overflowed.contains(&conn.id) {
            overflowed.push(conn.id);
        }
    }
    // A connection being closed gets nothing after its close, and the journal says so
    // now: later frames went to no one (the connection task journals the close after
    // `SESSION_END` itself when the client has a grace to close first).
    for (conn, code) in ending {
        locked.conns.retain(|c| c.id != conn);
        let graced = locked.end_close_grace && code == Some(CLOSE_SESSION_ENDED);
        if !graced {
            locked.note(
                now,
                JournalEvent::Close {
                    conn: Some(conn),
                    code,
                    by: Closer::Server,
                },
            );
        }
    }
}
