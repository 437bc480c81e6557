//! `messaging-conformance run`: its flags, the run, shrinking, the summary and the reports.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use conformance::driver::{ProcessLauncher, ReferenceLauncher};
use conformance::generative::Session;
use conformance::params::Params;
use conformance::reference::Defects;
use conformance::report::Run;
use conformance::runner::{CaseResult, RunProfile, Verdict, run_case, run_cases, select};
use mock_server::config::Profile;
use mock_server::outln;

use super::progress_line;

/// How to print results on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A line per case and a table per obligation.
    Text,
    /// As text, plus GitHub Actions `::error` / `::warning` annotations per finding.
    Github,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The driver command (run with `sh -c`), e.g. "node my-driver.js".
    #[arg(long, required_unless_present = "reference")]
    driver: Option<String>,
    /// Run the built-in reference client instead of a driver.
    #[arg(long, conflicts_with = "driver")]
    reference: bool,
    /// Only cases whose id contains this text (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Which cases: `quick` (no deliberate waiting, about 5 s), `full` (every observable
    /// obligation, timing ones under draws no constant fits, about 45 s), `thorough` (also the
    /// spec's long timers, about 65 s), `generative` (generated sessions only).
    #[arg(long, value_enum, default_value = "full")]
    profile: RunProfile,
    /// Also play this many generated sessions: a scenario, user steps and faults drawn from the
    /// seed across the coverage matrix (default 12 with `--profile generative`, else 0). A
    /// failing session is shrunk to the fewest beats that still fail.
    #[arg(long, value_name = "N")]
    generative: Option<usize>,
    /// Play this generated session (a case id from a report, `generated-<seed>` or
    /// `generated-<seed>-beats-…`), instead of drawing new ones (repeatable).
    #[arg(long, value_name = "ID")]
    session: Vec<String>,
    /// Do not shrink failing generated sessions.
    #[arg(long)]
    no_shrink: bool,
    /// Seed of the drawn parameters and the mock's ids (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Cases run at once (default: four per core; cases mostly wait).
    #[arg(long)]
    jobs: Option<usize>,
    /// Seconds to wait for each driver reply.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Also fail on broken SHOULDs.
    #[arg(long)]
    strict: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Write results.json, junit.xml and report.html into this directory.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    /// Run the reference client with one of its built-in defects (the kit's mutants).
    #[arg(long, requires = "reference", hide = true)]
    mutant: Option<String>,
    /// Documentation revision every case's mock serves (spec §0): `current`, or `2026-05` for
    /// SDKs written against the docs before June 2026 (then RC-2 expects `seq:<n>` cursors and
    /// UX-6 is skipped: that revision has no LANGUAGE_CHANGED). With `--reference`, the
    /// reference client follows the same revision.
    #[arg(long, value_enum, default_value = "current")]
    protocol_profile: Profile,
    /// Serve every case's mock over TLS (`https://`, `wss://`) with a certificate made for the
    /// run, and give the driver the CA file as `MESSAGING_CA_FILE` (contract §1.2; Node
    /// drivers also get `NODE_EXTRA_CA_CERTS`). WS-1 then fails a client that speaks plain
    /// HTTP or `ws://` to it.
    #[arg(long)]
    tls: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let catalogue = conformance::cases::catalogue()?;
    // 48 bits: short enough to type back in.
    let seed = args
        .seed
        .unwrap_or_else(|| getrandom::u64().unwrap_or_default() >> 16);
    let sessions = sessions(&args, seed)?;
    let generated: Vec<conformance::cases::Case> = sessions
        .iter()
        .map(Session::case)
        .collect::<Result<_, _>>()?;
    let mut cases = match args.profile.tier() {
        Some(tier) if args.session.is_empty() => select(&catalogue, tier, &args.only),
        _ => Vec::new(),
    };
    cases.extend(generated.iter());
    anyhow::ensure!(
        !cases.is_empty(),
        "no case of the {} profile matches --only {:?}",
        args.profile.as_str(),
        args.only
    );
    let params = run_params(&args, seed)?;
    let jobs = args.jobs.unwrap_or_else(conformance::runner::default_jobs);
    eprintln!(
        "{} case(s), profile {}, seed {seed}, {jobs} at a time{}",
        cases.len(),
        args.profile.as_str(),
        if args.tls { ", over TLS" } else { "" }
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let results = runtime.block_on(async {
        let interrupted = interrupted()?;
        tokio::select! {
            results = play_cases(&args, &cases, &params, jobs) => results.map(Some),
            () = interrupted => Ok(None),
        }
    })?;
    let Some(results) = results else {
        // Dropping the runtime drops every case: drivers are killed, mocks and working
        // directories go with them.
        drop(runtime);
        eprintln!(
            "messaging-conformance: interrupted; the drivers are stopped and no report is written"
        );
        return Ok(ExitCode::from(130));
    };
    let mut run = Run::new(
        driver_label(&args),
        args.profile,
        seed,
        args.strict,
        started.elapsed().as_millis() as u64,
        &results,
    );
    run.protocol = args.protocol_profile;
    run.tls = args.tls;
    publish(&args, &run)?;
    Ok(if run.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C on other platforms), its handlers installed at once.
fn interrupted() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// The generated sessions to play: the ones `--session` names, else as many drawn from `seed`
/// as `--generative` (or the profile) asks for.
fn sessions(args: &RunArgs, seed: u64) -> anyhow::Result<Vec<Session>> {
    if args.session.is_empty() {
        let count = args.generative.unwrap_or(match args.profile {
            RunProfile::Generative => 12,
            _ => 0,
        });
        return Ok((0..count as u64)
            .map(|i| Session::generate(seed, i))
            .collect());
    }
    args.session
        .iter()
        .map(|id| {
            Session::from_id(id).ok_or_else(|| {
                anyhow::anyhow!("`{id}` is not a generated session (generated-<seed>[-beats-…])")
            })
        })
        .collect()
}

/// The run's parameters drawn from `seed`, for the protocol revision and (with `--tls`) a
/// certificate made for the run.
fn run_params(args: &RunArgs, seed: u64) -> anyhow::Result<Params> {
    let mut params = Params::draw(seed).with_protocol(args.protocol_profile);
    if args.tls {
        let tls = conformance::tls::RunTls::generate().map_err(anyhow::Error::msg)?;
        params = params.with_tls(tls);
    }
    Ok(params)
}

/// Runs `cases` against the driver or the reference client (with its mutant's defects), each
/// failing generated session shrunk.
async fn play_cases(
    args: &RunArgs,
    cases: &[&conformance::cases::Case],
    params: &Params,
    jobs: usize,
) -> anyhow::Result<Vec<CaseResult>> {
    let shrink = !args.no_shrink;
    if let Some(command) = &args.driver {
        let launcher = ProcessLauncher {
            command: absolutize(command),
            timeout: Duration::from_secs(args.timeout),
        };
        let results = run_cases(cases, params, &launcher, jobs, progress_line).await;
        return Ok(shrunk(results, params, &launcher, shrink).await);
    }
    let launcher = ReferenceLauncher {
        defects: mutant_defects(args)?,
        protocol: args.protocol_profile,
    };
    let results = run_cases(cases, params, &launcher, jobs, progress_line).await;
    Ok(shrunk(results, params, &launcher, shrink).await)
}

/// The defects of the mutant `--mutant` names (none without it); a TLS-only mutant needs
/// `--tls`.
fn mutant_defects(args: &RunArgs) -> anyhow::Result<Defects> {
    let Some(name) = &args.mutant else {
        return Ok(Defects::default());
    };
    let mutant = conformance::reference::mutants()
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| anyhow::anyhow!("no mutant `{name}`"))?;
    anyhow::ensure!(
        !mutant.tls || args.tls,
        "mutant `{name}` only shows over TLS: add --tls"
    );
    Ok(mutant.defects)
}

