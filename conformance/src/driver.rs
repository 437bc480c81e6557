//! The client under test: one interface ([`ClientUnderTest`]) the runner drives, whatever the
//! client is. [`ProcessDriver`] speaks the driver contract to an external program;
//! [`InProcess`] runs the reference client directly. Both answer the same commands with the
//! same replies, so every check treats them alike. A [`Launcher`] makes one per case.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::contract::{Command, CommandLine, ReadyLine, Reply, ReplyLine, TypingChange};
use crate::reference::{ClientConfig, Defects, ReferenceClient};
use mock_server::config::Profile;

/// Exit status a driver uses for "this SDK cannot run this case" (contract §5).
pub const EXIT_NOT_IMPLEMENTED: i32 = 89;

/// Driver stderr kept per case; a chatty driver keeps its first and last 64 KiB.
const STDERR_KEPT: usize = 128 * 1024;

/// The client broke (as opposed to answering "failed" or "unsupported").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error("cannot launch the driver: {0}")]
    Launch(String),
    #[error("the driver's first line is not a ready line: {0}")]
    NotReady(String),
    #[error("no reply to `{command}` within {seconds} s")]
    Timeout { command: String, seconds: u64 },
    #[error("the driver broke the framing: {0}")]
    Protocol(String),
    #[error("the driver exited ({status})")]
    Exited { status: String },
    #[error("not implemented: the driver exited with 89")]
    NotImplemented,
}

/// What a client left behind when it was finished.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// How it ended, when not cleanly.
    pub error: Option<DriverError>,
    /// Its stderr (drained while it ran).
    pub stderr: String,
    /// Its `{"log": ...}` lines.
    pub logs: Vec<String>,
}

/// Anything the runner can drive.
pub trait ClientUnderTest: Send {
    /// Runs one command and returns the client's reply.
    fn call(&mut self, command: Command)
    -> impl Future<Output = Result<Reply, DriverError>> + Send;

    /// Sends `exit` and waits for the client to be gone.
    fn finish(self) -> impl Future<Output = Finished> + Send;
}

/// Where a driver points (contract §1).
#[derive(Debug, Clone)]
pub struct DriverEnv {
    pub base_url: String,
    pub connector_token: String,
    pub host: String,
    pub case_id: String,
    /// The CA certificate (PEM) of a TLS mock (`run --tls`): `MESSAGING_CA_FILE`.
    pub ca_file: Option<std::path::PathBuf>,
    /// `NODE_EXTRA_CA_CERTS` for a TLS mock: the CA, plus the kit's own bundle when it has one.
    pub node_extra_ca_certs: Option<std::path::PathBuf>,
}

/// Makes the client of each case.
pub trait Launcher: Sync {
    type Client: ClientUnderTest;

    fn launch(
        &self,
        env: DriverEnv,
        workdir: &Path,
    ) -> impl Future<Output = Result<Self::Client, DriverError>> + Send;
}

/// External drivers: `command` run by `sh -c` (contract §1–§6).
#[derive(Debug, Clone)]
pub struct ProcessLauncher {
    pub command: String,
    pub timeout: Duration,
}

impl Launcher for ProcessLauncher {
    type Client = ProcessDriver;

    async fn launch(&self, env: DriverEnv, workdir: &Path) -> Result<ProcessDriver, DriverError> {
        ProcessDriver::launch(&self.command, &env, workdir, self.timeout).await
    }
}

/// The reference client in-process, with deliberate defects for the kit's self-tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceLauncher {
    pub defects: Defects,
    /// The documentation revision the reference client follows.
    pub protocol: Profile,
}

impl Launcher for ReferenceLauncher {
    type Client = InProcess;

    async fn launch(&self, env: DriverEnv, workdir: &Path) -> Result<InProcess, DriverError> {
        Ok(InProcess::with_defects(env, workdir, self.defects).with_protocol(self.protocol))
    }
}

