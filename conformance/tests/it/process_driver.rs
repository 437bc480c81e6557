//! The process adapter, exercised with the reference client's own driver program.

use std::time::Duration;

use conformance::contract::Command;
use conformance::driver::{DriverError, ProcessDriver};
use mock_server::Config;

use crate::{bounded, env_for, messages, mock, ok, wait_for};

fn driver_command() -> String {
    format!("{} driver", env!("CARGO_BIN_EXE_messaging-conformance"))
}

#[tokio::test]
async fn the_reference_driver_speaks_the_contract() {
    bounded(async {
        let server = mock(Config::default()).await;
        let dir = std::env::temp_dir();
        let mut driver = ProcessDriver::launch(
            &driver_command(),
            &env_for(&server, None),
            &dir,
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
        assert_eq!(view.connection.as_deref(), Some("open"));
        let reply = conformance::driver::ClientUnderTest::call(&mut driver, Command::Restart)
            .await
            .expect("alive");
        assert_eq!(reply, conformance::contract::Reply::Unsupported);
        driver.finish().await.expect("exits 0");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn broken_drivers_are_reported_as_such() {
    bounded(async {
        let server = mock(Config::default()).await;
        let env = env_for(&server, None);
        let dir = std::env::temp_dir();
        let short = Duration::from_secs(2);
        let cases = [
            ("echo not-json", "not a ready line"),
            ("exit 89", "not implemented"),
            ("exit 3", "exited"),
            ("sleep 5", "no reply"),
        ];
        for (command, expected) in cases {
            let error = ProcessDriver::launch(command, &env, &dir, short)
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
            &dir,
            short,
        )
        .await
        .expect("ready");
        let error = conformance::driver::ClientUnderTest::call(&mut silent, Command::View)
            .await
            .expect_err("times out");
        assert!(matches!(error, DriverError::Timeout { .. }), "{error}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_cli_runs_cases_against_a_driver_and_writes_json() {
    bounded(async {
        let json = std::env::temp_dir().join(format!("conformance-{}.json", std::process::id()));
        let report_dir =
            std::env::temp_dir().join(format!("conformance-report-{}", std::process::id()));
        let binary = env!("CARGO_BIN_EXE_messaging-conformance");
        let args: Vec<String> = vec![
            "run".into(),
            "--driver".into(),
            driver_command(),
            "--only".into(),
            "language".into(),
            "--json".into(),
            json.display().to_string(),
            "--report".into(),
            report_dir.display().to_string(),
        ];
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(binary).args(args).output()
        })
        .await
        .expect("joined")
        .expect("runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).expect("written")).expect("JSON");
        assert_eq!(results[0]["case"], "language");
        assert_eq!(
            results[0]["findings"][0],
            serde_json::json!({"obligation": "UX-6", "verdict": "pass"})
        );
        let junit = std::fs::read_to_string(report_dir.join("junit.xml")).expect("junit.xml");
        assert!(
            junit.contains(r#"<testcase classname="language" name="UX-6""#),
            "{junit}"
        );
        assert!(junit.contains(r#"failures="0""#), "{junit}");
        let html = std::fs::read_to_string(report_dir.join("report.html")).expect("report.html");
        assert!(
            html.contains("id=\"language\"") && html.contains("EVENT_TYPE_LANGUAGE_CHANGED"),
            "the page has the case and its transcript"
        );
        let progress = String::from_utf8_lossy(&output.stderr);
        assert!(progress.contains("[1/1] language"), "{progress}");
    })
    .await;
}