/// How the report names what ran: the driver command, or the reference client (and mutant).
fn driver_label(args: &RunArgs) -> String {
    match (&args.driver, &args.mutant) {
        (Some(command), _) => command.clone(),
        (None, Some(mutant)) => format!("--reference --mutant {mutant}"),
        (None, None) => "--reference".into(),
    }
}

/// Prints the summary (and, for GitHub, the annotations) and writes the files asked for.
fn publish(args: &RunArgs, run: &Run<'_>) -> anyhow::Result<()> {
    print_summary(run);
    if matches!(args.format, Format::Github) {
        for line in annotations(run) {
            outln!("{line}");
        }
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(run)?)?;
        outln!("results written to {}", path.display());
    }
    if let Some(dir) = &args.report {
        conformance::report::write(dir, run)?;
        outln!("report written to {}", dir.join("report.html").display());
    }
    Ok(())
}

/// Each failing generated session replaced by its shrunk form: the fewest beats that still
/// break its first broken obligation (at most 12 more runs each), with a note of what it
/// shrank from.
async fn shrunk<L: conformance::driver::Launcher>(
    results: Vec<CaseResult>,
    params: &Params,
    launcher: &L,
    enabled: bool,
) -> Vec<CaseResult> {
    let mut out = Vec::new();
    for result in results {
        let broken = conformance::generative::broken(&result);
        let (Some(session), Some(target)) = (
            Session::from_id(&result.case).filter(|_| enabled),
            broken.iter().next().copied(),
        ) else {
            out.push(result);
            continue;
        };
        eprintln!(
            "shrinking {} ({} beats, broke {target})…",
            result.case,
            session.beats.len()
        );
        let keep = conformance::generative::shrink(&session, 12, |fewer| async move {
            let Ok(case) = fewer.case() else {
                return false;
            };
            let again = run_case(&case, params, launcher).await;
            conformance::generative::broken(&again).contains(&target)
        })
        .await;
        if keep.len() == session.beats.len() {
            out.push(result);
            continue;
        }
        let smaller = session.only(&keep);
        let Ok(case) = smaller.case() else {
            out.push(result);
            continue;
        };
        let mut again = run_case(&case, params, launcher).await;
        if !conformance::generative::broken(&again).contains(&target) {
            out.push(result);
            continue;
        }
        again.notes.push(format!(
            "shrunk from {} ({} beats) to {} of them, still breaking {target}",
            result.case,
            session.beats.len(),
            keep.len()
        ));
        progress_line(&again, 0, 0);
        out.push(again);
    }
    out
}

