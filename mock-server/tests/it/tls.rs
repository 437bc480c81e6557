//! Serving over TLS (`--tls`, `--tls-cert`/`--tls-key`, `MockServer::start_tls`): a whole
//! conversation over `https://` and `wss://` trusting the generated CA alone, plain HTTP to
//! the TLS port refused and logged, and bad certificate input refused at start-up.

use std::sync::Arc;
use std::time::Duration;

use mock_server::MockServer;
use mock_server::tls::TlsIdentity;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::{Client, ConnectError, JOIN, batch_events, bounded, user_message};

/// One HTTPS request trusting `ca_pem` alone: status and body.
async fn https(
    addr: &str,
    ca_pem: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String), String> {
    crate::support::request(addr, Some(ca_pem), method, path, headers, body).await
}

/// Token, then session, over HTTPS; the session id and token.
async fn handshake_over_tls(server: &MockServer, ca: &str) -> (String, String) {
    let addr = server.addr().to_string();
    let (connector, host) = server.credentials();
    let (status, body) = https(
        &addr,
        ca,
        "POST",
        "/api/v1/access-token",
        &[("x-token", &connector), ("x-host", &host)],
        "",
    )
    .await
    .expect("HTTPS answers");
    assert_eq!(status, 200, "{body}");
    let token: Value = serde_json::from_str(&body).expect("JSON");
    let token = token["access_token"].as_str().expect("a token").to_owned();
    let (status, body) = https(
        &addr,
        ca,
        "POST",
        "/api/v1/sessions",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("content-type", "application/json"),
        ],
        r#"{"streaming_enabled": false}"#,
    )
    .await
    .expect("HTTPS answers");
    assert_eq!(status, 200, "{body}");
    let session: Value = serde_json::from_str(&body).expect("JSON");
    (
        session["session_id"].as_str().expect("an id").to_owned(),
        token,
    )
}

