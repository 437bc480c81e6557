//! `loadgen soak`: a time-bounded churn of whole sessions against one mock process (open,
//! join, echo, a turn, then end, drop and reconnect, or walk away), sampling the server's RSS
//! as it goes. With `--record DIR` every frame a client received is looked up in the
//! session's recording afterwards.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, HEARTBEAT, HttpConn, USER_MESSAGE, Ws};
use crate::proc::{Binaries, Server, ServerProcess};
use crate::progress::Progress;

const JOIN: &str = r#"{"type":"EVENT_TYPE_REQUEST_POLY_AGENT_JOIN","payload":{}}"#;
const END: &str = r#"{"type":"EVENT_TYPE_USER_END_SESSION","payload":{}}"#;

/// What a soak run does.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    pub duration: Duration,
    pub concurrency: usize,
    pub record: Option<PathBuf>,
    pub interval: Duration,
    /// Given to the mock as `--session-retention` and `--session-idle-timeout`, so ended and
    /// abandoned sessions leave within the run and memory can reach a steady state.
    pub retention_seconds: f64,
}

/// One RSS reading.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Point {
    pub at_s: f64,
    pub rss_mib: f64,
    pub sessions: u64,
}

#[derive(Debug, Serialize)]
pub struct SoakReport {
    pub duration_s: f64,
    /// Seconds the sessions in flight at the end took to finish.
    pub drain_s: f64,
    pub concurrency: usize,
    pub sessions: u64,
    pub frames_received: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Frames received that the recording does not hold (`None` without `--record`).
    pub frames_missing: Option<u64>,
    pub recordings_checked: Option<u64>,
    /// RSS growth over the second half, in percent: from the median of the readings around
    /// the half-way point to the median of the last readings.
    pub second_half_growth_pct: f64,
    pub rss_start_mib: f64,
    pub rss_half_mib: f64,
    pub rss_end_mib: f64,
    pub rss_peak_mib: f64,
    pub series: Vec<Point>,
}

impl SoakReport {
    pub fn met(&self) -> bool {
        self.errors == 0
            && self.frames_missing.unwrap_or(0) == 0
            && self.second_half_growth_pct < 5.0
    }

    pub fn render(&self) -> String {
        let missing = match (self.frames_missing, self.recordings_checked) {
            (Some(missing), Some(checked)) => {
                format!(
                    "{missing} missing of {} received ({checked} recordings checked)",
                    self.frames_received
                )
            }
            _ => "not checked (no --record)".into(),
        };
        let mut out = format!(
            "soak: {:.0} s (the last {:.1} s finishing sessions in flight), {} clients, {} sessions, {} frames received\n\
             errors: {}{}\n\
             recording: {missing}\n\
             RSS MiB: start {:.1}, half-way {:.1}, end {:.1}, peak {:.1}; second-half growth {:+.1} % (target < 5 %)\n\
             verdict: {}\n\
             RSS over time (s: MiB, sessions so far):",
            self.duration_s,
            self.drain_s,
            self.concurrency,
            self.sessions,
            self.frames_received,
            self.errors,
            self.first_error
                .as_ref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default(),
            self.rss_start_mib,
            self.rss_half_mib,
            self.rss_end_mib,
            self.rss_peak_mib,
            self.second_half_growth_pct,
            if self.met() { "met" } else { "MISSED" },
        );
        let step = (self.series.len() / 20).max(1);
        for point in self.series.iter().step_by(step) {
            out.push_str(&format!(
                "\n  {:>6.0}: {:>7.1}  {}",
                point.at_s, point.rss_mib, point.sessions
            ));
        }
        out
    }
}

#[derive(Debug, Default)]
struct Tally {
    sessions: AtomicU64,
    frames: AtomicU64,
    errors: AtomicU64,
    missing: AtomicU64,
    checked: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// A socket that remembers the id of every frame it received.
struct Watched {
    ws: Ws,
    ids: Vec<String>,
}

impl Watched {
    async fn send(&mut self, frame: &'static str) -> anyhow::Result<()> {
        self.ws.send(Message::text(frame)).await.context("sending")
    }

