//! Faults injected into proxied traffic: the mock's own faults, posted as the mock takes them
//! (`POST /_mock/sessions/{id}/faults`, the same JSON), acting on what the upstream sends
//! instead of on a scripted session.
//!
//! A fault that acts now (drop, close, resend, an unknown event) reaches every live connection
//! of the session. A fault on "the next" event, replay or echo is taken by the first of the
//! session's connections that meets one. What the upstream sent is journaled and recorded
//! as it came, with the fault beside it, so a recording replays the real service, not the fault.
//! The upstream keeps the session: `expire_session` and `expire_token` are played by the proxy
//! (sockets closed with 4001, later handshakes refused with 404 or 401).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use super::lock;
use crate::engine::faults::{alternate_shape, with_unknown_fields};
use crate::engine::history::encode_batch;
use crate::engine::ids::IdGen;
use crate::engine::{CLOSE_SESSION_UNKNOWN, Refusal};
use crate::protocol::{ClientEvent, ServerEvent};
use crate::scenario::Fault;

/// What a fault asks of one live connection now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Command {
    /// Both sides go away without a close frame (the client sees 1006).
    Drop,
    /// The client is closed with this code, the upstream with 1000.
    Close { code: u16, reason: &'static str },
    /// This frame goes to the client.
    Send(String),
}

/// What becomes of one frame from the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Out {
    Send(String),
    /// Sent after this long (a delayed echo); later frames do not wait for it.
    Later(Duration, String),
    /// The connection is dropped here (a drop during a replay).
    Drop,
}

/// Faults armed for the next event, replay, echo or handshake.
#[derive(Debug, Default)]
struct Pending {
    duplicate: bool,
    omit: bool,
    unknown_fields: bool,
    null_sequence: bool,
    swap: bool,
    /// The event a swap holds back until the next one has gone.
    held: Option<String>,
    split_replay: Option<usize>,
    drop_replay_after: Option<usize>,
    reverse_replay: bool,
    alternate_shape: bool,
    delay_echo: Option<Duration>,
    omit_echo: bool,
    /// User messages still to lose (`drop_next_echo`, `drop_echoes`).
    drop_messages: u32,
    /// Handshakes still to refuse, and with which status.
    refuse: Option<(u32, u16)>,
    token_expired: bool,
    session_expired: bool,
}

impl Pending {
    /// Whether a frame in either direction has anything to look at.
    fn touches_frames(&self) -> bool {
        self.duplicate
            || self.omit
            || self.unknown_fields
            || self.null_sequence
            || self.swap
            || self.held.is_some()
            || self.split_replay.is_some()
            || self.drop_replay_after.is_some()
            || self.reverse_replay
            || self.alternate_shape
            || self.delay_echo.is_some()
            || self.omit_echo
            || self.drop_messages > 0
    }
}

/// One session's faults and live connections.
#[derive(Debug)]
pub(super) struct SessionFaults {
    /// Set while any frame fault is pending: the frame path reads only this when none is.
    armed: AtomicBool,
    pending: Mutex<Pending>,
    live: Mutex<Vec<(u64, mpsc::UnboundedSender<Command>)>>,
    ids: Mutex<IdGen>,
}

impl SessionFaults {
    pub(super) fn new(seed: u64) -> Self {
        Self {
            armed: AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            live: Mutex::new(Vec::new()),
            ids: Mutex::new(IdGen::from_seed(seed)),
        }
    }

    /// Connection `conn` is open: commands for it arrive on the receiver.
    pub(super) fn register(&self, conn: u64) -> mpsc::UnboundedReceiver<Command> {
        let (sender, receiver) = mpsc::unbounded_channel();
        lock(&self.live).push((conn, sender));
        receiver
    }

    pub(super) fn unregister(&self, conn: u64) {
        lock(&self.live).retain(|(c, _)| *c != conn);
    }

    /// The live connections' numbers.
    pub(super) fn live(&self) -> Vec<u64> {
        lock(&self.live).iter().map(|(c, _)| *c).collect()
    }