#[tokio::test]
async fn a_whole_conversation_over_https_and_wss_trusting_only_the_generated_ca() {
    bounded(async {
        let server = MockServer::start_tls().await.expect("starts");
        assert!(server.base_url().starts_with("https://127.0.0.1:"));
        assert!(server.ws_url().starts_with("wss://127.0.0.1:"));
        let ca = server.ca_pem().expect("a generated CA").to_owned();
        let (session, token) = handshake_over_tls(&server, &ca).await;
        let url = format!(
            "{}?session_id={session}&access_token={token}",
            server.ws_url()
        );
        let mut client = Client::connect_tls(&url, &ca).await.expect("wss opens");
        let history = batch_events(&[client.next_event().await]);
        assert_eq!(
            history[0]["type"], "EVENT_TYPE_SESSION_START",
            "{history:?}"
        );
        client.send(JOIN).await;
        client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        client.send(&user_message("hello over TLS")).await;
        let events = client.until("EVENT_TYPE_POLY_AGENT_MESSAGE").await;
        assert!(
            events.iter().any(|e| e["type"] == "EVENT_TYPE_USER_MESSAGE"
                && e["payload"]["text"] == "hello over TLS"),
            "the echo came over wss: {events:?}"
        );
        // The console and control API answer over TLS too.
        let addr = server.addr().to_string();
        let (status, body) = https(&addr, &ca, "GET", "/_mock/health", &[], "")
            .await
            .expect("HTTPS answers");
        assert_eq!(status, 200, "{body}");
        let (status, _) = https(&addr, &ca, "GET", "/_mock/ui/", &[], "")
            .await
            .expect("HTTPS answers");
        assert_eq!(status, 200);
        // A console write carries the page's `https://` origin: its own, so it is answered;
        // another origin is still refused.
        for (origin, expected) in [
            (format!("https://{addr}"), 200),
            ("https://evil.example".to_owned(), 403),
        ] {
            let headers = [
                ("origin", origin.as_str()),
                ("content-type", "application/json"),
            ];
            let (status, body) = https(
                &addr,
                &ca,
                "POST",
                "/_mock/clock",
                &headers,
                r#"{"scale": 1.0}"#,
            )
            .await
            .expect("HTTPS answers");
            assert_eq!(status, expected, "{origin}: {body}");
        }
        // Every call of the conversation came over TLS.
        let calls = server.http_calls();
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert!(calls.iter().all(|c| !c.request.plaintext), "{calls:?}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_client_that_trusts_another_ca_cannot_connect() {
    bounded(async {
        let server = MockServer::start_tls().await.expect("starts");
        let stranger = TlsIdentity::generate().expect("generates");
        let other_ca = stranger.ca_pem().expect("a CA");
        let addr = server.addr().to_string();
        let refused = https(&addr, other_ca, "GET", "/_mock/health", &[], "").await;
        let error = refused.expect_err("an unknown CA is refused");
        assert!(error.contains("certificate"), "{error}");
        let url = format!("{}?session_id=x&access_token=y", server.ws_url());
        match Client::connect_tls(&url, other_ca).await {
            Err(ConnectError::Other(error)) => assert!(error.contains("certificate"), "{error}"),
            Err(ConnectError::Refused(r)) => panic!("refused by HTTP, not TLS: {}", r.status),
            Ok(_) => panic!("connected to a server whose CA it does not trust"),
        }
        // The right CA, same server: the refusal above was the trust, not the server.
        let ca = server.ca_pem().expect("a CA");
        let (status, _) = https(&addr, ca, "GET", "/_mock/health", &[], "")
            .await
            .expect("the right CA connects");
        assert_eq!(status, 200);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn plain_http_and_ws_to_the_tls_port_are_refused_with_400_and_logged() {
    bounded(async {
        let server = MockServer::start_tls().await.expect("starts");
        let addr = server.addr().to_string();
        // Plain HTTP to a protocol endpoint.
        let mut tcp = TcpStream::connect(&addr).await.expect("connects");
        let request = format!(
            "POST /api/v1/access-token HTTP/1.1\r\nhost: {addr}\r\nx-token: t\r\n\
             content-length: 0\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.expect("writes");
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut answer))
            .await
            .expect("answered and closed")
            .expect("reads");
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("use https:// and wss://"), "{answer}");
        // A `ws://` handshake to the same port.
        let url = format!("ws://{addr}/ws?session_id=x&access_token=y");
        let refused = Client::connect(&url)
            .await
            .err()
            .expect("plain ws is refused");
        assert_eq!(refused.status, 400);
        // A path that is not a protocol endpoint is refused, not logged.
        let mut tcp = TcpStream::connect(&addr).await.expect("connects");
        tcp.write_all(format!("GET /_mock/health HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes())
            .await
            .expect("writes");
        let mut answer = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut answer)).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

        let calls = server.http_calls();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert!(calls.iter().all(|c| c.request.plaintext && c.status == 400));
        assert_eq!(calls[0].endpoint.path(), "/api/v1/access-token");
        assert!(calls[0].request.x_token && !calls[0].request.upgrade);
        assert_eq!(calls[1].endpoint.path(), "/ws");
        assert!(calls[1].request.upgrade, "{:?}", calls[1]);
        // Negative control: a call over TLS is not marked.
        let ca = server.ca_pem().expect("a CA");
        let (status, _) = https(&addr, ca, "POST", "/api/v1/access-token", &[], "")
            .await
            .expect("HTTPS answers");
        assert_eq!(status, 401);
        let calls = server.http_calls();
        assert_eq!(calls.len(), 3);
        assert!(!calls[2].request.plaintext, "{:?}", calls[2]);
        server.shutdown().await;
    })
    .await;
}

/// Runs the binary with `args` to its exit (it must not start): exit code and stderr.
fn refused_start(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_messaging-mock"))
        .args(args)
        .arg("--bind")
        .arg("127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            let mut stderr = String::new();
            use std::io::Read as _;
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut stderr);
            return (status.code(), stderr);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?}: still running after 20 s: it started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A CA-signed identity's files: (cert chain, key, CA) PEM paths in `dir`.
fn pem_files(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().expect("a key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("signs");
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, cert.pem()).expect("writes");
    std::fs::write(&key_path, key.serialize_pem()).expect("writes");
    (cert_path, key_path)
}

#[tokio::test]
async fn bad_certificate_inputs_fail_at_start_with_exit_2_and_a_clear_message() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (cert, key) = pem_files(dir.path(), "good");
    let (_, other_key) = pem_files(dir.path(), "other");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("writes");
    let missing = dir.path().join("missing.pem");
    let os = |p: &std::path::Path| p.as_os_str().to_owned();
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec![
                "--tls-cert".into(),
                os(&missing),
                "--tls-key".into(),
                os(&key),
            ],
            "cannot read",
        ),
        (
            vec![
                "--tls-cert".into(),
                os(&garbage),
                "--tls-key".into(),
                os(&key),
            ],
            "no PEM certificate",
        ),
        (
            vec![
                "--tls-cert".into(),
                os(&cert),
                "--tls-key".into(),
                os(&garbage),
            ],
            "no PEM private key",
        ),
        (
            vec![
                "--tls-cert".into(),
                os(&cert),
                "--tls-key".into(),
                os(&other_key),
            ],
            "cannot be served",
        ),
        (
            vec![
                "--tls-cert".into(),
                os(dir.path()),
                "--tls-key".into(),
                os(&key),
            ],
            "not a regular file",
        ),
        (
            vec![
                "--tls-cert".into(),
                "/dev/zero".into(),
                "--tls-key".into(),
                os(&key),
            ],
            "not a regular file",
        ),
        (
            vec!["--tls".into(), "--tls-name".into(), "bad name!".into()],
            "neither a DNS name nor an IP address",
        ),
        // Half a pair is a usage error (clap's exit 2).
        (vec!["--tls-cert".into(), os(&cert)], "--tls-key"),
    ];
    for (args, expected) in cases {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let (code, stderr) = refused_start(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: `{expected}` not in {stderr}"
        );
    }
}

#[tokio::test]
async fn the_binary_serves_given_pem_files_and_writes_its_generated_ca_where_told() {
    bounded(async {
        let dir = tempfile::tempdir().expect("a temp dir");
        // Given files: the readiness line says TLS, without a CA file of its own.
        let (cert, key) = pem_files(dir.path(), "given");
        let (mut child, ready) = crate::support::spawn_binary(&[
            "--bind".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ])
        .await;
        assert_eq!(ready["tls"], true, "{ready}");
        assert!(ready.get("ca_file").is_none(), "{ready}");
        let base = ready["base_url"].as_str().expect("base_url");
        let addr = base.strip_prefix("https://").expect("https").to_owned();
        assert!(
            ready["ws_url"]
                .as_str()
                .expect("ws_url")
                .starts_with("wss://")
        );
        let trusted = std::fs::read_to_string(&cert).expect("reads");
        let (status, _) = https(&addr, &trusted, "GET", "/_mock/health", &[], "")
            .await
            .expect("the given certificate is served");
        assert_eq!(status, 200);
        let _ = child.kill();
        let _ = child.wait();

        // Generated, with `--tls-ca-out`: the file is the CA the server's chain verifies with.
        let ca_out = dir.path().join("ca.pem");
        let (mut child, ready) = crate::support::spawn_binary(&[
            "--bind".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--tls".as_ref(),
            "--tls-ca-out".as_ref(),
            ca_out.as_os_str(),
        ])
        .await;
        assert_eq!(ready["ca_file"], ca_out.display().to_string(), "{ready}");
        assert!(
            ready["console_url"]
                .as_str()
                .expect("console")
                .starts_with("https://")
        );
        let base = ready["base_url"].as_str().expect("base_url");
        let addr = base.strip_prefix("https://").expect("https").to_owned();
        let ca = std::fs::read_to_string(&ca_out).expect("the CA file exists");
        let (status, _) = https(&addr, &ca, "GET", "/_mock/health", &[], "")
            .await
            .expect("the CA file verifies the server");
        assert_eq!(status, 200);
        // The given certificate of the first run is not this server's CA.
        assert!(
            https(&addr, &trusted, "GET", "/_mock/health", &[], "")
                .await
                .is_err()
        );
        let _ = child.kill();
        let _ = child.wait();
    })
    .await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_default_ca_file_lives_as_long_as_the_server() {
    bounded(async {
        let args = ["--bind", "127.0.0.1:0", "--tls"].map(std::ffi::OsStr::new);
        let (child, ready) = crate::support::spawn_binary(&args).await;
        let ca_file = std::path::PathBuf::from(ready["ca_file"].as_str().expect("ca_file"));
        let ca = std::fs::read_to_string(&ca_file).expect("written before the readiness line");
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
        // `ctl` reaches it over https with the CA file, and says what is missing without.
        let control_url = ready["control_url"]
            .as_str()
            .expect("control_url")
            .to_owned();
        let ctl = move |extra: &[&str]| {
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_messaging-mock"))
                .args(["ctl", "--url", &control_url])
                .args(extra)
                .arg("health")
                .env_remove("MESSAGING_MOCK_CA_FILE")
                .output()
                .expect("ctl runs");
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        };
        let ca_arg = ca_file.display().to_string();
        let (ok, stdout, stderr) = ctl(&["--ca-file", &ca_arg]);
        assert!(ok && stdout.contains(r#""ok":true"#), "{stdout} {stderr}");
        let (ok, _, stderr) = ctl(&[]);
        assert!(!ok && stderr.contains("--ca-file"), "{stderr}");
        let stranger = tempfile::NamedTempFile::new().expect("a file");
        let other = TlsIdentity::generate().expect("generates");
        std::fs::write(stranger.path(), other.ca_pem().expect("a CA")).expect("writes");
        let stranger_arg = stranger.path().display().to_string();
        let (ok, _, stderr) = ctl(&["--ca-file", &stranger_arg]);
        assert!(!ok && stderr.contains("cannot reach"), "{stderr}");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let mut child = child;
        let exit = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("joined")
            .expect("waits");
        assert!(exit.success(), "{exit:?}");
        assert!(!ca_file.exists(), "{} is left behind", ca_file.display());
    })
    .await;
}

#[tokio::test]
async fn extra_names_are_in_the_generated_certificate_and_others_are_not() {
    bounded(async {
        let names = ["mock.test".to_owned(), "10.0.2.2".to_owned()];
        let identity = TlsIdentity::generate_for(&names).expect("generates");
        let ca = identity.ca_pem().expect("a CA").to_owned();
        let server = MockServer::start_tls_with(mock_server::Config::default(), identity)
            .await
            .expect("starts");
        let config = Arc::new(mock_server::tls::client_config(ca.as_bytes()).expect("a CA"));
        let handshake = |name: &'static str| {
            let config = Arc::clone(&config);
            let addr = server.addr();
            async move {
                let tcp = TcpStream::connect(addr).await.expect("connects");
                let name = rustls::pki_types::ServerName::try_from(name).expect("a name");
                tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        };
        for name in ["mock.test", "10.0.2.2", "localhost", "::1"] {
            handshake(name)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let error = handshake("other.test").await.expect_err("not a name of it");
        assert!(error.contains("certificate"), "{error}");
        server.shutdown().await;
    })
    .await;
}