/// The driver command with every word that names an existing file relative to where the kit
/// was started made absolute: the driver runs in a fresh temporary directory (contract §1), so
/// `node my-driver.js` must still find its script. A command with shell syntax is left alone.
fn absolutize(command: &str) -> String {
    let shell_syntax = command.chars().any(|c| "$`|;&<>(){}*?!~".contains(c));
    let (Some(words), Ok(here)) = (shlex::split(command), std::env::current_dir()) else {
        return command.to_owned();
    };
    if shell_syntax {
        return command.to_owned();
    }
    let quote = |word: &str| shlex::try_quote(word).map_or_else(|_| word.to_owned(), Into::into);
    let mut leading = true;
    let words: Vec<String> = words
        .into_iter()
        .map(|word| {
            // `NAME=value cmd …`: the assignments stay assignments (quoting the whole word
            // would make the shell run it as a command).
            if leading {
                if let Some((name, value)) = word.split_once('=') {
                    let identifier = !name.is_empty()
                        && !name.starts_with(|c: char| c.is_ascii_digit())
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if identifier {
                        return format!("{name}={}", quote(value));
                    }
                }
                leading = false;
            }
            let path = std::path::Path::new(&word);
            if path.is_relative()
                && (word.contains('/') || path.is_file())
                && here.join(path).exists()
            {
                quote(&here.join(path).display().to_string())
            } else {
                quote(&word)
            }
        })
        .collect();
    words.join(" ")
}

fn print_summary(run: &Run<'_>) {
    outln!(
        "{:7} {:8} {:>5} {:>5} {:>5} {:>8}",
        "",
        "level",
        "pass",
        "fail",
        "warn",
        "skipped"
    );
    for (obligation, [pass, fail, warn, skipped]) in run.by_obligation() {
        outln!(
            "{:7} {:8} {pass:>5} {fail:>5} {warn:>5} {skipped:>8}",
            obligation.id.as_str(),
            obligation.level.as_str(),
        );
    }
    for (id, reasons) in &run.ungraded_musts {
        outln!("MUST {id} was never graded:");
        for reason in reasons {
            outln!("  {reason}");
        }
    }
    outln!("{}", run.verdict_line());
    if !run.passed {
        outln!("reproduce: {}", run.reproduce(None));
    }
}

