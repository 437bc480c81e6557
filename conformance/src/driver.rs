//! The client under test: one interface ([`ClientUnderTest`]) the runner drives, whatever the
//! client is. [`ProcessDriver`] speaks the driver contract to an external program;
//! [`InProcess`] runs the reference client directly. Both answer the same commands with the
//! same replies, so every check treats them alike.

use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::contract::{Command, CommandLine, ReadyLine, Reply, ReplyLine, TypingChange};
use crate::reference::{ClientConfig, Defects, ReferenceClient};

/// Exit status a driver uses for "this SDK cannot run this case" (contract §5).
pub const EXIT_NOT_IMPLEMENTED: i32 = 89;

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

/// Anything the runner can drive.
pub trait ClientUnderTest {
    /// Runs one command and returns the client's reply.
    fn call(&mut self, command: Command)
    -> impl Future<Output = Result<Reply, DriverError>> + Send;
}

/// Where a driver points (contract §1).
#[derive(Debug, Clone)]
pub struct DriverEnv {
    pub base_url: String,
    pub connector_token: String,
    pub host: String,
    pub case_id: String,
}

/// An external driver program (contract §1–§6).
#[derive(Debug)]
pub struct ProcessDriver {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
    timeout: Duration,
    /// The driver's `{"log": ...}` lines.
    pub logs: Vec<String>,
    pub ready: ReadyLine,
}

impl ProcessDriver {
    /// Starts `command` (run by `sh -c`) in `workdir` and waits for its ready line.
    pub async fn launch(
        command: &str,
        env: &DriverEnv,
        workdir: &Path,
        timeout: Duration,
    ) -> Result<Self, DriverError> {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(workdir)
            .env("MESSAGING_BASE_URL", &env.base_url)
            .env("MESSAGING_CONNECTOR_TOKEN", &env.connector_token)
            .env("MESSAGING_HOST", &env.host)
            .env("CONFORMANCE_CASE", &env.case_id)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| DriverError::Launch(format!("{command}: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(DriverError::Launch("no stdio pipes".into()));
        };
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
            stdin,
            lines,
            next_id: 1,
            timeout,
            logs: Vec::new(),
            ready,
        })
    }

    /// The driver's stderr so far (for reports); only complete once it exited.
    pub async fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ =
                tokio::time::timeout(Duration::from_millis(200), stderr.read_to_string(&mut text))
                    .await;
        }
        text
    }

    /// Sends `exit` and waits for the process (killing it after the timeout).
    pub async fn finish(mut self) -> Result<(), DriverError> {
        let reply = self.call(Command::Exit).await;
        let status = tokio::time::timeout(self.timeout, self.child.wait()).await;
        match status {
            Ok(Ok(status)) if status.success() => reply.map(|_| ()),
            Ok(Ok(status)) if status.code() == Some(EXIT_NOT_IMPLEMENTED) => {
                Err(DriverError::NotImplemented)
            }
            Ok(Ok(status)) => Err(DriverError::Exited {
                status: status.to_string(),
            }),
            _ => {
                let _ = self.child.kill().await;
                Err(DriverError::Timeout {
                    command: "exit".into(),
                    seconds: self.timeout.as_secs(),
                })
            }
        }
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
        if self.stdin.write_all(line.as_bytes()).await.is_err() || self.stdin.flush().await.is_err()
        {
            return Err(exit_error(&mut self.child).await);
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.lines.next_line()).await;
            let text = match next {
                Err(_) => {
                    return Err(DriverError::Timeout {
                        command: name,
                        seconds: self.timeout.as_secs(),
                    });
                }
                Ok(Ok(Some(text))) => text,
                Ok(_) => return Err(exit_error(&mut self.child).await),
            };
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
}

/// The reference client behind the same interface (with deliberate defects for the kit's
/// self-tests).
#[derive(Debug)]
pub struct InProcess {
    env: DriverEnv,
    defects: Defects,
    client: Option<ReferenceClient>,
}

impl InProcess {
    pub fn new(env: DriverEnv) -> Self {
        Self::with_defects(env, Defects::default())
    }

    pub fn with_defects(env: DriverEnv, defects: Defects) -> Self {
        Self {
            env,
            defects,
            client: None,
        }
    }
}

impl ClientUnderTest for InProcess {
    async fn call(&mut self, command: Command) -> Result<Reply, DriverError> {
        Ok(run_reference(&self.env, self.defects, &mut self.client, command).await)
    }
}

/// One contract command against a reference client (shared by [`InProcess`] and the
/// `messaging-conformance driver` program).
pub async fn run_reference(
    env: &DriverEnv,
    defects: Defects,
    client: &mut Option<ReferenceClient>,
    command: Command,
) -> Reply {
    let failed = |e: crate::reference::ClientError| Reply::Failed(e.to_string());
    let not_started = || Reply::Failed("no conversation: send `start` first".into());
    match command {
        Command::Start { streaming } => {
            if let Some(old) = client.take() {
                old.close().await;
            }
            let config = ClientConfig {
                base_url: env.base_url.clone(),
                connector_token: env.connector_token.clone(),
                host: env.host.clone(),
                streaming,
                defects,
            };
            match ReferenceClient::start(config).await {
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
                connection: Some("closed".into()),
                ..Default::default()
            }))),
        },
        Command::Send { text } => client.as_ref().map_or_else(not_started, |c| {
            c.send(&text).map_or_else(failed, |()| Reply::Ok(None))
        }),
        Command::Typing { state } => client.as_ref().map_or_else(not_started, |c| {
            c.typing(state == TypingChange::Started)
                .map_or_else(failed, |()| Reply::Ok(None))
        }),
        Command::TapSuggestion { message_id, index } => {
            client.as_ref().map_or_else(not_started, |c| {
                c.tap_suggestion(&message_id, index)
                    .map_or_else(failed, |()| Reply::Ok(None))
            })
        }
        Command::End => client.as_ref().map_or_else(not_started, |c| {
            c.end().map_or_else(failed, |()| Reply::Ok(None))
        }),
        // Persisting across an app restart is not built into the reference client yet.
        Command::Restart => Reply::Unsupported,
        Command::Exit => {
            if let Some(c) = client.take() {
                c.close().await;
            }
            Reply::Ok(None)
        }
    }
}
