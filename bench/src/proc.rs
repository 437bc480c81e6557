//! Server processes under test: spawning them fresh, reading their readiness line, and what
//! `/proc` says about their CPU time and memory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a server may take to print its readiness line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Which server a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Server {
    /// The minimal tokio-tungstenite echo server of this crate (`loadgen reference-server`).
    Reference,
    /// The `messaging-mock` binary.
    Mock,
    /// `messaging-mock proxy` in front of a `messaging-mock` (the proxy's overhead).
    Proxied,
    /// `loadgen forwarder`, which only copies bytes, in front of a `messaging-mock`: what any
    /// proxy pays on this machine.
    Forwarded,
}

impl Server {
    pub fn label(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Mock => "mock",
            Self::Proxied => "proxied",
            Self::Forwarded => "forwarded",
        }
    }
}

/// The two binaries a run spawns.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub mock: PathBuf,
    pub loadgen: PathBuf,
}

impl Binaries {
    /// `mock`, or `messaging-mock` next to this executable (where cargo puts both).
    pub fn locate(mock: Option<PathBuf>) -> anyhow::Result<Self> {
        let loadgen = std::env::current_exe().context("locating the loadgen executable")?;
        let mock = match mock {
            Some(path) => path,
            None => {
                loadgen.with_file_name(format!("messaging-mock{}", std::env::consts::EXE_SUFFIX))
            }
        };
        if !mock.is_file() {
            bail!(
                "mock server binary not found at {}: build it with `cargo build --release -p mock-server` \
                 (or pass --mock-bin PATH)",
                mock.display()
            );
        }
        Ok(Self { mock, loadgen })
    }
}

/// The readiness line both servers print on stdout.
#[derive(Debug, Deserialize)]
struct Ready {
    base_url: String,
    ws_url: String,
    /// Over TLS: the CA a client trusts.
    #[serde(default)]
    ca_file: Option<PathBuf>,
}

/// A running server process; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    pub base_url: String,
    pub ws_url: String,
    /// Over TLS: the CA file the server wrote, removed with the process.
    pub ca_file: Option<PathBuf>,
    /// When `spawn` was called.
    pub spawned_at: Instant,
    /// The mock behind a proxy (`Server::Proxied`), held so it lives (and is killed) with it.
    _behind: Option<Box<ServerProcess>>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(file) = &self.ca_file {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl ServerProcess {
    /// Starts `server` on a loopback port chosen by the OS and waits for its readiness line.
    pub async fn spawn(server: Server, bins: &Binaries) -> anyhow::Result<Self> {
        Self::spawn_with(server, bins, &[]).await
    }

    /// [`ServerProcess::spawn`], serving TLS when `tls` (each with a CA of its own, written to
    /// a file of this process's temporary directory).
    pub async fn spawn_tls(server: Server, bins: &Binaries, tls: bool) -> anyhow::Result<Self> {
        if !tls {
            return Self::spawn(server, bins).await;
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ca = std::env::temp_dir().join(format!("loadgen-{}-{n}-ca.pem", std::process::id()));
        let args = [
            "--tls".to_owned(),
            "--tls-ca-out".to_owned(),
            ca.display().to_string(),
        ];
        Self::spawn_with(server, bins, &args).await
    }

    /// [`ServerProcess::spawn`] with extra command-line arguments (the reference server takes
    /// only `--tls --tls-ca-out FILE`).
    pub async fn spawn_with(
        server: Server,
        bins: &Binaries,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let spawned_at = Instant::now();
        let (mut command, behind) = Self::command(server, bins, extra).await?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning the {} server", server.label()))?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(READY_TIMEOUT, lines.next_line())
            .await
            .with_context(|| {
                format!(
                    "the {} server printed no readiness line in {READY_TIMEOUT:?}",
                    server.label()
                )
            })?
            .context("reading the readiness line")?
            .with_context(|| format!("the {} server exited before it was ready", server.label()))?;
        let ready: Ready = serde_json::from_str(&line).with_context(|| {
            format!(
                "unexpected readiness line from the {} server: {line}",
                server.label()
            )
        })?;
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            pid,
            base_url: ready.base_url,
            ws_url: ready.ws_url,
            ca_file: ready.ca_file,
            spawned_at,
            _behind: behind,
        })
    }

    /// The command that starts `server`, and the mock a proxy forwards to, started first.
    async fn command(
        server: Server,
        bins: &Binaries,
        extra: &[String],
    ) -> anyhow::Result<(Command, Option<Box<Self>>)> {
        let mut behind = None;
        let command = match server {
            Server::Reference => {
                let mut command = Command::new(&bins.loadgen);
                command.arg("reference-server");
                command.args(extra);
                command
            }
            Server::Mock => {
                let mut command = Command::new(&bins.mock);
                // A fixed seed: the same ids and scenario draws in every run.
                command.args(["--bind", "127.0.0.1:0", "--seed", "1"]);
                command.args(extra);
                command
            }
            Server::Proxied => {
                let mock = Box::pin(Self::spawn_with(Server::Mock, bins, extra)).await?;
                let mut command = Command::new(&bins.mock);
                command.args([
                    "proxy",
                    "--bind",
                    "127.0.0.1:0",
                    "--log",
                    "error",
                    "--upstream",
                ]);
                command.arg(&mock.base_url);
                behind = Some(Box::new(mock));
                command
            }
            Server::Forwarded => {
                let mock = Box::pin(Self::spawn_with(Server::Mock, bins, extra)).await?;
                let mut command = Command::new(&bins.loadgen);
                command
                    .arg("forwarder")
                    .arg("--upstream")
                    .arg(mock.http_authority());
                behind = Some(Box::new(mock));
                command
            }
        };
        Ok((command, behind))
    }

    /// `host:port` of the HTTP listener.
    pub fn http_authority(&self) -> &str {
        let url = self.base_url.as_str();
        url.strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or(url)
    }

    /// `host:port` of the WebSocket listener.
    pub fn ws_authority(&self) -> &str {
        let url = self.ws_url.as_str();
        let rest = url
            .strip_prefix("wss://")
            .or_else(|| url.strip_prefix("ws://"))
            .unwrap_or(url);
        rest.split_once('/')
            .map_or(rest, |(authority, _)| authority)
    }

    pub fn usage(&self) -> anyhow::Result<Usage> {
        Usage::of(self.pid)
    }

    /// Kills the process and reaps it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// CPU time and resident memory of a process, from `/proc`.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User + system CPU time.
    pub cpu: Duration,
    pub rss_bytes: u64,
}