/// GitHub Actions annotations: `::error` for broken MUSTs and driver errors, `::warning` for
/// broken SHOULDs. Message text is escaped as the workflow-command syntax requires.
fn annotations(run: &Run<'_>) -> Vec<String> {
    let escape = |text: &str| {
        text.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    let escape_property = |text: &str| escape(text).replace(':', "%3A").replace(',', "%2C");
    let mut out = Vec::new();
    for result in run.cases {
        if let Some(error) = &result.driver_error {
            out.push(format!(
                "::error title={}::driver error: {}",
                escape_property(&format!("{}: driver", result.case)),
                escape(error)
            ));
        }
        for finding in &result.findings {
            let level = match &finding.verdict {
                Verdict::Fail(_) => "error",
                Verdict::Warn(_) => "warning",
                _ => continue,
            };
            out.push(format!(
                "::{level} title={}::{} — reproduce: {}",
                escape_property(&format!("{} {}", result.case, finding.obligation)),
                escape(finding.verdict.reason()),
                escape(&run.reproduce(Some(&result.case)))
            ));
        }
    }
    for (id, reasons) in &run.ungraded_musts {
        out.push(format!(
            "::error title={}::{}",
            escape_property(&format!("MUST {id} never graded")),
            escape(&reasons.join("; "))
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Format, absolutize};
    use crate::{Cli, CliCommand};

    /// The CI recipes in docs/ci.md use flags the kit has: each `messaging-conformance run`
    /// line parses, and the recipes publish the `junit.xml` of the directory they report to.
    #[test]
    fn the_ci_recipes_parse_with_the_kits_own_parser() {
        let guide = include_str!("../../../docs/ci.md");
        let recipes = guide
            .split("## CI recipes for an SDK repository")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("docs/ci.md has the CI recipes section");
        let lines: Vec<&str> = recipes
            .lines()
            .filter_map(|line| line.split_once("messaging-conformance run").map(|_| line))
            .filter(|line| line.trim_start().starts_with(['-', 'r']))
            .collect();
        assert_eq!(
            lines.len(),
            2,
            "one GitHub and one GitLab run line: {lines:?}"
        );
        let mut formats = Vec::new();
        for line in lines {
            let command = line
                .split_once("messaging-conformance")
                .expect("the command")
                .1;
            let words =
                shlex::split(&format!("messaging-conformance{command}")).expect("shell words");
            let cli = Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{line}: {e}"));
            let CliCommand::Run(args) = cli.command else {
                panic!("{line}: not `run`");
            };
            let report = args.report.expect("the recipes write a report");
            let junit = format!("{}/junit.xml", report.display());
            assert!(recipes.contains(&junit), "the recipe publishes {junit}");
            formats.push(args.format);
        }
        assert!(
            formats.contains(&Format::Github),
            "the GitHub recipe annotates"
        );
        // The negative control: a flag the kit does not have is refused.
        assert!(
            Cli::try_parse_from([
                "messaging-conformance",
                "run",
                "--reference",
                "--junit",
                "x"
            ])
            .is_err()
        );
    }

    #[test]
    fn driver_commands_keep_leading_assignments_and_absolutize_paths() {
        let here = std::env::current_dir().expect("cwd");
        let manifest = "Cargo.toml"; // exists in the crate directory tests run from
        let abs = here.join(manifest).display().to_string();
        assert_eq!(
            absolutize(&format!("DRIVER_STRICT_VIEW=1 X_2='a b' cat {manifest}")),
            format!("DRIVER_STRICT_VIEW=1 X_2='a b' cat {abs}")
        );
        // Not assignments: a word with `=` after the command, and a name that is not one.
        assert_eq!(absolutize("cat --x=1"), "cat '--x=1'");
        assert_eq!(absolutize("1A=b cat"), "'1A=b' cat");
        // Shell syntax is left to the shell.
        assert_eq!(absolutize("a | b"), "a | b");
    }
}