/// An external driver program (contract §1–§6).
#[derive(Debug)]
pub struct ProcessDriver {
    child: Child,
    /// Dropped (closed) once `exit` is answered: a driver also ends when stdin closes.
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
    timeout: Duration,
    stderr: Arc<Mutex<String>>,
    stderr_task: tokio::task::JoinHandle<()>,
    logs: Vec<String>,
    pub ready: ReadyLine,
}

/// Reads `stream` to its end into `into` (the first and last half of [`STDERR_KEPT`]), so a
/// chatty driver never blocks on a full pipe.
fn drain(
    mut stream: tokio::process::ChildStderr,
    into: Arc<Mutex<String>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 8192];
        let mut tail: Vec<u8> = Vec::new();
        let mut dropped = 0usize;
        loop {
            let n = match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut kept = into.lock().unwrap_or_else(|p| p.into_inner());
            let head_room = (STDERR_KEPT / 2).saturating_sub(kept.len());
            let (head, rest) = buffer[..n].split_at(head_room.min(n));
            kept.push_str(&String::from_utf8_lossy(head));
            tail.extend_from_slice(rest);
            if tail.len() > STDERR_KEPT / 2 {
                let cut = tail.len() - STDERR_KEPT / 2;
                dropped += cut;
                tail.drain(..cut);
            }
        }
        if !tail.is_empty() {
            let mut kept = into.lock().unwrap_or_else(|p| p.into_inner());
            if dropped > 0 {
                kept.push_str(&format!("\n[… {dropped} bytes of stderr left out …]\n"));
            }
            kept.push_str(&String::from_utf8_lossy(&tail));
        }
    })
}

impl ProcessDriver {
    /// Starts `command` (run by `sh -c`) in `workdir` and waits for its ready line.
    pub async fn launch(
        command: &str,
        env: &DriverEnv,
        workdir: &Path,
        timeout: Duration,
    ) -> Result<Self, DriverError> {
        let mut child = tokio::process::Command::new("sh");
        child
            .arg("-c")
            .arg(command)
            .current_dir(workdir)
            .env("MESSAGING_BASE_URL", &env.base_url)
            .env("MESSAGING_CONNECTOR_TOKEN", &env.connector_token)
            .env("MESSAGING_HOST", &env.host)
            .env("CONFORMANCE_CASE", &env.case_id);
        if let Some(ca_file) = &env.ca_file {
            child.env("MESSAGING_CA_FILE", ca_file);
        }
        // Node reads its extra CAs at start-up only, so a Node driver could not add the CA
        // itself (contract §1.2).
        if let Some(bundle) = &env.node_extra_ca_certs {
            child.env("NODE_EXTRA_CA_CERTS", bundle);
        }
        let mut child = child
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| DriverError::Launch(format!("{command}: {e}")))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(DriverError::Launch("no stdio pipes".into()));
        };
        let kept = Arc::new(Mutex::new(String::new()));
        let stderr_task = drain(stderr, Arc::clone(&kept));
        let mut lines = BufReader::new(stdout).lines();
        let first = match tokio::time::timeout(timeout, lines.next_line()).await {
            Err(_) => {
                return Err(DriverError::Timeout {
                    command: "ready line".into(),
                    seconds: timeout.as_secs(),
                });
            }
            Ok(Ok(Some(line))) => line,
            Ok(_) => return Err(exit_error(&mut child).await),
        };
        let ready: ReadyLine =
            serde_json::from_str(&first).map_err(|_| DriverError::NotReady(first.clone()))?;
        if !ready.ready {
            return Err(DriverError::NotReady(first));
        }
        Ok(Self {
            child,
            stdin: Some(stdin),
            lines,
            next_id: 1,
            timeout,
            stderr: kept,
            stderr_task,
            logs: Vec::new(),
            ready,
        })
    }

    /// The driver's `{"log": ...}` lines so far.
    pub fn logs(&self) -> &[String] {
        &self.logs
    }
}

async fn exit_error(child: &mut Child) -> DriverError {
    match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(Ok(status)) if status.code() == Some(EXIT_NOT_IMPLEMENTED) => {
            DriverError::NotImplemented
        }
        Ok(Ok(status)) => DriverError::Exited {
            status: status.to_string(),
        },
        _ => DriverError::Exited {
            status: "stdout closed".into(),
        },
    }
}

