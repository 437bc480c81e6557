//! The process adapter and the command line, exercised with the reference client's own driver
//! program and with deliberately broken drivers.

use std::time::Duration;

use conformance::contract::{Command, Reply};
use conformance::driver::{ClientUnderTest, DriverError, ProcessDriver};
use mock_server::Config;

use crate::{bounded, env_for, is_open, messages, mock, ok, wait_for};

fn driver_command() -> String {
    format!("{} driver", env!("CARGO_BIN_EXE_messaging-conformance"))
}

#[tokio::test]
async fn the_reference_driver_speaks_the_contract_and_restarts_from_its_working_directory() {
    bounded(async {
        let server = mock(Config::default()).await;
        let dir = tempfile::tempdir().expect("workdir");
        let mut driver = ProcessDriver::launch(
            &driver_command(),
            &env_for(&server, None),
            dir.path(),
            Duration::from_secs(10),
        )
        .await
        .expect("ready");
        assert_eq!(driver.ready.name, "messaging-conformance reference client");
        ok(&mut driver, Command::Start { streaming: false }).await;
        ok(
            &mut driver,
            Command::Send {
                text: "through a pipe".into(),
            },
        )
        .await;
        let view = wait_for(&mut driver, "the reply", |v| {
            messages(v)
                .iter()
                .any(|(_, t, _)| t == "You said: through a pipe")
        })
        .await;
        assert!(is_open(&view));
        ok(&mut driver, Command::Restart).await;
        assert!(dir.path().join(conformance::reference::STATE_FILE).exists());
        let resumed = wait_for(&mut driver, "the resumed socket", is_open).await;
        assert_eq!(resumed.session_id, view.session_id);
        let finished = driver.finish().await;
        assert_eq!(finished.error, None, "exits 0: {}", finished.stderr);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn broken_drivers_are_reported_as_such() {
    bounded(async {
        let server = mock(Config::default()).await;
        let env = env_for(&server, None);
        let dir = tempfile::tempdir().expect("workdir");
        let short = Duration::from_secs(2);
        let cases = [
            ("echo not-json", "not a ready line"),
            ("exit 89", "not implemented"),
            ("exit 3", "exited"),
            ("sleep 5", "no reply"),
        ];
        for (command, expected) in cases {
            let error = ProcessDriver::launch(command, &env, dir.path(), short)
                .await
                .expect_err(command);
            let text = error.to_string();
            assert!(text.contains(expected), "{command}: {text}");
            if command == "exit 89" {
                assert_eq!(error, DriverError::NotImplemented);
            }
        }
        // Ready, then silent on a command.
        let mut silent = ProcessDriver::launch(
            r#"echo '{"ready":true,"name":"x","version":"1"}'; sleep 5"#,
            &env,
            dir.path(),
            short,
        )
        .await
        .expect("ready");
        let error = silent.call(Command::View).await.expect_err("times out");
        assert!(matches!(error, DriverError::Timeout { .. }), "{error}");
        // A view outside the contract is the driver's fault, named.
        let mut odd = ProcessDriver::launch(
            r#"echo '{"ready":true,"name":"x","version":"1"}'; read line; echo '{"re":1,"ok":true,"view":{"connection":"connected"}}'; sleep 5"#,
            &env,
            dir.path(),
            short,
        )
        .await
        .expect("ready");
        let error = odd.call(Command::View).await.expect_err("not a contract view");
        assert!(error.to_string().contains("connected"), "{error}");
        server.shutdown().await;
    })
    .await;
}

/// A driver that writes far more to stderr than a pipe holds keeps working (stderr is read as
/// it comes), and what it wrote reaches the result, its head and tail kept.
#[tokio::test]
async fn a_chatty_driver_is_not_blocked_and_its_stderr_and_logs_are_kept() {
    bounded(async {
        let server = mock(Config::default()).await;
        let dir = tempfile::tempdir().expect("workdir");
        let script = r#"echo '{"ready":true,"name":"chatty","version":"1"}'
echo 'first words' >&2
head -c 1048576 /dev/zero | tr '\0' 'x' >&2
echo 'last words' >&2
while IFS= read -r line; do
  id=$(printf '%s' "$line" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
  echo '{"log":"handled a command"}'
  printf '{"re":%s,"ok":true}\n' "$id"
  case "$line" in *'"exit"'*) exit 0;; esac
done"#;
        let mut driver = ProcessDriver::launch(
            script,
            &env_for(&server, None),
            dir.path(),
            Duration::from_secs(5),
        )
        .await
        .expect("ready");
        let reply = driver
            .call(Command::End)
            .await
            .expect("answers although its stderr is full");
        assert_eq!(reply, Reply::Ok(None));
        let finished = driver.finish().await;
        assert_eq!(finished.error, None);
        assert!(
            finished.stderr.starts_with("first words"),
            "{}",
            &finished.stderr[..40]
        );
        assert!(finished.stderr.trim_end().ends_with("last words"));
        assert!(finished.stderr.contains("bytes of stderr left out"));
        assert!(
            finished.stderr.len() < 200 * 1024,
            "{} bytes kept",
            finished.stderr.len()
        );
        assert_eq!(finished.logs, ["handled a command", "handled a command"]);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_cli_runs_a_case_against_a_driver_and_writes_every_report() {
    bounded(async {
        let dir = tempfile::tempdir().expect("report dir");
        let json = dir.path().join("results.json");
        let report = dir.path().join("report");
        let binary = env!("CARGO_BIN_EXE_messaging-conformance");
        let args: Vec<String> = vec![
            "run".into(),
            "--driver".into(),
            driver_command(),
            "--only".into(),
            "errors-and-limits".into(),
            "--profile".into(),
            "quick".into(),
            "--seed".into(),
            "17".into(),
            "--format".into(),
            "github".into(),
            "--json".into(),
            json.display().to_string(),
            "--report".into(),
            report.display().to_string(),
        ];
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(binary).args(args).output()
        })
        .await
        .expect("joined")
        .expect("runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!stdout.contains("::error"), "nothing to annotate: {stdout}");
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).expect("written")).expect("JSON");
        assert_eq!(results["seed"], 17);
        assert_eq!(results["passed"], true);
        assert_eq!(results["cases"][0]["case"], "errors-and-limits");
        let ux6 = results["cases"][0]["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["obligation"] == "UX-6")
            .expect("UX-6 graded");
        assert_eq!(ux6["verdict"], "pass");
        let junit = std::fs::read_to_string(report.join("junit.xml")).expect("junit.xml");
        assert!(
            junit.contains(r#"classname="errors-and-limits""#),
            "{junit}"
        );
        let html = std::fs::read_to_string(report.join("report.html")).expect("report.html");
        assert!(html.contains("id=\"errors-and-limits\"") && html.contains("LANGUAGE_CHANGED"));
        let progress = String::from_utf8_lossy(&output.stderr);
        assert!(progress.contains("[1/1] errors-and-limits"), "{progress}");
    })
    .await;
}

/// `--format github` turns every broken obligation into an annotation with the reproduce
/// command (here the reference client with a built-in defect).
#[tokio::test]
async fn github_annotations_name_the_case_the_obligation_and_the_reproduce_command() {
    bounded(async {
        let binary = env!("CARGO_BIN_EXE_messaging-conformance");
        let args = [
            "run",
            "--reference",
            "--mutant",
            "no-dedup",
            "--only",
            "delivery",
            "--profile",
            "quick",
            "--seed",
            "5",
            "--format",
            "github",
        ];
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(binary).args(args).output()
        })
        .await
        .expect("joined")
        .expect("runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{stdout}");
        let annotation = stdout
            .lines()
            .find(|l| l.starts_with("::error title=delivery MSG-2::"))
            .unwrap_or_else(|| panic!("no MSG-2 annotation in:\n{stdout}"));
        assert!(annotation.contains("twice"), "{annotation}");
        assert!(
            annotation.contains("--seed 5 --profile thorough --only delivery"),
            "{annotation}"
        );
        assert!(!annotation.contains('\n'));
    })
    .await;
}

/// `--version` names the binary, the crate version and the commit it was built from.
#[test]
fn version_names_the_binary_and_the_git_revision() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_messaging-conformance"))
        .arg("--version")
        .output()
        .expect("runs");
    let line = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let prefix = format!("messaging-conformance {} (git ", env!("CARGO_PKG_VERSION"));
    assert!(
        output.status.success() && line.starts_with(&prefix),
        "{line}"
    );
    let rev = &line[prefix.len()..line.len() - 1];
    assert!(
        rev == "unknown" || (rev.len() == 12 && rev.chars().all(|c| c.is_ascii_hexdigit())),
        "{rev}"
    );
}

/// Polls `condition` every 20 ms until it holds (the test's bound ends a wait that never does).
#[cfg(unix)]
async fn until(condition: impl Fn() -> bool) {
    while !condition() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether process `pid` is still running (a zombie waiting for its parent is not).
#[cfg(unix)]
fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[cfg(unix)]
#[tokio::test]
async fn an_interrupted_run_stops_its_driver_and_removes_its_working_directory() {
    bounded(async {
        let dir = tempfile::tempdir().expect("a directory");
        let told = dir.path().join("driver.txt");
        // A driver that says where it runs and who it is, then never answers.
        let driver = format!(
            "echo $$ > {told}.part; pwd >> {told}.part; mv {told}.part {told}; exec sleep 60",
            told = told.display()
        );
        let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_messaging-conformance"))
            .args([
                "run",
                "--profile",
                "quick",
                "--only",
                "delivery",
                "--timeout",
                "20",
            ])
            .args(["--driver", &driver])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("runs");
        until(|| told.exists()).await;
        let text = std::fs::read_to_string(&told).expect("the driver wrote");
        let mut lines = text.lines();
        let (pid, workdir) = (
            lines.next().expect("a pid").to_owned(),
            lines.next().expect("a directory").to_owned(),
        );
        assert!(running(&pid) && std::path::Path::new(&workdir).is_dir());
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &run.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let output = tokio::task::spawn_blocking(move || {
            let status = run.wait();
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut run.stderr.take().expect("piped"), &mut stderr)
                .expect("stderr");
            (status, stderr)
        })
        .await
        .expect("joined");
        let (status, stderr) = (output.0.expect("waited"), output.1);
        assert_eq!(status.code(), Some(130), "{stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        until(|| !running(&pid)).await;
        assert!(
            !std::path::Path::new(&workdir).exists(),
            "{workdir} outlived the run"
        );
    })
    .await;
}
