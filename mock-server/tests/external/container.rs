//! The container image as a team without a Rust toolchain gets it: `Containerfile` built with
//! buildah from the static binaries in `target/artifacts/` (`tools/build-artifacts.sh`, which
//! `.ci/run` runs before the tests), the mock started in a working container on the host's
//! network and configured by `MESSAGING_MOCK_*` variables only, a whole conversation held
//! against it over loopback, the image's health check command and the kit run in it.
//!
//! Prerequisites: `target/artifacts/{messaging-mock,messaging-conformance,tmp}` and `buildah`
//! (which runs here without a daemon: `--isolation chroot --storage-driver vfs`, or
//! `$BUILDAH_ISOLATION` / `$STORAGE_DRIVER`). When one is missing the trial is ignored with
//! the reason, or fails under `CI=true`. Every step is time-bounded, and the image,
//! the working container and every process started are removed even when the test fails.
#![cfg(target_os = "linux")]

use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::browser;
use crate::support::{Client, JOIN, batch_events, bounded, types, user_message};

const ARTIFACTS: [&str; 3] = [
    "target/artifacts/messaging-mock",
    "target/artifacts/messaging-conformance",
    "target/artifacts/tmp",
];

fn isolation() -> String {
    std::env::var("BUILDAH_ISOLATION").unwrap_or_else(|_| "chroot".into())
}

fn storage_driver() -> String {
    std::env::var("STORAGE_DRIVER").unwrap_or_else(|_| "vfs".into())
}

/// `buildah <subcommand> --storage-driver …`, plus `--isolation …` where it applies.
fn buildah(subcommand: &str) -> Command {
    let mut command = Command::new("buildah");
    command
        .arg(subcommand)
        .arg("--storage-driver")
        .arg(storage_driver());
    if matches!(subcommand, "bud" | "run") {
        command.arg("--isolation").arg(isolation());
    }
    command.current_dir(browser::repo());
    command
}

/// The artefacts and buildah, or which is missing.
pub fn prerequisites() -> Result<(), String> {
    for artifact in ARTIFACTS {
        if !browser::repo().join(artifact).exists() {
            return Err(format!(
                "no {artifact} (build it with tools/build-artifacts.sh)"
            ));
        }
    }
    match Command::new("buildah").arg("--version").output() {
        Ok(output) if output.status.success() => Ok(()),
        _ => Err("`buildah` is not on PATH (Debian: apt-get install buildah)".into()),
    }
}

/// Runs `command` to completion within `bound`, its output captured; killed with its process
/// group when it overruns.
fn run_bounded(command: &mut Command, bound: Duration) -> Result<Output, String> {
    let shown = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{shown}: {e}"))?;
    let pid = child.id();
    let (done, outcome) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match outcome.recv_timeout(bound) {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(e)) => Err(format!("{shown}: {e}")),
        Err(_) => {
            signal("KILL", &format!("-{pid}"));
            Err(format!("{shown} exceeded {bound:?}"))
        }
    }
}

/// [`run_bounded`], which must succeed; returns its stdout.
fn succeed(command: &mut Command, bound: Duration) -> String {
    let output = run_bounded(command, bound).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `kill -<signal> <target>` (a pid, or `-<pgid>` for a process group); errors ignored.
fn signal(signal: &str, target: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Every process below `root`, from `/proc` (pid, command name).
fn descendants(root: u32) -> Vec<(u32, String)> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_owned();
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid, comm));
        }
    }
    let mut found: Vec<(u32, String)> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, ppid, comm) in &parents {
            if *ppid == parent && !found.iter().any(|(p, _)| p == pid) {
                found.push((*pid, comm.clone()));
                frontier.push(*pid);
            }
        }
    }
    found
}

/// The image, its working container and the `buildah run` process (group leader of its
/// children), removed in this order when dropped, whether the test passed or not.
struct Container {
    tag: String,
    name: Option<String>,
    running: Option<Child>,
    /// The mock's stderr (its log and buildah's), for failure messages.
    stderr: tempfile::NamedTempFile,
}

