//! Negative controls: drivers that do nothing useful must fail a run, never pass it on
//! missing evidence.

use std::path::Path;
use std::time::Duration;

use conformance::cases::{Tier, catalogue};
use conformance::contract::{Command, ConnectionState, Reply, View};
use conformance::driver::{
    ClientUnderTest, DriverEnv, DriverError, Finished, InProcess, Launcher, ProcessLauncher,
};
use conformance::obligations::ObligationId;
use conformance::params::Params;
use conformance::runner::{CaseResult, Verdict, run_cases, run_passes, select, ungraded_musts};

use crate::bounded_by;

/// How a control behaves.
#[derive(Debug, Clone, Copy)]
enum Control {
    /// Ready, then `unsupported` to every command.
    Null,
    /// `ok` to everything, a view of nothing, never a request to the mock.
    DoNothing,
    /// The real reference client underneath, but every view is `{}`.
    EmptyView,
}

#[derive(Debug)]
struct ControlClient {
    control: Control,
    inner: InProcess,
}

impl ClientUnderTest for ControlClient {
    async fn call(&mut self, command: Command) -> Result<Reply, DriverError> {
        Ok(match (self.control, command) {
            (Control::Null, _) => Reply::Unsupported,
            (Control::DoNothing, Command::View) => Reply::Ok(Some(Box::new(View {
                connection: Some(ConnectionState::Open),
                messages: Some(Vec::new()),
                ..View::default()
            }))),
            (Control::DoNothing, _) => Reply::Ok(None),
            (Control::EmptyView, Command::View) => {
                self.inner.call(Command::View).await?;
                Reply::Ok(Some(Box::default()))
            }
            (Control::EmptyView, command) => self.inner.call(command).await?,
        })
    }

    async fn finish(self) -> Finished {
        self.inner.finish().await
    }
}

struct ControlLauncher(Control);

impl Launcher for ControlLauncher {
    type Client = ControlClient;

    async fn launch(&self, env: DriverEnv, workdir: &Path) -> Result<ControlClient, DriverError> {
        Ok(ControlClient {
            control: self.0,
            inner: InProcess::new(env, workdir),
        })
    }
}

async fn run(control: Control) -> Vec<CaseResult> {
    let cases = catalogue().expect("cases");
    let selected = select(&cases, Tier::Full, &[]);
    run_cases(
        &selected,
        &Params::draw(4),
        &ControlLauncher(control),
        selected.len(),
        |_, _, _| {},
    )
    .await
}

fn passes(results: &[CaseResult]) -> Vec<String> {
    results
        .iter()
        .flat_map(|r| {
            r.findings
                .iter()
                .filter(|f| matches!(f.verdict, Verdict::Pass(_)))
                .map(move |f| format!("{} {}", r.case, f.obligation))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_driver_fails_the_run_with_every_must_ungraded() {
    bounded_by(Duration::from_secs(30), async {
        let results = run(Control::Null).await;
        assert!(
            !run_passes(&results, false),
            "a driver that supports nothing passed"
        );
        assert!(passes(&results).is_empty(), "{:?}", passes(&results));
        let ungraded = ungraded_musts(&results);
        assert!(
            ungraded
                .iter()
                .any(|(id, reasons)| *id == ObligationId::Auth1
                    && reasons
                        .iter()
                        .any(|r| r.contains("does not support `start`"))),
            "{ungraded:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_that_answers_ok_but_never_connects_fails_on_auth_1() {
    bounded_by(Duration::from_secs(40), async {
        let results = run(Control::DoNothing).await;
        assert!(!run_passes(&results, false));
        assert!(passes(&results).is_empty(), "{:?}", passes(&results));
        for result in &results {
            assert!(
                result
                    .verdicts_of(ObligationId::Auth1)
                    .iter()
                    .any(|v| matches!(v, Verdict::Fail(_))),
                "{}: blame lands on AUTH-1, the first stage never reached: {:?}",
                result.case,
                result.findings
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_whose_view_is_empty_fails_with_the_view_musts_ungraded() {
    bounded_by(Duration::from_secs(60), async {
        let results = run(Control::EmptyView).await;
        assert!(!run_passes(&results, false), "an empty view passed");
        let ungraded: Vec<ObligationId> = ungraded_musts(&results)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        for id in [
            ObligationId::Msg1,
            ObligationId::Msg3,
            ObligationId::Msg4,
            ObligationId::Ux4,
        ] {
            assert!(
                ungraded.contains(&id),
                "{id} should be ungraded: {ungraded:?}"
            );
        }
        // What the client does on the wire is still judged, and it is the reference's.
        assert!(passes(&results).iter().any(|p| p.ends_with("WS-5")));
    })
    .await;
}

/// The same control as a real process through the CLI: exit 1, and the reason printed.
#[tokio::test]
async fn the_cli_fails_a_null_driver_and_says_which_musts_went_ungraded() {
    bounded_by(Duration::from_secs(30), async {
        let null_driver = r#"echo '{"ready":true,"name":"null","version":"0"}'; while IFS= read -r line; do id=$(printf '%s' "$line" | sed -n 's/.*"id":\([0-9]*\).*/\1/p'); printf '{"re":%s,"unsupported":true}\n' "$id"; done"#;
        let binary = env!("CARGO_BIN_EXE_messaging-conformance");
        let args = ["run", "--driver", null_driver, "--profile", "quick", "--seed", "9"];
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(binary).args(args).output()
        })
        .await
        .expect("joined")
        .expect("runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{stdout}");
        assert!(stdout.contains("MUST AUTH-1 was never graded"), "{stdout}");
        // The verdict line says why the run failed, though no case "failed".
        let verdict = stdout
            .lines()
            .find(|l| l.starts_with("FAILED: "))
            .unwrap_or_else(|| panic!("no verdict line: {stdout}"));
        assert!(
            verdict.contains("MUST(s) never graded") && verdict.contains(" 0 failed,"),
            "{verdict}"
        );
        assert!(stdout.contains("does not support `start`"), "{stdout}");
        // And the launcher used here is the CLI's: the same driver through the library.
        let launcher = ProcessLauncher {
            command: null_driver.into(),
            timeout: Duration::from_secs(5),
        };
        let cases = catalogue().expect("cases");
        let quick = select(&cases, Tier::Quick, &[]);
        let results = run_cases(&quick, &Params::draw(9), &launcher, quick.len(), |_, _, _| {}).await;
        assert!(!run_passes(&results, false));
    })
    .await;
}