/// How many reply times a `start` may take (contract §6).
pub const START_TIMEOUT_FACTOR: u32 = 3;

impl ClientUnderTest for ProcessDriver {
    async fn call(&mut self, command: Command) -> Result<Reply, DriverError> {
        let id = self.next_id;
        self.next_id += 1;
        let name = serde_json::to_value(&command)
            .ok()
            .and_then(|v| v["cmd"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut line = serde_json::to_string(&CommandLine { id, command })
            .map_err(|e| DriverError::Protocol(e.to_string()))?;
        line.push('\n');
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(DriverError::Protocol("stdin is closed".into()));
        };
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            return Err(exit_error(&mut self.child).await);
        }
        // `start` waits out whatever the server throttles or refuses on the way (a 429's
        // Retry-After, a backoff over 500s): three reply times (contract §6).
        let allowed = if name == "start" {
            self.timeout * START_TIMEOUT_FACTOR
        } else {
            self.timeout
        };
        let deadline = tokio::time::Instant::now() + allowed;
        loop {
            let next = tokio::time::timeout_at(deadline, self.lines.next_line()).await;
            let text = match next {
                Err(_) => {
                    return Err(DriverError::Timeout {
                        command: name,
                        seconds: allowed.as_secs(),
                    });
                }
                Ok(Ok(Some(text))) => text,
                Ok(_) => return Err(exit_error(&mut self.child).await),
            };
            if text.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|_| DriverError::Protocol(format!("not JSON: {text}")))?;
            if let Some(log) = value.get("log").and_then(|l| l.as_str()) {
                self.logs.push(log.to_owned());
                continue;
            }
            let reply: ReplyLine = serde_json::from_value(value)
                .map_err(|e| DriverError::Protocol(format!("{e}: {text}")))?;
            if reply.re != id {
                return Err(DriverError::Protocol(format!(
                    "reply to {} while waiting for {id}",
                    reply.re
                )));
            }
            return Ok(reply.reply());
        }
    }

    async fn finish(mut self) -> Finished {
        let reply = self.call(Command::Exit).await;
        self.stdin = None;
        // Lines after the exit reply (late logs) until stdout closes.
        let rest = tokio::time::timeout(self.timeout, async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(log) = value.get("log").and_then(|l| l.as_str())
                {
                    self.logs.push(log.to_owned());
                }
            }
        })
        .await;
        let status = tokio::time::timeout(self.timeout, self.child.wait()).await;
        let error = match (reply, rest, status) {
            (_, _, Ok(Ok(status))) if status.code() == Some(EXIT_NOT_IMPLEMENTED) => {
                Some(DriverError::NotImplemented)
            }
            (Err(error), _, _) => Some(error),
            (Ok(_), _, Ok(Ok(status))) if status.success() => None,
            (Ok(_), _, Ok(Ok(status))) => Some(DriverError::Exited {
                status: status.to_string(),
            }),
            (Ok(_), _, _) => {
                let _ = self.child.kill().await;
                Some(DriverError::Timeout {
                    command: "exit (the process did not end)".into(),
                    seconds: self.timeout.as_secs(),
                })
            }
        };
        let _ = self.child.kill().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.stderr_task).await;
        let stderr = std::mem::take(&mut *self.stderr.lock().unwrap_or_else(|p| p.into_inner()));
        Finished {
            error,
            stderr,
            logs: self.logs,
        }
    }
}

/// The reference client behind the same interface.
#[derive(Debug)]
pub struct InProcess {
    env: DriverEnv,
    defects: Defects,
    protocol: Profile,
    state_file: PathBuf,
    client: Option<ReferenceClient>,
}

impl InProcess {
    /// The reference client; `workdir` is where it persists its session for `restart`.
    pub fn new(env: DriverEnv, workdir: &Path) -> Self {
        Self::with_defects(env, workdir, Defects::default())
    }

    pub fn with_defects(env: DriverEnv, workdir: &Path, defects: Defects) -> Self {
        Self {
            env,
            defects,
            protocol: Profile::Current,
            state_file: workdir.join(crate::reference::STATE_FILE),
            client: None,
        }
    }

