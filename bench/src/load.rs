//! One measured sample per fresh server process: the closed-loop modes (echo, turn, http),
//! idle sessions, and startup.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;

use crate::client::{
    self, AGENT_MESSAGE, HEARTBEAT, HEARTBEAT_ECHO, HttpConn, Target, USER_MESSAGE, Warmup, Ws,
};
use crate::proc::{Binaries, Server, ServerProcess, Usage};
use crate::progress::Progress;
use crate::report::Sample;

const MIB: f64 = 1024.0 * 1024.0;

/// The measured window of a closed-loop sample.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one closed-loop client repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loop {
    /// Heartbeat → echo.
    Echo,
    /// User message → echo, thinking, agent reply (mock only).
    Turn,
    /// `POST /api/v1/access-token` → 200.
    Http,
}

/// Limits the time spent opening sessions before a sample starts.
const OPEN_DEADLINE: Duration = Duration::from_secs(180);
/// Sessions opened at once (each opener reuses one HTTP connection).
const OPENERS: usize = 32;

/// One client's connection in a closed loop.
enum Job {
    Ws(Box<Ws>, &'static str, &'static str),
    Http(HttpConn),
}

impl Job {
    async fn once(&mut self) -> anyhow::Result<()> {
        match self {
            Self::Ws(ws, frame, marker) => client::exchange(ws, frame, marker).await,
            Self::Http(conn) => {
                let (status, body) = conn.token_request().await?;
                if status != 200 {
                    bail!(
                        "access-token answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                Ok(())
            }
        }
    }
}

const OPENING: u8 = 0;
const WARMING: u8 = 1;
const MEASURING: u8 = 2;
const STOPPING: u8 = 3;

#[derive(Debug)]
struct Shared {
    phase: AtomicU8,
    /// Client threads that have opened their clients.
    ready: AtomicUsize,
    /// Exchanges completed inside the measured window.
    completed: AtomicU64,
    errors: AtomicU64,
}

/// Microsecond latencies from 1 µs to 1 min, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

async fn client_loop(mut job: Job, shared: Arc<Shared>) -> (Histogram<u64>, Option<String>) {
    let mut latencies = histogram();
    loop {
        let phase = shared.phase.load(Ordering::Acquire);
        if phase == OPENING {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        if phase == STOPPING {
            return (latencies, None);
        }
        let started = Instant::now();
        if let Err(error) = job.once().await {
            if shared.phase.load(Ordering::Acquire) == STOPPING {
                return (latencies, None);
            }
            shared.errors.fetch_add(1, Ordering::Relaxed);
            return (latencies, Some(format!("{error:#}")));
        }
        // Only exchanges that start and end inside the window count.
        if phase == MEASURING && shared.phase.load(Ordering::Acquire) == MEASURING {
            latencies.saturating_record(started.elapsed().as_micros() as u64);
            shared.completed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Client threads for `concurrency` clients: one per core, never more than clients.
pub fn client_threads(concurrency: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.min(concurrency).max(1)
}

/// What one client thread built and measured.
struct ThreadOutcome {
    latencies: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// Opens this thread's share of the clients on its own runtime.
async fn build_jobs(
    server: Server,
    target: &Target,
    kind: Loop,
    count: usize,
    openers: usize,
) -> (Vec<Job>, u64, Option<String>) {
    match kind {
        Loop::Http => {
            let mut jobs = Vec::new();
            let mut errors = 0;
            let mut first_error = None;
            for _ in 0..count {
                match target.http().await {
                    Ok(conn) => jobs.push(Job::Http(conn)),
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{error:#}"));
                    }
                }
            }
            (jobs, errors, first_error)
        }
        Loop::Echo | Loop::Turn => {
            let (frame, marker) = match kind {
                Loop::Turn => (USER_MESSAGE, AGENT_MESSAGE),
                _ => (HEARTBEAT, HEARTBEAT_ECHO),
            };
            let opened = client::open_many(
                server,
                target,
                count,
                openers,
                Warmup::Join,
                OPEN_DEADLINE,
                &Progress::new(false),
            )
            .await;
            let jobs = opened
                .sockets
                .into_iter()
                .map(|ws| Job::Ws(Box::new(ws), frame, marker))
                .collect();
            (jobs, opened.errors, opened.first_error)
        }
    }
}

/// One client thread: a current-thread runtime that opens its clients, waits for the
/// measured phases, and runs them (no cross-thread wake-ups on the measured path).
fn client_thread(
    server: Server,
    target: Target,
    kind: Loop,
    count: usize,
    openers: usize,
    shared: Arc<Shared>,
) -> ThreadOutcome {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            shared.ready.fetch_add(1, Ordering::Release);
            return ThreadOutcome {
                latencies: histogram(),
                errors: count as u64,
                first_error: Some(format!("client runtime: {error}")),
            };
        }
    };
    runtime.block_on(async move {
        let (jobs, mut errors, mut first_error) =
            build_jobs(server, &target, kind, count, openers).await;
        shared.ready.fetch_add(1, Ordering::Release);
        while shared.phase.load(Ordering::Acquire) == OPENING {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let loops: Vec<_> = jobs
            .into_iter()
            .map(|job| tokio::spawn(client_loop(job, Arc::clone(&shared))))
            .collect();
        let mut latencies = histogram();
        for handle in loops {
            // A client still waiting gives up after its answer timeout.
            match tokio::time::timeout(client::ANSWER_TIMEOUT + Duration::from_secs(1), handle)
                .await
            {
                Ok(Ok((own, error))) => {
                    let _ = latencies.add(own);
                    if first_error.is_none() {
                        first_error = error;
                    }
                }
                _ => errors += 1,
            }
        }
        ThreadOutcome {
            latencies,
            errors,
            first_error,
        }
    })
}

/// A closed-loop sample: `concurrency` clients repeat `kind` for the window on a fresh server,
/// spread over `threads` client threads with a runtime each.
#[allow(clippy::too_many_arguments)]
pub async fn closed_loop(
    server: Server,
    bins: &Binaries,
    (kind, tls): (Loop, bool),
    concurrency: usize,
    threads: usize,
    window: Window,
    progress: &Progress,
    label: &str,
) -> anyhow::Result<Sample> {
    let process = ServerProcess::spawn_tls(server, bins, tls).await?;
    let target = Target::of(&process)?;
    let shared = Arc::new(Shared {
        phase: AtomicU8::new(OPENING),
        ready: AtomicUsize::new(0),
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let threads = threads.clamp(1, concurrency.max(1));
    let handles = spawn_client_threads(server, &target, kind, concurrency, threads, &shared)?;
    let open_until = Instant::now() + OPEN_DEADLINE + Duration::from_secs(5);
    while shared.ready.load(Ordering::Acquire) < threads && Instant::now() < open_until {
        progress.line(&format!(
            "{label}: opening {concurrency} clients on {threads} threads"
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shared.phase.store(WARMING, Ordering::Release);
    warm_up(&shared, window.warmup, progress, label).await;

    let before = process.usage()?;
    let client_before = Usage::of(std::process::id())?;
    let started = Instant::now();
    shared.phase.store(MEASURING, Ordering::Release);
    while started.elapsed() < window.duration {
        progress.line(&format!(
            "{label}: {:.1}/{:.1} s, {} done, {} errors",
            started.elapsed().as_secs_f64(),
            window.duration.as_secs_f64(),
            shared.completed.load(Ordering::Relaxed),
            shared.errors.load(Ordering::Relaxed),
        ));
        tokio::time::sleep(
            Duration::from_millis(250).min(window.duration.saturating_sub(started.elapsed())),
        )
        .await;
    }
    shared.phase.store(STOPPING, Ordering::Release);
    let seconds = started.elapsed().as_secs_f64();
    let after = process.usage()?;
    let client_after = Usage::of(std::process::id())?;
    let completed = shared.completed.load(Ordering::Relaxed);

    let (latencies, mut errors, first_error) = join_client_threads(handles).await?;
    errors += shared.errors.load(Ordering::Relaxed);
    process.stop().await;

    let measured = Measured {
        seconds,
        completed,
        server_cpu: after.cpu.saturating_sub(before.cpu),
        client_cpu: client_after.cpu.saturating_sub(client_before.cpu),
        rss_bytes: after.rss_bytes,
        latencies,
    };
    let mut sample = Sample::new(server, errors, first_error);
    measured.record(&mut sample, kind, threads);
    Ok(sample)
}

/// Starts `threads` client threads sharing `concurrency` clients as evenly as can be.
fn spawn_client_threads(
    server: Server,
    target: &Target,
    kind: Loop,
    concurrency: usize,
    threads: usize,
    shared: &Arc<Shared>,
) -> anyhow::Result<Vec<std::thread::JoinHandle<ThreadOutcome>>> {
    let mut handles = Vec::new();
    for t in 0..threads {
        let count = concurrency / threads + usize::from(t < concurrency % threads);
        let openers = (OPENERS / threads).max(1);
        let (target, shared) = (target.clone(), Arc::clone(shared));
        handles.push(
            std::thread::Builder::new()
                .name(format!("client-{t}"))
                .spawn(move || client_thread(server, target, kind, count, openers, shared))
                .context("starting a client thread")?,
        );
    }
    Ok(handles)
}

/// The warm-up: the clients run unmeasured for `warmup`, with the error count shown.
async fn warm_up(shared: &Shared, warmup: Duration, progress: &Progress, label: &str) {
    let warm_until = Instant::now() + warmup;
    while Instant::now() < warm_until {
        progress.line(&format!(
            "{label}: warming up, {} errors",
            shared.errors.load(Ordering::Relaxed)
        ));
        tokio::time::sleep(Duration::from_millis(200).min(warm_until - Instant::now())).await;
    }
}

/// Waits for the client threads; returns their latencies merged, their errors (a thread that
/// panicked counts one) and the first error message.
async fn join_client_threads(
    handles: Vec<std::thread::JoinHandle<ThreadOutcome>>,
) -> anyhow::Result<(Histogram<u64>, u64, Option<String>)> {
    let mut latencies = histogram();
    let mut errors = 0;
    let mut first_error = None;
    let outcomes = tokio::task::spawn_blocking(move || {
        handles
            .into_iter()
            .map(|h| h.join().ok())
            .collect::<Vec<_>>()
    })
    .await
    .context("joining the client threads")?;
    for outcome in outcomes {
        match outcome {
            Some(outcome) => {
                let _ = latencies.add(outcome.latencies);
                errors += outcome.errors;
                if first_error.is_none() {
                    first_error = outcome.first_error;
                }
            }
            None => errors += 1,
        }
    }
    Ok((latencies, errors, first_error))
}

/// What a closed-loop window measured.
struct Measured {
    seconds: f64,
    completed: u64,
    /// The server's CPU time in the window.
    server_cpu: Duration,
    /// The bench process's own CPU time in the window.
    client_cpu: Duration,
    /// The server's RSS at the window's end.
    rss_bytes: u64,
    latencies: Histogram<u64>,
}

impl Measured {
    /// Sets the sample's metrics: rate, latency quantiles, CPU per exchange, client load, RSS.
    fn record(&self, sample: &mut Sample, kind: Loop, threads: usize) {
        let rate = self.completed as f64 / self.seconds;
        let per = |cpu: Duration| cpu.as_secs_f64() * 1e6 / self.completed.max(1) as f64;
        let unit = if kind == Loop::Http {
            "req"
        } else if kind == Loop::Turn {
            "turn"
        } else {
            "msg"
        };
        let latencies = &self.latencies;
        sample.set(&format!("{unit}s_per_s"), rate);
        sample.set("p50_us", latencies.value_at_quantile(0.50) as f64);
        sample.set("p99_us", latencies.value_at_quantile(0.99) as f64);
        sample.set("p999_us", latencies.value_at_quantile(0.999) as f64);
        sample.set(&format!("cpu_us_per_{unit}"), per(self.server_cpu));
        sample.set(&format!("client_cpu_us_per_{unit}"), per(self.client_cpu));
        // Busy share of the client threads: well under 1 means the client had headroom.
        sample.set(
            "client_busy",
            self.client_cpu.as_secs_f64() / (self.seconds * threads as f64),
        );
        sample.set("rss_mib", self.rss_bytes as f64 / MIB);
    }
}

/// Opens `sessions` sessions on a fresh server, holds them, and reports the server's RSS.
pub async fn idle(
    server: Server,
    bins: &Binaries,
    sessions: usize,
    warmup: Warmup,
    progress: &Progress,
) -> anyhow::Result<Sample> {
    let process = ServerProcess::spawn(server, bins).await?;
    let target = Target::of(&process)?;
    // One session first, so one-off start-up allocations are not charged to the sessions.
    let mut http = None;
    let first = client::open_session(server, &target, &mut http, warmup)
        .await
        .context("opening the first session")?;
    drop(http);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = process.usage()?;
    let started = Instant::now();
    let opened = client::open_many(
        server,
        &target,
        sessions,
        OPENERS,
        warmup,
        OPEN_DEADLINE,
        progress,
    )
    .await;
    let open_seconds = started.elapsed().as_secs_f64();
    // Let timers and queued work settle before reading memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held: Usage = process.usage()?;
    let count = opened.sockets.len().max(1);
    let mut sample = Sample::new(server, opened.errors, opened.first_error);
    sample.set("sessions", opened.sockets.len() as f64);
    sample.set("rss_total_mib", held.rss_bytes as f64 / MIB);
    sample.set(
        "rss_per_session_kib",
        held.rss_bytes.saturating_sub(baseline.rss_bytes) as f64 / count as f64 / 1024.0,
    );
    sample.set("sessions_per_s", opened.sockets.len() as f64 / open_seconds);
    sample.set(
        "cpu_us_per_session",
        held.cpu.saturating_sub(baseline.cpu).as_secs_f64() * 1e6 / count as f64,
    );
    drop(first);
    drop(opened.sockets);
    process.stop().await;
    Ok(sample)
}

/// Requests used to find the steady-state latency after start-up.
const STEADY_REQUESTS: usize = 50;

/// Spawn → readiness line → first 200 → second request → first WebSocket echo, then the
/// steady-state request latency, on a fresh server.
pub async fn startup(server: Server, bins: &Binaries) -> anyhow::Result<Sample> {
    let process = ServerProcess::spawn(server, bins).await?;
    let spawned = process.spawned_at;
    let ready_ms = spawned.elapsed().as_secs_f64() * 1e3;
    let target = Target::of(&process)?;
    let mut http = target.http().await?;
    let (status, _) = http.token_request().await?;
    if status != 200 {
        bail!("first access-token request answered {status}");
    }
    let first_200_ms = spawned.elapsed().as_secs_f64() * 1e3;
    let second = Instant::now();
    http.token_request().await?;
    let second_us = second.elapsed().as_secs_f64() * 1e6;
    let mut session_http = Some(http);
    let ws = client::open_session(server, &target, &mut session_http, Warmup::Heartbeat).await?;
    let first_echo_ms = spawned.elapsed().as_secs_f64() * 1e3;
    let mut http = session_http.context("HTTP connection")?;
    let mut steady = Vec::with_capacity(STEADY_REQUESTS);
    for _ in 0..STEADY_REQUESTS {
        let started = Instant::now();
        http.token_request().await?;
        steady.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let steady_us = crate::report::median(&mut steady);
    drop(ws);
    process.stop().await;
    let mut sample = Sample::new(server, 0, None);
    sample.set("ready_ms", ready_ms);
    sample.set("first_200_ms", first_200_ms);
    sample.set("first_echo_ms", first_echo_ms);
    sample.set("second_request_us", second_us);
    sample.set("steady_request_us", steady_us);
    sample.set("second_vs_steady", second_us / steady_us.max(1.0));
    Ok(sample)
}