impl Container {
    fn log(&self) -> String {
        let mut text = String::new();
        let _ =
            std::fs::File::open(self.stderr.path()).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    /// Stops `buildah run` and everything below it: SIGTERM to buildah, which kills the
    /// command it runs, reaps it and unmounts; after 10 s SIGKILL to its process group and to
    /// every process below it.
    fn kill_running(&mut self) {
        if let Some(mut child) = self.running.take() {
            let below = descendants(child.id());
            signal("TERM", &child.id().to_string());
            let asked = Instant::now();
            let exited = loop {
                if !matches!(child.try_wait(), Ok(None)) {
                    break true;
                }
                if asked.elapsed() > Duration::from_secs(10) {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            // Only while it is unreaped: its pid (the group's id) cannot be reused until then.
            if !exited {
                signal("KILL", &format!("-{}", child.id()));
                for (pid, _) in below {
                    signal("KILL", &pid.to_string());
                }
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.kill_running();
        if let Some(name) = self.name.take() {
            let _ = run_bounded(buildah("rm").arg(&name), Duration::from_secs(60));
        }
        let _ = run_bounded(buildah("rmi").arg(&self.tag), Duration::from_secs(60));
    }
}

/// One HTTP/1.1 request to the mock over a real socket (the helpers in `support` go through
/// the router without one); returns the status and the JSON body.
async fn call(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    use http_body_util::BodyExt as _;
    let authority = base.strip_prefix("http://").expect("an http:// base URL");
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", authority);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(http_body_util::Full::new(hyper::body::Bytes::from(
            body.to_owned(),
        )))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{method} {path}: not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, json)
}

/// Token, session, WebSocket: history, join, greeting, a message with its echo and reply, the
/// end and the close; then the control API's health.
async fn converse(ready: &Value) {
    let text = |key: &str| {
        ready[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {ready}"))
            .to_owned()
    };
    let base = text("base_url");
    let (status, body) = call(
        &base,
        "POST",
        "/api/v1/access-token",
        &[
            ("x-token", &text("connector_token")),
            ("x-host", &text("host")),
            ("content-type", "application/json"),
        ],
        "{}",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let (status, body) = call(
        &base,
        "POST",
        "/api/v1/sessions",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("content-type", "application/json"),
        ],
        r#"{"streaming_enabled": false}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let session = body["session_id"].as_str().expect("session_id").to_owned();

    let url = format!(
        "{}?session_id={session}&access_token={token}",
        text("ws_url")
    );
    let mut client = Client::connect(&url)
        .await
        .expect("the WebSocket handshake is accepted");
    let history = client.next_event().await;
    assert_eq!(history["type"], "EVENT_TYPE_EVENT_BATCH", "{history}");
    assert_eq!(types(&batch_events(&[history])), ["SESSION_START"]);

    client.send(JOIN).await;
    let joined = client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
    assert_eq!(
        types(&joined),
        [
            "REQUEST_POLY_AGENT_JOIN",
            "POLY_AGENT_JOINED",
            "POLY_AGENT_THINKING",
            "POLY_AGENT_MESSAGE"
        ]
    );
    assert_eq!(
        joined[3]["payload"]["text"],
        "Hello! How can I help you today?"
    );

    client.send(&user_message("hello from a container")).await;
    let replied = client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
    assert_eq!(
        types(&replied),
        ["USER_MESSAGE", "POLY_AGENT_THINKING", "POLY_AGENT_MESSAGE"]
    );
    assert_eq!(replied[0]["payload"]["text"], "hello from a container");
    assert_eq!(
        replied[2]["payload"]["text"],
        "You said: hello from a container"
    );

    client
        .send(r#"{"type":"EVENT_TYPE_USER_END_SESSION","payload":{}}"#)
        .await;
    let end = client.until("EVENT_TYPE_SESSION_END").await;
    assert_eq!(types(&end), ["USER_END_SESSION", "SESSION_END"]);
    assert_eq!(end[1]["payload"]["reason"], "REASON_USER_END");
    assert_eq!(client.closed().await, 1000);

    // The control API answers a loopback peer without a control token.
    let (status, health) = call(&base, "GET", "/_mock/health", &[], "").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["ok"], true, "{health}");
    assert_eq!(health["sessions"], 1, "{health}");
}

pub fn the_image_serves_a_whole_conversation_and_runs_the_kit() {
    let repo = browser::repo();
    let version = succeed(
        Command::new(repo.join(ARTIFACTS[0])).arg("--version"),
        Duration::from_secs(10),
    );
    eprintln!("container test: artefact {}", version.trim());

    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    let mut container = Container {
        tag: format!("localhost/messaging-mock-test:{unique}"),
        name: None,
        running: None,
        stderr: tempfile::NamedTempFile::new().expect("a temporary file"),
    };

    // The image, as tools/build-artifacts.sh --image builds it.
    let started = Instant::now();
    succeed(
        buildah("bud")
            .args(["--format", "docker", "--build-arg"])
            .arg(format!("VERSION={}", env!("CARGO_PKG_VERSION")))
            .args(["-f", "Containerfile", "-t", &container.tag, "."]),
        Duration::from_secs(180),
    );
    eprintln!("container test: image built in {:?}", started.elapsed());
    let inspected = succeed(
        buildah("inspect").args(["--type", "image", &container.tag]),
        Duration::from_secs(30),
    );
    let inspected: Value = serde_json::from_str(&inspected).expect("buildah inspect prints JSON");
    let config = &inspected["Docker"]["config"];
    assert_eq!(config["Entrypoint"], serde_json::json!(["/messaging-mock"]));
    assert_eq!(
        config["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/messaging-mock", "ctl", "health"]),
        "the docker format keeps the health check"
    );
    assert!(config["ExposedPorts"]["8080/tcp"].is_object(), "{config}");
    let env: Vec<&str> = config["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(env.contains(&"MESSAGING_MOCK_BIND=0.0.0.0:8080"), "{env:?}");
    let labels = &config["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        labels["org.opencontainers.image.licenses"],
        "MIT OR Apache-2.0"
    );
    for label in ["title", "description", "source", "revision"] {
        let key = format!("org.opencontainers.image.{label}");
        assert!(labels[&key].is_string(), "no {key}: {labels}");
    }

    let name = format!("messaging-mock-test-{unique}");
    succeed(
        buildah("from").args(["--name", &name, &container.tag]),
        Duration::from_secs(60),
    );
    container.name = Some(name.clone());

    // The mock, on the host's network, on a port free a moment ago; configured by environment
    // only, as `docker run -e` would.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let stderr = container.stderr.reopen().expect("the stderr file");
    let started = Instant::now();
    let mut child = buildah("run")
        .args(["--network", "host"])
        .args(["--env", &format!("MESSAGING_MOCK_BIND=127.0.0.1:{port}")])
        .args(["--env", "MESSAGING_MOCK_CONNECTOR_TOKEN=container-token"])
        .args(["--env", "MESSAGING_MOCK_HOST=example.test"])
        .args(["--env", "MESSAGING_MOCK_SEED=7"])
        .args([name.as_str(), "--", "/messaging-mock"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        // Its own process group, so that it and its children can be killed together.
        .process_group(0)
        .spawn()
        .expect("buildah run starts");
    let stdout = child.stdout.take().expect("stdout");
    container.running = Some(child);
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = ready_tx.send(reader.read_line(&mut line).map(|_| line));
        // Drain the rest, so the mock never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let line = match ready_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(line)) if !line.is_empty() => line,
        Ok(Ok(_)) => panic!(
            "the mock exited without a readiness line:\n{}",
            container.log()
        ),
        Ok(Err(e)) => panic!("reading the readiness line: {e}\n{}", container.log()),
        Err(_) => panic!("no readiness line within 30 s:\n{}", container.log()),
    };
    let to_ready = started.elapsed();
    eprintln!("container test: readiness line {to_ready:?} after `buildah run`");
    let ready: Value = serde_json::from_str(&line).expect("the readiness line is JSON");
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["base_url"], format!("http://127.0.0.1:{port}"));
    assert_eq!(ready["connector_token"], "container-token");
    assert_eq!(ready["host"], "example.test");
    assert_eq!(ready["seed"], 7);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(bounded(converse(&ready)));

    // The image's HEALTHCHECK command, in a second process of the same container.
    let health = succeed(
        buildah("run")
            .args(["--network", "host"])
            .args([
                "--env",
                &format!("MESSAGING_MOCK_URL=http://127.0.0.1:{port}"),
            ])
            .args([name.as_str(), "--", "/messaging-mock", "ctl", "health"]),
        Duration::from_secs(30),
    );
    let health: Value = serde_json::from_str(health.trim()).expect("ctl health prints JSON");
    assert_eq!(health["ok"], true, "{health}");

    // Stopped as `docker stop` does it: SIGTERM to the mock, which closes and exits 0.
    let running = container.running.as_mut().expect("running");
    let mock: Vec<u32> = descendants(running.id())
        .into_iter()
        .filter(|(_, comm)| comm == "messaging-mock")
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(
        mock.len(),
        1,
        "one mock process under buildah run: {mock:?}"
    );
    signal("TERM", &mock[0].to_string());
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = running.try_wait().expect("waiting for buildah run") {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(15),
            "the mock did not stop within 15 s of SIGTERM:\n{}",
            container.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    container.running = None;
    let log = container.log();
    assert!(status.success(), "buildah run: {status}\n{log}");
    assert!(log.contains("stopped"), "{log}");

    // The kit works in the image: the reference client through one case (its working
    // directory is made under /tmp; each case starts its own mock in-process).
    let kit = succeed(
        buildah("run").args([
            "--network",
            "host",
            name.as_str(),
            "--",
            "/messaging-conformance",
            "run",
            "--reference",
            "--profile",
            "quick",
            "--only",
            "conversation",
            "--seed",
            "1",
        ]),
        Duration::from_secs(60),
    );
    assert!(kit.contains("PASSED"), "{kit}");
}