    /// The same client written against another documentation revision (spec §0).
    pub fn with_protocol(mut self, protocol: Profile) -> Self {
        self.protocol = protocol;
        self
    }
}

impl ClientUnderTest for InProcess {
    async fn call(&mut self, command: Command) -> Result<Reply, DriverError> {
        Ok(run_reference(
            &self.env,
            self.defects,
            self.protocol,
            &self.state_file,
            &mut self.client,
            command,
        )
        .await)
    }

    async fn finish(mut self) -> Finished {
        let _ = self.call(Command::Exit).await;
        Finished::default()
    }
}

/// One contract command against a reference client (shared by [`InProcess`] and the
/// `messaging-conformance driver` program). The client persists its session in `state_file`
/// for `restart`.
pub async fn run_reference(
    env: &DriverEnv,
    defects: Defects,
    protocol: Profile,
    state_file: &Path,
    client: &mut Option<ReferenceClient>,
    command: Command,
) -> Reply {
    let tls = match env.ca_file.as_deref().map(crate::tls::client_config) {
        None => None,
        Some(Ok(tls)) => Some(tls),
        Some(Err(error)) => return Reply::Failed(format!("MESSAGING_CA_FILE: {error}")),
    };
    let config = |streaming| ClientConfig {
        tls: tls.clone(),
        base_url: env.base_url.clone(),
        connector_token: env.connector_token.clone(),
        host: env.host.clone(),
        streaming,
        defects,
        protocol,
    };
    match command {
        Command::Start { streaming } => {
            if let Some(old) = client.take() {
                old.close().await;
            }
            match ReferenceClient::start(config(streaming)).await {
                Ok(started) => {
                    *client = Some(started);
                    Reply::Ok(None)
                }
                Err(error) => failed(error),
            }
        }
        Command::View => match client {
            Some(c) => Reply::Ok(Some(Box::new(c.view()))),
            None => Reply::Ok(Some(Box::new(crate::contract::View {
                connection: Some(crate::contract::ConnectionState::Closed),
                ..Default::default()
            }))),
        },
        Command::Send { text } => on_started(client, |c| c.send(&text)),
        Command::Typing { state } => {
            on_started(client, |c| c.typing(state == TypingChange::Started))
        }
        Command::TapSuggestion { message_id, index } => {
            on_started(client, |c| c.tap_suggestion(&message_id, index))
        }
        Command::End => on_started(client, ReferenceClient::end),
        Command::Restart => restart_reference(client, state_file, config).await,
        Command::Exit => {
            if let Some(c) = client.take() {
                c.close().await;
            }
            Reply::Ok(None)
        }
    }
}

/// The reply to a command the reference client refused.
fn failed(error: crate::reference::ClientError) -> Reply {
    Reply::Failed(error.to_string())
}

/// The reply to a command that needs a conversation, before `start`.
fn not_started() -> Reply {
    Reply::Failed("no conversation: send `start` first".into())
}

/// The reply of `act` on the started client, or the failure of a command sent before `start`.
fn on_started(
    client: &Option<ReferenceClient>,
    act: impl FnOnce(&ReferenceClient) -> Result<(), crate::reference::ClientError>,
) -> Reply {
    client.as_ref().map_or_else(not_started, |c| {
        act(c).map_or_else(failed, |()| Reply::Ok(None))
    })
}

/// `restart`: the running client persists its session in `state_file` and a new one, made by
/// `config` with the same streaming choice, resumes from it.
async fn restart_reference(
    client: &mut Option<ReferenceClient>,
    state_file: &Path,
    config: impl Fn(bool) -> ClientConfig,
) -> Reply {
    let Some(running) = client.take() else {
        return not_started();
    };
    let streaming = running.streaming();
    if let Err(error) = running.suspend(state_file).await {
        return failed(error);
    }
    match ReferenceClient::resume(config(streaming), state_file).await {
        Ok(resumed) => {
            *client = Some(resumed);
            Reply::Ok(None)
        }
        Err(error) => failed(error),
    }
}
