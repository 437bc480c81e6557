//! One open connection's life: frames read into the conversation, the join after the history,
//! heartbeats, queued messages sent, and unechoed ones resent or marked failed.

use std::ops::ControlFlow;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mock_server::protocol::{ClientEvent, ClientFrame, ServerEvent, decode_server_frame};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

use super::connection::Socket;
use super::frames::{encode, frame_client_id, message_frame};
use super::{Defect, Defects, Shared, lock};

/// How long to wait for an echo before resending a message (spec §4.4).
const ECHO_TIMEOUT: Duration = Duration::from_secs(5);
/// Resends before a message is marked failed (spec §4.4).
const MAX_RESENDS: u32 = 3;

pub(super) enum Ended {
    /// `SESSION_END` arrived: done for good.
    Session,
    /// The socket went away unexpectedly: reconnect.
    Dropped,
    /// The app is closing.
    Stopped,
}

/// Heartbeat period: the advertised one, or 30 s (spec §3.5).
fn heartbeat_period(advertised: Option<u32>, defects: Defects) -> Option<Duration> {
    if defects.has(Defect::NoHeartbeat) {
        return None;
    }
    if defects.has(Defect::OneSecondHeartbeat) {
        return Some(Duration::from_secs(1));
    }
    if defects.has(Defect::Heartbeat2400Ms) {
        return Some(Duration::from_millis(2_400));
    }
    let seconds = if defects.has(Defect::FixedHeartbeat) {
        30
    } else {
        advertised.unwrap_or(30)
    };
    (seconds > 0).then(|| Duration::from_secs(u64::from(seconds)))
}

/// When an unechoed message is next due: resent, or marked failed (spec §4.4: 5 s, then
/// 5000 × retries ms between tries; failed 5 s after the third resend).
fn next_deadline(resends: u32, defects: Defects) -> Duration {
    if defects.has(Defect::ResendTooEarly) {
        return Duration::from_millis(1_500);
    }
    if defects.has(Defect::FailLate) && resends >= MAX_RESENDS {
        return ECHO_TIMEOUT * 4;
    }
    if defects.has(Defect::ResendNoCap) {
        return ECHO_TIMEOUT * (resends + 1);
    }
    if defects.has(Defect::ResendForever) || resends >= MAX_RESENDS || resends == 0 {
        return ECHO_TIMEOUT;
    }
    ECHO_TIMEOUT * (resends + 1)
}