    fn broadcast(&self, command: &Command) {
        lock(&self.live).retain(|(_, sender)| sender.send(command.clone()).is_ok());
    }

    /// The refusal the next handshake gets, counting it.
    pub(super) fn refuse_handshake(&self) -> Option<Refusal> {
        let mut pending = lock(&self.pending);
        if pending.session_expired {
            return Some(Refusal::with_status(404));
        }
        if pending.token_expired {
            return Some(Refusal::with_status(401));
        }
        let (count, status) = pending.refuse?;
        pending.refuse = (count > 1).then_some((count - 1, status));
        Some(Refusal::with_status(status))
    }

    /// Applies `fault`. `history` gives the session's events so far by sequence (from its
    /// journal), for the faults that send one again; `unix_ms` stamps a frame made here.
    pub(super) fn apply(
        &self,
        fault: &Fault,
        history: impl FnOnce() -> BTreeMap<u64, String>,
        unix_ms: u64,
    ) {
        let now = |command: Command| self.broadcast(&command);
        {
            let mut p = lock(&self.pending);
            match fault {
                Fault::Drop => now(Command::Drop),
                Fault::Close(code) => now(Command::Close {
                    code: *code,
                    reason: "proxy fault",
                }),
                Fault::DuplicateNext => p.duplicate = true,
                Fault::SwapNext => p.swap = true,
                Fault::OmitNext => p.omit = true,
                Fault::UnknownFieldsNext => p.unknown_fields = true,
                Fault::NullSequenceNext => p.null_sequence = true,
                Fault::SplitNextReplay(n) => p.split_replay = Some(*n),
                Fault::DropNextReplayAfter(n) => p.drop_replay_after = Some(*n),
                Fault::ReverseNextReplay => p.reverse_replay = true,
                Fault::AlternateShapeNextReplay => p.alternate_shape = true,
                Fault::DelayNextEcho(delay) => p.delay_echo = Some(*delay),
                Fault::OmitNextEcho => p.omit_echo = true,
                Fault::DropEchoes(n) => p.drop_messages = p.drop_messages.saturating_add(*n),
                Fault::RefuseHandshakes { count, status } => p.refuse = Some((*count, *status)),
                Fault::ExpireToken => p.token_expired = true,
                Fault::ExpireSession => {
                    p.session_expired = true;
                    now(Command::Close {
                        code: CLOSE_SESSION_UNKNOWN,
                        reason: "session not found",
                    });
                }
                Fault::Resend(sequence) => {
                    if let Some(event) = history().remove(sequence) {
                        now(Command::Send(event));
                    }
                }
                Fault::ResendPrevious(back) => {
                    let mut events = history();
                    let newest = events.keys().next_back().copied().unwrap_or(0);
                    let wanted = newest.checked_sub(back - 1).filter(|s| *s > 0);
                    if let Some(event) = wanted.and_then(|s| events.remove(&s)) {
                        now(Command::Send(event));
                    }
                }
                Fault::ResendHistory => {
                    let events = history();
                    let events: Vec<&str> = events.values().map(String::as_str).collect();
                    let batch = encode_batch(&events, &mut lock(&self.ids), unix_ms);
                    now(Command::Send(batch));
                }
                Fault::UnknownEvent(event_type) => {
                    let id = lock(&self.ids).event_id(unix_ms);
                    let timestamp = crate::protocol::ids::Timestamp::from_unix_millis(unix_ms);
                    let frame = serde_json::json!({
                        "id": id.as_str(),
                        "sequence": null,
                        "timestamp": timestamp.as_str(),
                        "type": event_type,
                        "payload": { "note": "an event type the docs do not list (proxy fault)" },
                    });
                    now(Command::Send(frame.to_string()));
                }
            }
            self.armed.store(p.touches_frames(), Ordering::Release);
        }
    }