impl Usage {
    pub fn of(pid: u32) -> anyhow::Result<Self> {
        Ok(Self {
            cpu: cpu_time(&read_proc(pid, "stat")?)?,
            rss_bytes: rss_bytes(&read_proc(pid, "statm")?)?,
        })
    }
}

fn read_proc(pid: u32, file: &str) -> anyhow::Result<String> {
    let path = Path::new("/proc").join(pid.to_string()).join(file);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// `utime + stime` of a `/proc/PID/stat` line (fields 14 and 15, in clock ticks).
fn cpu_time(stat: &str) -> anyhow::Result<Duration> {
    // The command name (field 2) may hold spaces; the fields after it start past its `)`.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `after_name` starts at field 3, so field N is at index N - 3.
    let ticks = |n: usize| -> anyhow::Result<u64> {
        fields
            .get(n - 3)
            .context("short /proc stat")?
            .parse()
            .context("non-numeric /proc stat field")
    };
    let total = ticks(14)? + ticks(15)?;
    let per_second = rustix::param::clock_ticks_per_second();
    Ok(Duration::from_secs_f64(total as f64 / per_second as f64))
}

/// Resident pages (field 2 of `/proc/PID/statm`) in bytes.
fn rss_bytes(statm: &str) -> anyhow::Result<u64> {
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .context("short /proc statm")?
        .parse()
        .context("non-numeric /proc statm field")?;
    Ok(pages * rustix::param::page_size() as u64)
}

/// Raises this process's open-file soft limit to its hard limit (children inherit it). Returns
/// the limit now in force.
pub fn raise_fd_limit() -> anyhow::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit).context("raising the open-file limit")?;
    }
    Ok(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_reads_utime_and_stime_past_a_name_with_spaces() {
        let ticks = rustix::param::clock_ticks_per_second();
        let stat = format!(
            "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 {} {} 0 0 20 0 3 0 100 1000 50",
            ticks * 2,
            ticks
        );
        assert_eq!(cpu_time(&stat).ok(), Some(Duration::from_secs(3)));
        assert!(cpu_time("42 (x) S 1").is_err());
    }

    #[test]
    fn rss_is_resident_pages_times_page_size() {
        let page = rustix::param::page_size() as u64;
        assert_eq!(rss_bytes("1000 25 10 1 0 50 0").ok(), Some(25 * page));
        assert!(rss_bytes("1000").is_err());
    }

    #[test]
    fn own_usage_is_readable() {
        let usage = Usage::of(std::process::id()).expect("own /proc entries");
        assert!(usage.rss_bytes > 0);
    }
}