/// One connection's life.
pub(super) async fn converse(
    socket: Socket,
    shared: &Shared,
    queue: &mut mpsc::UnboundedReceiver<String>,
    defects: Defects,
    after_drop: bool,
) -> Ended {
    let mut link = Link {
        socket,
        shared,
        defects,
        after_drop,
        history_seen: false,
        ended: false,
        timed_join: timed_join(defects),
        heartbeat: None,
        deadlines: Vec::new(),
    };
    if defects.has(Defect::JoinBeforeHistory)
        && !link.agent_known()
        && let ControlFlow::Break(ended) = link.join().await
    {
        return ended;
    }
    let opened = Instant::now();
    let mut fixed_join = link.timed_join.map(|delay| opened + delay);
    let mut resend = tokio::time::interval(Duration::from_millis(250));
    loop {
        let heartbeat = &mut link.heartbeat;
        let beat = async move {
            match heartbeat.as_mut() {
                Some(interval) => {
                    interval.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let delayed_join = async {
            match fixed_join {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending::<()>().await,
            }
        };
        let next = tokio::select! {
            frame = link.socket.next() => link.on_frame(frame).await,
            () = delayed_join => {
                fixed_join = None;
                link.on_timed_join().await
            }
            outgoing = queue.recv(), if link.history_seen && !link.ended => {
                link.send_queued(outgoing).await
            }
            () = beat, if !link.ended => {
                let frame = encode(&ClientFrame::new(ClientEvent::Heartbeat), defects);
                link.send(frame).await
            }
            _ = resend.tick(), if !link.ended => link.resend_due().await,
        };
        if let ControlFlow::Break(ended) = next {
            return ended;
        }
    }
}

/// The delay after which a defect joins on a timer instead of after the history.
fn timed_join(defects: Defects) -> Option<Duration> {
    if defects.has(Defect::JoinAfterFixedDelay) {
        Some(Duration::from_millis(400))
    } else if defects.has(Defect::JoinOn1500MsTimer) {
        Some(Duration::from_millis(1_500))
    } else {
        None
    }
}

/// One open connection and what its life has seen so far. Each step of it breaks with how
/// the connection ended, or continues.
struct Link<'s> {
    socket: Socket,
    shared: &'s Shared,
    defects: Defects,
    /// The connection follows an unexpected close.
    after_drop: bool,
    /// The history (the first batch) arrived: the join and the queue may go.
    history_seen: bool,
    /// `SESSION_END` arrived (a defect may keep the socket open after it).
    ended: bool,
    /// A defect's delay for a join on a timer rather than after the history.
    timed_join: Option<Duration>,
    heartbeat: Option<tokio::time::Interval>,
    /// Each unechoed message's client id and when it is next due.
    deadlines: Vec<(String, Instant)>,
}

impl Link<'_> {
    /// The agent joined, or the join went out.
    fn agent_known(&self) -> bool {
        lock(&self.shared.conversation).agent_joined_or_asked()
    }

    /// Sends `frame`; a failed send is a dropped connection.
    async fn send(&mut self, frame: String) -> ControlFlow<Ended> {
        if self.socket.send(Message::text(frame)).await.is_err() {
            return ControlFlow::Break(Ended::Dropped);
        }
        ControlFlow::Continue(())
    }

    /// Asks the agent to join (and remembers it did).
    async fn join(&mut self) -> ControlFlow<Ended> {
        lock(&self.shared.conversation).join_sent = true;
        let frame = encode(
            &ClientFrame::new(ClientEvent::RequestPolyAgentJoin),
            self.defects,
        );
        self.send(frame).await
    }

    /// A frame read from the socket: taken into the conversation; the history starts the
    /// heartbeat, the join and the resends; the end closes the socket.
    async fn on_frame(
        &mut self,
        frame: Option<Result<Message, tungstenite::Error>>,
    ) -> ControlFlow<Ended> {
        let defects = self.defects;
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                return ControlFlow::Break(if self.ended {
                    Ended::Session
                } else {
                    Ended::Dropped
                });
            }
            Some(Ok(_)) => return ControlFlow::Continue(()),
        };
        // Undecodable frames are ignored, never fatal (spec §11 ERR-2).
        let Ok(envelope) = decode_server_frame(&text) else {
            return ControlFlow::Continue(());
        };
        let unknown = matches!(envelope.event, ServerEvent::Unknown(_));
        let error = matches!(&envelope.event, ServerEvent::SystemMessage(m)
            if m.level == mock_server::protocol::SystemMessageLevel::Error);
        if (defects.has(Defect::CloseOnUnknownEvent) && unknown)
            || (defects.has(Defect::CloseOnErrorMessage) && error)
        {
            let _ = self.socket.close(None).await;
            return ControlFlow::Break(Ended::Stopped);
        }
        let batch = match &envelope.event {
            ServerEvent::EventBatch(b) => Some(
                b.events
                    .iter()
                    .map(|e| e.event.event_type().to_owned())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        };
        let ends = matches!(envelope.event, ServerEvent::SessionEnd(_))
            || batch
                .as_ref()
                .is_some_and(|types| types.iter().any(|t| t == ServerEvent::SESSION_END));
        if defects.has(Defect::DropOutOfOrderLive)
            && batch.is_none()
            && let Some(sequence) = envelope.sequence
            && sequence.0 < lock(&self.shared.conversation).last_sequence()
        {
            return ControlFlow::Continue(());
        }
        lock(&self.shared.conversation).ingest(envelope);
        if let Some(types) = batch.filter(|_| !self.history_seen) {
            self.history_seen = true;
            self.on_history(&types, ends).await?;
        }
        if ends && !self.ended {
            self.ended = true;
            if !defects.has(Defect::NoCloseAfterEnd) {
                let _ = self.socket.close(None).await;
                return ControlFlow::Break(Ended::Session);
            }
        }
        ControlFlow::Continue(())
    }

    /// The history (a batch of event `types`) arrived: the heartbeat starts, the agent is
    /// asked to join unless it is there (or the batch `ends` the session), and the unechoed
    /// messages go again.
    async fn on_history(&mut self, types: &[String], ends: bool) -> ControlFlow<Ended> {
        let defects = self.defects;
        self.start_heartbeat();
        // Join only after the history, only if the agent never joined (WS-2/3/4).
        let join = if defects.has(Defect::JoinFromReplayOnly) {
            !types.iter().any(|t| t == ServerEvent::POLY_AGENT_JOINED)
        } else if defects.has(Defect::JoinOnReconnect) {
            lock(&self.shared.conversation).join_sent || !self.agent_known()
        } else if defects.has(Defect::RejoinAfterDrop) && self.after_drop {
            true
        } else {
            !self.agent_known()
        };
        if join && !defects.has(Defect::JoinBeforeHistory) && self.timed_join.is_none() && !ends {
            self.join().await?;
        }
        self.resend_unechoed().await
    }

    /// Starts the heartbeat at the period the session advertised (unless it runs already).
    fn start_heartbeat(&mut self) {
        let defects = self.defects;
        let advertised = lock(&self.shared.conversation)
            .session_start()
            .and_then(|c| c.heartbeat_interval_seconds);
        let stopped = defects.has(Defect::HeartbeatNotRestarted) && self.after_drop;
        if self.heartbeat.is_none()
            && !stopped
            && let Some(period) = heartbeat_period(advertised, defects)
        {
            self.heartbeat = Some(tokio::time::interval_at(Instant::now() + period, period));
        }
    }

    /// Messages that went out before a drop and whose echo is not in the history are sent
    /// again now; messages never sent are still in the queue.
    async fn resend_unechoed(&mut self) -> ControlFlow<Ended> {
        let unechoed: Vec<String> =
            if self.defects.has(Defect::ResendEchoedAfterReconnect) && self.after_drop {
                lock(&self.shared.conversation).sent_frames.clone()
            } else {
                lock(&self.shared.conversation)
                    .pending
                    .iter()
                    .filter(|p| p.sent && !p.failed)
                    .map(|p| p.frame.clone())
                    .collect()
            };
        for frame in unechoed {
            if let Some(id) = frame_client_id(&frame) {
                self.deadlines.retain(|(d, _)| *d != id);
                self.deadlines.push((id, Instant::now() + ECHO_TIMEOUT));
            }
            self.send(frame).await?;
        }
        ControlFlow::Continue(())
    }

    /// A defect's join timer went off: the join, unless the agent is there.
    async fn on_timed_join(&mut self) -> ControlFlow<Ended> {
        if !self.agent_known() {
            return self.join().await;
        }
        ControlFlow::Continue(())
    }

    /// A message from the app's queue goes out, its echo due; a closed queue stops.
    async fn send_queued(&mut self, outgoing: Option<String>) -> ControlFlow<Ended> {
        let Some(frame) = outgoing else {
            return ControlFlow::Break(Ended::Stopped);
        };
        if let Some(id) = frame_client_id(&frame) {
            if let Some(p) = lock(&self.shared.conversation)
                .pending
                .iter_mut()
                .find(|p| p.client_event_id == id)
            {
                p.sent = true;
            }
            self.deadlines
                .push((id, Instant::now() + next_deadline(0, self.defects)));
        }
        self.send(frame).await
    }

    /// Resends the messages whose echo is overdue.
    async fn resend_due(&mut self) -> ControlFlow<Ended> {
        let again = due_resends(self.shared, &mut self.deadlines, self.defects);
        for frame in again {
            self.send(frame).await?;
        }
        ControlFlow::Continue(())
    }
}