    /// Reads until a frame containing `marker` (or the close, when `marker` is `None`).
    async fn until(&mut self, marker: Option<&str>) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + client::ANSWER_TIMEOUT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .with_context(|| format!("no {} in time", marker.unwrap_or("close")))?;
            match next {
                Some(Ok(Message::Text(text))) => {
                    let value: serde_json::Value =
                        serde_json::from_str(&text).context("a server frame is not JSON")?;
                    if let Some(id) = value.get("id").and_then(|v| v.as_str()) {
                        self.ids.push(id.to_owned());
                    }
                    if marker.is_some_and(|m| text.as_str().contains(m)) {
                        return Ok(());
                    }
                }
                Some(Ok(Message::Close(_))) | None if marker.is_none() => return Ok(()),
                Some(Ok(Message::Close(frame))) => {
                    bail!("closed while waiting for {marker:?}: {frame:?}")
                }
                Some(Ok(_)) => {}
                Some(Err(error)) if marker.is_none() => {
                    bail!("the close was not clean: {error}")
                }
                Some(Err(error)) => return Err(error).context("reading"),
                None => bail!("connection ended while waiting for {marker:?}"),
            }
        }
    }

    async fn exchange(&mut self, frame: &'static str, marker: &str) -> anyhow::Result<()> {
        self.send(frame).await?;
        self.until(Some(marker)).await
    }
}