    /// Whether the client's frame goes on to the upstream (a lost user message does not).
    pub(super) fn forward_client(&self, text: &str) -> bool {
        if !self.armed.load(Ordering::Acquire) || !text.contains("USER_MESSAGE") {
            return true;
        }
        let user_message = serde_json::from_str::<Value>(text)
            .is_ok_and(|v| v["type"] == ClientEvent::USER_MESSAGE);
        let mut p = lock(&self.pending);
        if !user_message || p.drop_messages == 0 {
            return true;
        }
        p.drop_messages -= 1;
        self.armed.store(p.touches_frames(), Ordering::Release);
        false
    }

    /// What the client gets for `text` from the upstream (a batch when `batch`): `None` when
    /// no fault is armed, and the frame goes on as it came.
    pub(super) fn deliver(&self, text: &str, batch: bool, unix_ms: u64) -> Option<Vec<Out>> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let mut p = lock(&self.pending);
        let out = if batch {
            self.replay(&mut p, text, unix_ms)
        } else {
            live(&mut p, text)
        };
        self.armed.store(p.touches_frames(), Ordering::Release);
        Some(out)
    }

    fn replay(&self, p: &mut Pending, text: &str, unix_ms: u64) -> Vec<Out> {
        let replay_fault = p.split_replay.is_some()
            || p.drop_replay_after.is_some()
            || p.reverse_replay
            || p.alternate_shape;
        if !replay_fault {
            return vec![Out::Send(text.to_owned())];
        }
        #[derive(Deserialize)]
        struct Batch<'a> {
            #[serde(borrow)]
            payload: Events<'a>,
        }
        #[derive(Deserialize)]
        struct Events<'a> {
            #[serde(borrow)]
            events: Vec<&'a RawValue>,
        }
        let Ok(batch) = serde_json::from_str::<Batch<'_>>(text) else {
            return vec![Out::Send(text.to_owned())];
        };
        let mut events: Vec<&str> = batch.payload.events.iter().map(|e| e.get()).collect();
        let reversed = std::mem::take(&mut p.reverse_replay);
        if reversed {
            let start = events
                .first()
                .is_some_and(|e| e.contains(ServerEvent::SESSION_START));
            events[usize::from(start)..].reverse();
        }
        let mut frames: Vec<String> = match p.split_replay.take() {
            Some(size) => {
                let mut ids = lock(&self.ids);
                events
                    .chunks(size.max(1))
                    .map(|chunk| encode_batch(chunk, &mut ids, unix_ms))
                    .collect()
            }
            None if reversed => vec![encode_batch(&events, &mut lock(&self.ids), unix_ms)],
            None => vec![text.to_owned()],
        };
        if std::mem::take(&mut p.alternate_shape) {
            frames = frames.iter().map(|f| alternate_shape(f)).collect();
        }
        let mut out: Vec<Out> = frames.into_iter().map(Out::Send).collect();
        if let Some(after) = p.drop_replay_after.take() {
            out.truncate(after);
            out.push(Out::Drop);
        }
        out
    }
}

/// A live event through the armed next-event faults.
fn live(p: &mut Pending, text: &str) -> Vec<Out> {
    let echo = text.contains(ServerEvent::USER_MESSAGE)
        && serde_json::from_str::<Value>(text)
            .is_ok_and(|v| v["type"] == ServerEvent::USER_MESSAGE);
    if echo && std::mem::take(&mut p.omit_echo) {
        return Vec::new();
    }
    if echo && let Some(delay) = p.delay_echo.take() {
        return vec![Out::Later(delay, text.to_owned())];
    }
    if std::mem::take(&mut p.omit) {
        return Vec::new();
    }
    let mut frame = text.to_owned();
    if std::mem::take(&mut p.unknown_fields) {
        frame = with_unknown_fields(&frame);
    }
    if std::mem::take(&mut p.null_sequence)
        && let Ok(Value::Object(mut envelope)) = serde_json::from_str::<Value>(&frame)
    {
        envelope.insert("sequence".into(), Value::Null);
        frame = Value::Object(envelope).to_string();
    }
    if std::mem::take(&mut p.swap) {
        p.held = Some(frame);
        return Vec::new();
    }
    let mut out = vec![Out::Send(frame.clone())];
    if std::mem::take(&mut p.duplicate) {
        out.push(Out::Send(frame));
    }
    if let Some(held) = p.held.take() {
        out.push(Out::Send(held));
    }
    out
}