/// Unechoed messages whose deadline passed: resent (up to 3 times), then marked failed.
fn due_resends(
    shared: &Shared,
    deadlines: &mut Vec<(String, Instant)>,
    defects: Defects,
) -> Vec<String> {
    let now = Instant::now();
    let mut again = Vec::new();
    let mut conversation = lock(&shared.conversation);
    deadlines.retain(|(id, _)| {
        conversation
            .pending
            .iter()
            .any(|p| &p.client_event_id == id && !p.failed)
    });
    for (id, deadline) in deadlines.iter_mut() {
        if *deadline > now || defects.has(Defect::NoResend) {
            continue;
        }
        let Some(pending) = conversation
            .pending
            .iter_mut()
            .find(|p| &p.client_event_id == id)
        else {
            continue;
        };
        let capped = !defects.has(Defect::ResendForever) && !defects.has(Defect::ResendNoCap);
        if pending.resends >= MAX_RESENDS && capped {
            pending.failed = true;
            continue;
        }
        pending.resends += 1;
        if defects.has(Defect::ResendNewId) {
            let fresh = uuid::Uuid::new_v4().to_string();
            pending.frame = encode(&message_frame(&pending.text, &fresh), defects);
            pending.client_event_id = fresh.clone();
            *id = fresh;
        }
        *deadline = now + next_deadline(pending.resends, defects);
        if defects.has(Defect::FailAtLastResend) && pending.resends >= MAX_RESENDS {
            pending.failed = true;
        }
        again.push(pending.frame.clone());
    }
    again
}
