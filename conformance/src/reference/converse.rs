//! One open connection's life: frames read into the conversation, the join after the history,
//! heartbeats, queued messages sent, and unechoed ones resent or marked failed.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mock_server::protocol::{ClientEvent, ClientFrame, ServerEvent, decode_server_frame};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

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
    mut socket: Socket,
    shared: &Shared,
    queue: &mut mpsc::UnboundedReceiver<String>,
    defects: Defects,
    after_drop: bool,
) -> Ended {
    let mut history_seen = false;
    let join_frame = || {
        encode(
            &ClientFrame::new(ClientEvent::RequestPolyAgentJoin),
            defects,
        )
    };
    let agent_known = || lock(&shared.conversation).agent_joined_or_asked();
    if defects.has(Defect::JoinBeforeHistory) && !agent_known() {
        lock(&shared.conversation).join_sent = true;
        if socket.send(Message::text(join_frame())).await.is_err() {
            return Ended::Dropped;
        }
    }
    let opened = Instant::now();
    let timed_join = if defects.has(Defect::JoinAfterFixedDelay) {
        Some(Duration::from_millis(400))
    } else if defects.has(Defect::JoinOn1500MsTimer) {
        Some(Duration::from_millis(1_500))
    } else {
        None
    };
    let mut fixed_join = timed_join.map(|delay| opened + delay);
    let mut heartbeat = None::<tokio::time::Interval>;
    let mut resend = tokio::time::interval(Duration::from_millis(250));
    let mut deadlines: Vec<(String, Instant)> = Vec::new();
    let mut ended = false;
    loop {
        let beat = async {
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
        tokio::select! {
            frame = socket.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        return if ended { Ended::Session } else { Ended::Dropped };
                    }
                    Some(Ok(_)) => continue,
                };
                // Undecodable frames are ignored, never fatal (spec §11 ERR-2).
                let Ok(envelope) = decode_server_frame(&text) else { continue };
                let unknown = matches!(envelope.event, ServerEvent::Unknown(_));
                let error = matches!(&envelope.event, ServerEvent::SystemMessage(m)
                    if m.level == mock_server::protocol::SystemMessageLevel::Error);
                if (defects.has(Defect::CloseOnUnknownEvent) && unknown) || (defects.has(Defect::CloseOnErrorMessage) && error) {
                    let _ = socket.close(None).await;
                    return Ended::Stopped;
                }
                let batch = match &envelope.event {
                    ServerEvent::EventBatch(b) => Some(b.events.iter().map(|e| e.event.event_type().to_owned()).collect::<Vec<_>>()),
                    _ => None,
                };
                let ends = matches!(envelope.event, ServerEvent::SessionEnd(_))
                    || batch.as_ref().is_some_and(|types| types.iter().any(|t| t == ServerEvent::SESSION_END));
                if defects.has(Defect::DropOutOfOrderLive) && batch.is_none()
                    && let Some(sequence) = envelope.sequence
                    && sequence.0 < lock(&shared.conversation).last_sequence()
                {
                    continue;
                }
                lock(&shared.conversation).ingest(envelope);
                if let Some(types) = batch.filter(|_| !history_seen) {
                    history_seen = true;
                    let advertised = lock(&shared.conversation)
                        .session_start()
                        .and_then(|c| c.heartbeat_interval_seconds);
                    let stopped = defects.has(Defect::HeartbeatNotRestarted) && after_drop;
                    if heartbeat.is_none()
                        && !stopped
                        && let Some(period) = heartbeat_period(advertised, defects)
                    {
                        heartbeat = Some(tokio::time::interval_at(Instant::now() + period, period));
                    }
                    // Join only after the history, only if the agent never joined (WS-2/3/4).
                    let join = if defects.has(Defect::JoinFromReplayOnly) {
                        !types.iter().any(|t| t == ServerEvent::POLY_AGENT_JOINED)
                    } else if defects.has(Defect::JoinOnReconnect) {
                        lock(&shared.conversation).join_sent || !agent_known()
                    } else if defects.has(Defect::RejoinAfterDrop) && after_drop {
                        true
                    } else {
                        !agent_known()
                    };
                    if join && !defects.has(Defect::JoinBeforeHistory) && timed_join.is_none() && !ends {
                        lock(&shared.conversation).join_sent = true;
                        if socket.send(Message::text(join_frame())).await.is_err() {
                            return Ended::Dropped;
                        }
                    }
                    // Messages that went out before a drop and whose echo is not in the history
                    // are sent again now; messages never sent are still in the queue.
                    let unechoed: Vec<String> = if defects.has(Defect::ResendEchoedAfterReconnect) && after_drop {
                        lock(&shared.conversation).sent_frames.clone()
                    } else {
                        lock(&shared.conversation)
                            .pending
                            .iter()
                            .filter(|p| p.sent && !p.failed)
                            .map(|p| p.frame.clone())
                            .collect()
                    };
                    for frame in unechoed {
                        if let Some(id) = frame_client_id(&frame) {
                            deadlines.retain(|(d, _)| *d != id);
                            deadlines.push((id, Instant::now() + ECHO_TIMEOUT));
                        }
                        if socket.send(Message::text(frame)).await.is_err() {
                            return Ended::Dropped;
                        }
                    }
                }
                if ends && !ended {
                    ended = true;
                    if !defects.has(Defect::NoCloseAfterEnd) {
                        let _ = socket.close(None).await;
                        return Ended::Session;
                    }
                }
            }
            () = delayed_join => {
                fixed_join = None;
                if !agent_known() {
                    lock(&shared.conversation).join_sent = true;
                    if socket.send(Message::text(join_frame())).await.is_err() {
                        return Ended::Dropped;
                    }
                }
            }
            outgoing = queue.recv(), if history_seen && !ended => {
                let Some(frame) = outgoing else { return Ended::Stopped };
                if let Some(id) = frame_client_id(&frame) {
                    if let Some(p) = lock(&shared.conversation).pending.iter_mut().find(|p| p.client_event_id == id) {
                        p.sent = true;
                    }
                    deadlines.push((id, Instant::now() + next_deadline(0, defects)));
                }
                if socket.send(Message::text(frame)).await.is_err() {
                    return Ended::Dropped;
                }
            }
            () = beat, if !ended => {
                let frame = encode(&ClientFrame::new(ClientEvent::Heartbeat), defects);
                if socket.send(Message::text(frame)).await.is_err() {
                    return Ended::Dropped;
                }
            }
            _ = resend.tick(), if !ended => {
                let again = due_resends(shared, &mut deadlines, defects);
                for frame in again {
                    if socket.send(Message::text(frame)).await.is_err() {
                        return Ended::Dropped;
                    }
                }
            }
        }
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