/// A session's events by sequence, from the server frames of its journal (live events and
/// the events inside replays), for the faults that send one again.
pub(super) fn events_by_sequence<'a>(
    frames: impl Iterator<Item = &'a str>,
) -> BTreeMap<u64, String> {
    #[derive(Deserialize)]
    struct Frame<'a> {
        #[serde(default)]
        sequence: Option<u64>,
        #[serde(default, rename = "type")]
        kind: Option<&'a str>,
        #[serde(default, borrow)]
        payload: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Events<'a> {
        #[serde(borrow)]
        events: Vec<&'a RawValue>,
    }
    /// Remembers `text` when it has a sequence; a batch's events, to look at next.
    fn add<'a>(out: &mut BTreeMap<u64, String>, text: &'a str) -> Option<Events<'a>> {
        let frame = serde_json::from_str::<Frame<'a>>(text).ok()?;
        if let Some(sequence) = frame.sequence {
            out.insert(sequence, text.to_owned());
        }
        let payload = frame
            .payload
            .filter(|_| frame.kind == Some(ServerEvent::EVENT_BATCH))?;
        serde_json::from_str::<Events<'a>>(payload.get()).ok()
    }
    let mut out = BTreeMap::new();
    for text in frames {
        if let Some(batch) = add(&mut out, text) {
            for event in batch.events {
                add(&mut out, event.get());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(sequence: u64, kind: &str) -> String {
        format!(
            r#"{{"id":"e{sequence}","sequence":{sequence},"timestamp":"2026-12-07T00:00:00Z","type":"{kind}","payload":{{}}}}"#
        )
    }

    fn armed(fault: Fault) -> SessionFaults {
        let faults = SessionFaults::new(7);
        faults.apply(&fault, BTreeMap::new, 0);
        faults
    }

    /// What the client gets: `None` from `deliver` means the frame as it came.
    fn through(faults: &SessionFaults, text: &str, batch: bool) -> Vec<Out> {
        faults
            .deliver(text, batch, 0)
            .unwrap_or_else(|| vec![Out::Send(text.to_owned())])
    }

    fn sent(out: &[Out]) -> Vec<&str> {
        out.iter()
            .filter_map(|o| match o {
                Out::Send(f) => Some(f.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn unarmed_frames_pass_untouched_and_each_next_event_fault_acts_once() {
        let quiet = SessionFaults::new(1);
        let a = event(1, "EVENT_TYPE_POLY_AGENT_MESSAGE");
        assert_eq!(quiet.deliver(&a, false, 0), None);

        let dup = armed(Fault::DuplicateNext);
        assert_eq!(
            sent(&through(&dup, &a, false)),
            vec![a.as_str(), a.as_str()]
        );
        assert_eq!(sent(&through(&dup, &a, false)), vec![a.as_str()]);

        let omit = armed(Fault::OmitNext);
        assert!(through(&omit, &a, false).is_empty());
        assert_eq!(sent(&through(&omit, &a, false)), vec![a.as_str()]);

        let swap = armed(Fault::SwapNext);
        let b = event(2, "EVENT_TYPE_POLY_AGENT_MESSAGE");
        assert!(through(&swap, &a, false).is_empty());
        assert_eq!(
            sent(&through(&swap, &b, false)),
            vec![b.as_str(), a.as_str()]
        );

        let null = armed(Fault::NullSequenceNext);
        let out = through(&null, &a, false);
        let v: Value = serde_json::from_str(sent(&out)[0]).expect("JSON");
        assert!(v["sequence"].is_null());
    }

    #[test]
    fn echo_faults_wait_for_an_echo_and_lost_messages_are_counted() {
        let agent = event(1, "EVENT_TYPE_POLY_AGENT_MESSAGE");
        let echo = event(2, "EVENT_TYPE_USER_MESSAGE");
        let delay = armed(Fault::DelayNextEcho(Duration::from_millis(300)));
        assert_eq!(sent(&through(&delay, &agent, false)), vec![agent.as_str()]);
        assert_eq!(
            through(&delay, &echo, false),
            vec![Out::Later(Duration::from_millis(300), echo.clone())]
        );
        let lose = armed(Fault::DropEchoes(2));
        let message = r#"{"type":"EVENT_TYPE_USER_MESSAGE","payload":{"text":"hi"}}"#;
        let typing = r#"{"type":"EVENT_TYPE_USER_TYPING","payload":{}}"#;
        assert!(lose.forward_client(typing));
        assert!(!lose.forward_client(message));
        assert!(!lose.forward_client(message));
        assert!(lose.forward_client(message));
    }

    #[test]
    fn replay_faults_split_reverse_and_drop_a_batch() {
        let events = [
            event(1, "EVENT_TYPE_SESSION_START"),
            event(2, "EVENT_TYPE_POLY_AGENT_MESSAGE"),
            event(3, "EVENT_TYPE_USER_MESSAGE"),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        let batch = encode_batch(&refs, &mut IdGen::from_seed(3), 0);
        let sequences = |frame: &str| -> Vec<u64> {
            let v: Value = serde_json::from_str(frame).expect("JSON");
            v["payload"]["events"]
                .as_array()
                .expect("events")
                .iter()
                .map(|e| e["sequence"].as_u64().expect("a sequence"))
                .collect()
        };
        let split = armed(Fault::SplitNextReplay(2));
        let out = through(&split, &batch, true);
        assert_eq!(
            sent(&out).iter().map(|f| sequences(f)).collect::<Vec<_>>(),
            [vec![1, 2], vec![3]]
        );
        let reverse = armed(Fault::ReverseNextReplay);
        assert_eq!(
            sequences(sent(&through(&reverse, &batch, true))[0]),
            [1, 3, 2]
        );
        let dropped = armed(Fault::DropNextReplayAfter(1));
        dropped.apply(&Fault::SplitNextReplay(1), BTreeMap::new, 0);
        let out = through(&dropped, &batch, true);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], Out::Drop);
        // A live event does not take a replay fault.
        let live = armed(Fault::ReverseNextReplay);
        assert_eq!(
            sent(&through(&live, &events[1], false)),
            vec![events[1].as_str()]
        );
    }

    #[test]
    fn handshake_refusals_count_down_and_expiry_lasts() {
        let faults = armed(Fault::RefuseHandshakes {
            count: 2,
            status: 503,
        });
        assert_eq!(faults.refuse_handshake().map(|r| r.status), Some(503));
        assert_eq!(faults.refuse_handshake().map(|r| r.status), Some(503));
        assert_eq!(faults.refuse_handshake(), None);
        faults.apply(&Fault::ExpireToken, BTreeMap::new, 0);
        assert_eq!(faults.refuse_handshake().map(|r| r.status), Some(401));
        assert_eq!(faults.refuse_handshake().map(|r| r.status), Some(401));
    }

    #[test]
    fn resends_find_events_live_and_inside_replays() {
        let a = event(1, "EVENT_TYPE_SESSION_START");
        let b = event(2, "EVENT_TYPE_POLY_AGENT_MESSAGE");
        let batch = encode_batch(&[a.as_str()], &mut IdGen::from_seed(3), 0);
        let frames = [batch.as_str(), b.as_str()];
        let history = events_by_sequence(frames.into_iter());
        assert_eq!(history.keys().copied().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(history[&1], a);

        let faults = SessionFaults::new(1);
        let mut receiver = faults.register(1);
        faults.apply(&Fault::ResendPrevious(2), || history.clone(), 0);
        assert_eq!(receiver.try_recv().ok(), Some(Command::Send(a.clone())));
        faults.apply(&Fault::Resend(9), || history.clone(), 0);
        assert!(receiver.try_recv().is_err(), "no event 9: nothing sent");
        faults.apply(&Fault::Drop, BTreeMap::new, 0);
        assert_eq!(receiver.try_recv().ok(), Some(Command::Drop));
    }
}