async fn connect(
    authority: &str,
    session: &str,
    token: &str,
    cursor: Option<u64>,
    ids: Vec<String>,
) -> anyhow::Result<Watched> {
    let mut path = format!("/ws?session_id={session}&access_token={token}");
    if let Some(cursor) = cursor {
        path.push_str(&format!("&cursor={cursor}"));
    }
    let ws = client::connect_ws(authority, &path).await?;
    let mut watched = Watched { ws, ids };
    watched
        .until(Some(r#""EVENT_TYPE_EVENT_BATCH""#))
        .await
        .context("waiting for the replay")?;
    Ok(watched)
}

/// One session's life; `variant` picks how it ends. Returns its id and the frame ids seen.
async fn one_session(
    http: &mut HttpConn,
    ws_authority: &str,
    variant: u64,
) -> anyhow::Result<(String, Vec<String>)> {
    let token = http.access_token().await?;
    let session = http.create_session(&token).await?;
    let mut ws = connect(ws_authority, &session, &token, None, Vec::new()).await?;
    ws.exchange(JOIN, client::AGENT_MESSAGE)
        .await
        .context("joining")?;
    for _ in 0..3 {
        ws.exchange(HEARTBEAT, client::HEARTBEAT_ECHO).await?;
    }
    ws.exchange(USER_MESSAGE, client::AGENT_MESSAGE)
        .await
        .context("a turn")?;
    match variant % 4 {
        // End it: SESSION_END, then the server closes.
        0 => {
            ws.exchange(END, r#""EVENT_TYPE_SESSION_END""#).await?;
            ws.until(None).await?;
        }
        // Drop TCP mid-session, reconnect from a cursor, then end.
        1 => {
            let ids = std::mem::take(&mut ws.ids);
            drop(ws);
            let mut again = connect(ws_authority, &session, &token, Some(2), ids).await?;
            again.exchange(HEARTBEAT, client::HEARTBEAT_ECHO).await?;
            again.exchange(END, r#""EVENT_TYPE_SESSION_END""#).await?;
            again.until(None).await?;
            ws = again;
        }
        // Walk away: a clean close; the session idles out on the server.
        2 => {
            ws.ws.close(None).await.context("closing")?;
            ws.until(None).await?;
        }
        // Close, reconnect for the whole history, then end.
        _ => {
            ws.ws.close(None).await.context("closing")?;
            ws.until(None).await?;
            let ids = std::mem::take(&mut ws.ids);
            let mut again = connect(ws_authority, &session, &token, None, ids).await?;
            again.exchange(END, r#""EVENT_TYPE_SESSION_END""#).await?;
            again.until(None).await?;
            ws = again;
        }
    }
    Ok((session, ws.ids))
}

/// Every frame id in `ids` that `recording` does not hold as a server frame.
fn missing_from_recording(recording: &Path, ids: &[String]) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(recording)
        .with_context(|| format!("reading {}", recording.display()))?;
    let mut recorded = HashSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}: a line is not JSON", recording.display()))?;
        if entry["kind"] == "server_frame"
            && let Some(id) = entry["frame"]["id"].as_str()
        {
            recorded.insert(id.to_owned());
        }
    }
    Ok(ids
        .iter()
        .filter(|id| !recorded.contains(id.as_str()))
        .count() as u64)
}

async fn worker(
    index: u64,
    target: client::Target,
    record: Option<PathBuf>,
    until: Instant,
    tally: Arc<Tally>,
) {
    let mut http: Option<HttpConn> = None;
    let mut round = index;
    while Instant::now() < until {
        let conn = match &mut http {
            Some(conn) => conn,
            None => match target.http().await {
                Ok(conn) => http.insert(conn),
                Err(error) => {
                    note_error(&tally, error).await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        match one_session(conn, &target.ws_authority, round).await {
            Ok((session, ids)) => {
                tally.sessions.fetch_add(1, Ordering::Relaxed);
                tally.frames.fetch_add(ids.len() as u64, Ordering::Relaxed);
                if let Some(dir) = &record {
                    let recording = dir.join(format!("{session}.jsonl"));
                    let checked = missing_from_recording(&recording, &ids);
                    // Checked once, a recording is not kept (a long soak would fill the disk);
                    // the mock appends a late entry or two to a fresh file, removed at the end.
                    let _ = std::fs::remove_file(&recording);
                    match checked {
                        Ok(missing) => {
                            tally.missing.fetch_add(missing, Ordering::Relaxed);
                            tally.checked.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => note_error(&tally, error).await,
                    }
                }
            }
            Err(error) => {
                note_error(&tally, error).await;
                http = None;
            }
        }
        round += 1;
    }
}

async fn note_error(tally: &Tally, error: anyhow::Error) {
    tally.errors.fetch_add(1, Ordering::Relaxed);
    tally
        .first_error
        .lock()
        .await
        .get_or_insert_with(|| format!("{error:#}"));
}

/// Removes the `.jsonl` files the run left in `dir` (late entries of checked sessions).
fn remove_recordings(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "jsonl") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

fn median_of(points: &[Point]) -> f64 {
    let mut values: Vec<f64> = points.iter().map(|p| p.rss_mib).collect();
    crate::report::median(&mut values)
}

pub async fn run(
    bins: &Binaries,
    plan: &SoakPlan,
    progress: &Progress,
) -> anyhow::Result<SoakReport> {
    let args = server_args(plan)?;
    let process = ServerProcess::spawn_with(Server::Mock, bins, &args).await?;
    let target = client::Target::of(&process)?;
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let until = started + plan.duration;
    let workers: Vec<_> = (0..plan.concurrency as u64)
        .map(|i| {
            tokio::spawn(worker(
                i,
                target.clone(),
                plan.record.clone(),
                until,
                Arc::clone(&tally),
            ))
        })
        .collect();
    let mut series = sample_rss(&process, plan, &tally, started, progress).await?;
    // Sessions in flight finish (each wait inside is bounded by the answer timeout); a worker
    // still busy after that is an error.
    let drained = tokio::time::timeout(
        client::ANSWER_TIMEOUT * 3,
        futures_util::future::join_all(workers),
    )
    .await;
    if drained.is_err() {
        note_error(
            &tally,
            anyhow::anyhow!("a client was still busy 30 s after the end"),
        )
        .await;
    }
    let drain_s = (started.elapsed().as_secs_f64() - plan.duration.as_secs_f64()).max(0.0);
    let last = process.usage()?;
    series.push(Point {
        at_s: started.elapsed().as_secs_f64(),
        rss_mib: last.rss_bytes as f64 / (1024.0 * 1024.0),
        sessions: tally.sessions.load(Ordering::Relaxed),
    });
    process.stop().await;
    if let Some(dir) = &plan.record {
        remove_recordings(dir);
    }
    progress.finish("soak: done");
    let (rss_half, rss_end) = half_and_end_rss(&series);
    let first_error = tally.first_error.lock().await.clone();
    Ok(SoakReport {
        duration_s: started.elapsed().as_secs_f64(),
        drain_s,
        concurrency: plan.concurrency,
        sessions: tally.sessions.load(Ordering::Relaxed),
        frames_received: tally.frames.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        first_error,
        frames_missing: plan
            .record
            .as_ref()
            .map(|_| tally.missing.load(Ordering::Relaxed)),
        recordings_checked: plan
            .record
            .as_ref()
            .map(|_| tally.checked.load(Ordering::Relaxed)),
        second_half_growth_pct: (rss_end - rss_half) / rss_half.max(1e-9) * 100.0,
        rss_start_mib: series.first().map_or(0.0, |p| p.rss_mib),
        rss_half_mib: rss_half,
        rss_end_mib: rss_end,
        rss_peak_mib: series.iter().map(|p| p.rss_mib).fold(0.0, f64::max),
        series,
    })
}

/// The mock's flags for the plan: the retention and idle timeout, and `--record` (its
/// directory created) when recordings are checked.
fn server_args(plan: &SoakPlan) -> anyhow::Result<Vec<String>> {
    let retention = format!("{}", plan.retention_seconds);
    let mut args = vec![
        "--session-retention".to_owned(),
        retention.clone(),
        "--session-idle-timeout".to_owned(),
        retention,
    ];
    if let Some(dir) = &plan.record {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        args.push("--record".into());
        args.push(dir.display().to_string());
    }
    Ok(args)
}

/// Reads the server's RSS every `plan.interval` until the run's end, showing progress.
async fn sample_rss(
    process: &ServerProcess,
    plan: &SoakPlan,
    tally: &Tally,
    started: Instant,
    progress: &Progress,
) -> anyhow::Result<Vec<Point>> {
    let until = started + plan.duration;
    let mut series = Vec::new();
    while Instant::now() < until {
        let usage = process.usage()?;
        let point = Point {
            at_s: started.elapsed().as_secs_f64(),
            rss_mib: usage.rss_bytes as f64 / (1024.0 * 1024.0),
            sessions: tally.sessions.load(Ordering::Relaxed),
        };
        progress.line(&format!(
            "soak: {:.0}/{:.0} s, {} sessions, {} errors, RSS {:.1} MiB",
            point.at_s,
            plan.duration.as_secs_f64(),
            point.sessions,
            tally.errors.load(Ordering::Relaxed),
            point.rss_mib
        ));
        series.push(point);
        tokio::time::sleep(
            plan.interval
                .min(until.saturating_duration_since(Instant::now())),
        )
        .await;
    }
    Ok(series)
}

/// The median RSS of the readings around the half-way point, and of the last tenth.
fn half_and_end_rss(series: &[Point]) -> (f64, f64) {
    let n = series.len();
    let window = (n / 10).max(1);
    let half = n / 2;
    let around_half = &series[half.saturating_sub(window / 2)..(half + window / 2 + 1).min(n)];
    let at_end = &series[n.saturating_sub(window)..];
    (median_of(around_half), median_of(at_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_the_recording_lacks_are_counted() {
        let dir = std::env::temp_dir().join(format!("soak-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("s.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"at_ms":1,"unix_ms":1,"kind":"server_frame","frame":{"id":"a","type":"X"}}"#,
                "\n",
                r#"{"at_ms":2,"unix_ms":2,"kind":"client_frame","conn":1,"frame":{"id":"c"}}"#,
                "\n",
                r#"{"at_ms":3,"unix_ms":3,"kind":"server_frame","conn":1,"frame":{"id":"b"}}"#,
                "\n",
            ),
        )
        .expect("write");
        let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            missing_from_recording(&path, &ids(&["a", "b"])).ok(),
            Some(0)
        );
        // `c` was only sent by the client; `d` is nowhere.
        assert_eq!(
            missing_from_recording(&path, &ids(&["a", "c", "d"])).ok(),
            Some(2)
        );
        assert!(missing_from_recording(&dir.join("none.jsonl"), &ids(&["a"])).is_err());
        std::fs::write(&path, "not json\n").expect("write");
        assert!(missing_from_recording(&path, &ids(&["a"])).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
