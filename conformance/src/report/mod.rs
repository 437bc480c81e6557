//! Reports of a run: `results.json` (the documented shape below), `junit.xml` (a test per case
//! and obligation, through `quick-junit`), and `report.html`, one self-contained page: the
//! summary first, failing cases first and open, and per case the two-lane frame timeline, the
//! view timeline, expected against shown as a diff, the drawn parameters, the driver's logs and
//! stderr, and the one command that reproduces it.
//!
//! What they show is built in `data.rs`: a case's result from its evidence (the frame and view
//! timelines, the conversation shown) and the run's summaries of the results.

use std::fmt::Write as _;
use std::path::Path;

use mock_server::control::ui::THEME;
use serde::Serialize;

use crate::obligations::{OBLIGATIONS, ObligationId};

use crate::runner::Verdict;

mod data;

pub use data::{
    CaseResult, TimelineEntry, ViewSpan, normalised_view, run_passes, unexpected_findings,
    ungraded_musts,
};
pub(crate) use data::{shown, timeline, view_spans};

/// A finished run, as reports describe it.
#[derive(Debug, Clone, Serialize)]
pub struct Run<'a> {
    /// The driver command, or `--reference`.
    pub driver: String,
    pub profile: crate::runner::RunProfile,
    pub seed: u64,
    pub strict: bool,
    /// The documentation revision the mock served (spec §0).
    pub protocol: mock_server::config::Profile,
    /// The mocks served `https://` and `wss://` (`--tls`).
    pub tls: bool,
    pub duration_ms: u64,
    pub passed: bool,
    /// MUSTs the run's cases check but never graded, with the reasons.
    pub ungraded_musts: Vec<(ObligationId, Vec<String>)>,
    pub cases: &'a [CaseResult],
}

impl<'a> Run<'a> {
    pub fn new(
        driver: String,
        profile: crate::runner::RunProfile,
        seed: u64,
        strict: bool,
        duration_ms: u64,
        cases: &'a [CaseResult],
    ) -> Self {
        Self {
            driver,
            profile,
            seed,
            strict,
            protocol: mock_server::config::Profile::Current,
            tls: false,
            duration_ms,
            passed: run_passes(cases, strict),
            ungraded_musts: ungraded_musts(cases),
            cases,
        }
    }

    /// The run's verdict in a line, saying why a run that failed failed: cases that broke a
    /// MUST (or a SHOULD, with `--strict`), drivers that broke, MUSTs never graded. A run whose
    /// only failure is an ungraded MUST says so, not "0 failed".
    pub fn verdict_line(&self) -> String {
        let failed = self.cases.iter().filter(|r| r.failed()).count();
        let warned = self.cases.iter().filter(|r| r.warned()).count();
        let ungraded = self.ungraded_musts.len();
        let mut why = Vec::new();
        if failed > 0 {
            why.push(format!("{failed} case(s) broke a MUST or the driver"));
        }
        if ungraded > 0 {
            why.push(format!("{ungraded} MUST(s) never graded"));
        }
        if self.strict && warned > 0 {
            why.push(format!("{warned} case(s) broke a SHOULD (--strict)"));
        }
        let head = if self.passed {
            "PASSED".to_owned()
        } else {
            format!("FAILED: {}", why.join(", "))
        };
        format!(
            "{head} — {} cases: {failed} failed, {warned} with warnings, {ungraded} MUST(s) never graded; seed {} ({:.1} s)",
            self.cases.len(),
            self.seed,
            self.duration_ms as f64 / 1000.0
        )
    }

    /// The command that reproduces the run, or one case of it.
    pub fn reproduce(&self, case: Option<&str>) -> String {
        let mut words = vec!["messaging-conformance".to_owned(), "run".to_owned()];
        if let Some(rest) = self.driver.strip_prefix("--reference") {
            // `--reference`, maybe with `--mutant NAME`.
            words.extend(
                std::iter::once("--reference".to_owned())
                    .chain(rest.split_whitespace().map(str::to_owned)),
            );
        } else {
            words.push("--driver".into());
            words.push(self.driver.clone());
        }
        words.push("--seed".into());
        words.push(self.seed.to_string());
        match case {
            // A generated session is named by its seed and the beats kept.
            Some(id) if crate::generative::Session::from_id(id).is_some() => {
                words.push("--profile".into());
                words.push("generative".into());
                words.push("--session".into());
                words.push(id.to_owned());
            }
            Some(id) => {
                words.push("--profile".into());
                words.push("thorough".into());
                words.push("--only".into());
                words.push(id.to_owned());
            }
            None => {
                words.push("--profile".into());
                words.push(self.profile.as_str().into());
            }
        }
        if self.strict {
            words.push("--strict".into());
        }
        if self.protocol != mock_server::config::Profile::Current {
            words.push("--protocol-profile".into());
            words.push(self.protocol.as_str().into());
        }
        if self.tls {
            words.push("--tls".into());
        }
        shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
    }

    /// Per obligation the run graded: how many passes, fails, warnings and skips.
    pub fn by_obligation(&self) -> Vec<(&'static crate::obligations::Obligation, [usize; 4])> {
        OBLIGATIONS
            .iter()
            .filter_map(|obligation| {
                let verdicts: Vec<&Verdict> = self
                    .cases
                    .iter()
                    .flat_map(|c| c.verdicts_of(obligation.id))
                    .collect();
                let n = |kind: &str| verdicts.iter().filter(|v| v.kind() == kind).count();
                (!verdicts.is_empty())
                    .then(|| (obligation, [n("pass"), n("fail"), n("warn"), n("skipped")]))
            })
            .collect()
    }

    /// How many findings have each verdict.
    pub fn counts(&self) -> [(&'static str, usize); 4] {
        let count = |kind: &str| {
            self.cases
                .iter()
                .flat_map(|c| &c.findings)
                .filter(|f| f.verdict.kind() == kind)
                .count()
        };
        [
            ("pass", count("pass")),
            ("fail", count("fail")),
            ("warn", count("warn")),
            ("skipped", count("skipped")),
        ]
    }
}

/// JUnit XML: a suite per run, a test per (case, obligation), one per driver failure and one
/// per ungraded MUST. A SHOULD broken is a failure only in a strict run.
pub fn junit(run: &Run<'_>) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new("messaging-conformance");
    for result in run.cases {
        let time = std::time::Duration::from_millis(result.duration_ms);
        if let Some(error) = &result.driver_error {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(error.as_str());
            let mut case = TestCase::new("driver", status);
            case.set_classname(result.case.as_str()).set_time(time);
            case.set_system_err(result.driver_stderr.as_str());
            suite.add_test_case(case);
        }
        for finding in &result.findings {
            let status = match &finding.verdict {
                Verdict::Pass(_) => TestCaseStatus::success(),
                Verdict::Warn(_) if !run.strict => TestCaseStatus::success(),
                Verdict::Fail(reason) | Verdict::Warn(reason) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(reason.as_str());
                    status.set_type(finding.obligation.level().as_str());
                    status
                }
                Verdict::Skipped(reason) => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(reason.as_str());
                    status
                }
            };
            let mut case = TestCase::new(finding.obligation.as_str(), status);
            case.set_classname(result.case.as_str()).set_time(time);
            if let Verdict::Warn(reason) | Verdict::Pass(reason) = &finding.verdict {
                case.set_system_out(format!("{}: {reason}", finding.verdict.kind()));
            }
            suite.add_test_case(case);
        }
    }
    for (id, reasons) in &run.ungraded_musts {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status.set_message(format!("MUST {id} was never graded"));
        status.set_description(reasons.join("\n"));
        let mut case = TestCase::new(format!("{id} graded"), status);
        case.set_classname("run");
        suite.add_test_case(case);
    }
    let mut report = Report::new("messaging-conformance");
    report.add_test_suite(suite);
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- junit: {e} -->"))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Expected against shown, one message per line, as a unified diff (`similar`).
pub fn conversation_diff(result: &CaseResult) -> Option<String> {
    // Messages first, then system messages (the view keeps them apart), each in its order.
    let lines = |list: &[crate::cases::ExpectedMessage]| {
        let (system, messages): (Vec<_>, Vec<_>) = list
            .iter()
            .partition(|m| m.from == crate::cases::Speaker::System);
        messages
            .into_iter()
            .chain(system)
            .map(|m| format!("{:?}: {}", m.from, crate::cases::shorten(&m.text)))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let expected = lines(result.expected.as_deref()?);
    let shown = lines(result.shown.as_deref().unwrap_or_default());
    if expected == shown {
        return None;
    }
    let diff = similar::TextDiff::from_lines(&expected, &shown);
    Some(
        diff.unified_diff()
            .context_radius(20)
            .header("expected", "shown")
            .to_string(),
    )
}

/// The report's own rules; the console's theme (colours, type, tables) comes first.
const STYLE: &str = r#"
main{max-width:1200px;margin:0 auto;padding:16px 24px}
h2{font-size:16px;margin:24px 0 8px}h3{margin:16px 0 6px}
pre{font:12px/1.4 var(--mono);background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px;overflow:auto;max-height:420px;white-space:pre-wrap;word-break:break-word}
.summary{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.tile{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:110px}
.tile b{display:block;font-size:22px}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;color:#fff}
.pass{background:var(--pass)}.fail{background:var(--fail)}.warn{background:var(--warn)}.skipped{background:var(--skip)}
.verdict-line{margin:2px 0}
details.case{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:10px 0;padding:0 14px}
details.case>summary{cursor:pointer;padding:10px 0;font-weight:600}
details.case[open]>summary{border-bottom:1px solid var(--line);margin-bottom:8px}
td.t{width:64px;color:var(--muted);text-align:right;font-variant-numeric:tabular-nums;font-family:var(--mono);font-size:12px}
.seq td.client,.seq td.mock{font-size:13px}
.seq td.client{background:var(--client);border-right:3px solid var(--accent)}
.seq td.mock{background:var(--mock);border-left:3px solid #7b3fb8}
.seq td.arrow{width:28px;text-align:center;color:var(--muted);font-family:var(--mono)}
td.note{color:var(--muted);font-style:italic;text-align:center}
.lane{width:46%}
.diff{padding:0}.diff span{display:block;padding:0 8px}
.diff-add{color:var(--pass);background:#e6f5ec}.diff-del{color:var(--fail);background:var(--bad-bg)}
.banner{border-radius:8px;padding:10px 14px;color:#fff;font-weight:600}
a{color:var(--accent)}
.scroll-x{overflow-x:auto}td code,p code{word-break:break-all}td{overflow-wrap:anywhere}
@media (max-width:700px){main{padding:8px}.lane{width:auto}}
"#;

fn badge(kind: &str) -> String {
    format!("<span class=\"badge {kind}\">{kind}</span>")
}

fn timeline_html(entries: &[TimelineEntry]) -> String {
    let mut html = String::from(
        "<table class=\"seq\"><tr><th>ms</th><th class=\"lane\">client</th><th></th><th class=\"lane\">mock</th></tr>",
    );
    for entry in entries.iter().take(2_000) {
        let detail = entry
            .detail
            .as_ref()
            .map(|d| {
                let text = d.to_string();
                let shown: String = text.chars().take(600).collect();
                format!(" <code class=\"muted\">{}</code>", escape(&shown))
            })
            .unwrap_or_default();
        let cell = format!("{}{detail}", escape(&entry.summary));
        let row = match entry.lane {
            "client" => format!(
                "<td class=\"client\">{cell}</td><td class=\"arrow\" title=\"client to mock\">→</td><td></td>"
            ),
            "mock" => format!(
                "<td></td><td class=\"arrow\" title=\"mock to client\">←</td><td class=\"mock\">{cell}</td>"
            ),
            _ => format!("<td class=\"note\" colspan=\"3\">{cell}</td>"),
        };
        let _ = write!(html, "<tr><td class=\"t\">{}</td>{row}</tr>", entry.at_ms);
    }
    if entries.len() > 2_000 {
        let _ = write!(
            html,
            "<tr><td></td><td colspan=\"3\" class=\"note\">… {} more</td></tr>",
            entries.len() - 2_000
        );
    }
    html.push_str("</table>");
    html
}

fn view_summary(view: &crate::contract::View) -> String {
    let mut parts = Vec::new();
    if let Some(c) = view.connection {
        parts.push(format!("{c:?}").to_lowercase());
    }
    if let Some(t) = view.typing {
        if t.agent {
            parts.push("agent typing".into());
        }
        if t.live_agent {
            parts.push("live agent typing".into());
        }
    }
    if let Some(h) = view
        .handoff
        .filter(|h| *h != crate::contract::HandoffState::None)
    {
        parts.push(format!("handoff {h:?}").to_lowercase());
    }
    if let Some(messages) = view.messages() {
        parts.push(format!("{} message(s)", messages.len()));
        if let Some(last) = messages.last() {
            parts.push(format!(
                "last: {:?} `{}`{}",
                last.from,
                crate::cases::shorten(&last.text),
                if last.complete { "" } else { " (streaming)" }
            ));
        }
    }
    if let Some(Some(ended)) = &view.ended {
        parts.push(format!("ended {}", ended.reason));
    }
    parts.join(" · ")
}

/// One case's section of the page, open unless it passed.
fn case_html(run: &Run<'_>, result: &CaseResult) -> String {
    let status = if result.failed() {
        "fail"
    } else if result.warned() {
        "warn"
    } else {
        "pass"
    };
    let open = if status == "pass" { "" } else { " open" };
    let mut html = format!(
        "<details class=\"case\" id=\"{id}\"{open}><summary>{} {id} <span class=\"muted\">({} ms, {})</span></summary>",
        badge(status),
        result.duration_ms,
        result.tier.as_str(),
        id = escape(&result.case)
    );
    let _ = write!(html, "<p>{}</p>", escape(&result.description));
    if let Some(error) = &result.driver_error {
        let _ = write!(
            html,
            "<p class=\"banner\" style=\"background:var(--fail)\">Driver error: {}</p>",
            escape(error)
        );
    }
    findings_html(&mut html, result);
    let _ = write!(
        html,
        "<h3>Reproduce</h3><pre>{}</pre>",
        escape(&run.reproduce(Some(&result.case)))
    );
    conversation_html(&mut html, result);
    if !result.params.is_empty() {
        let params = serde_json::to_string_pretty(&result.params).unwrap_or_default();
        let _ = write!(
            html,
            "<h3>Drawn parameters</h3><pre>{}</pre>",
            escape(&params)
        );
    }
    let _ = write!(
        html,
        "<h3>Frames (client ↔ mock, ms since the case started)</h3>{}",
        timeline_html(&result.timeline)
    );
    views_html(&mut html, &result.views);
    driver_output_html(&mut html, result);
    html.push_str("</details>");
    html
}

/// A case's verdict per obligation, then its notes.
fn findings_html(html: &mut String, result: &CaseResult) {
    html.push_str("<h3>Obligations</h3>");
    for finding in &result.findings {
        let _ = write!(
            html,
            "<div class=\"verdict-line\">{} <b>{}</b> <span class=\"muted\">{}</span> — {}</div>",
            badge(finding.verdict.kind()),
            finding.obligation,
            finding.obligation.level().as_str(),
            escape(finding.verdict.reason())
        );
    }
    for note in &result.notes {
        let _ = write!(html, "<p class=\"muted\">Note: {}</p>", escape(note));
    }
}

/// The expected conversation against the one shown, as a coloured diff (or that they match).
fn conversation_html(html: &mut String, result: &CaseResult) {
    if let Some(diff) = conversation_diff(result) {
        let mut lines = String::new();
        for line in diff.lines() {
            let class = match line.chars().next() {
                Some('+') if !line.starts_with("+++") => "diff-add",
                Some('-') if !line.starts_with("---") => "diff-del",
                _ => "",
            };
            let _ = write!(lines, "<span class=\"{class}\">{}</span>", escape(line));
        }
        let _ = write!(
            html,
            "<h3>Expected view against what the app showed (messages)</h3><pre class=\"diff\">{lines}</pre>"
        );
    } else if result.expected.is_some() {
        html.push_str("<h3>Conversation</h3><p>Shown exactly as expected.</p>");
    }
}

/// The view timeline: a row per span, its summary opening onto the whole view.
fn views_html(html: &mut String, views: &[ViewSpan]) {
    html.push_str("<h3>View timeline</h3><table><tr><th>from</th><th>to</th><th>what the app showed</th></tr>");
    for span in views {
        let json = serde_json::to_string_pretty(&span.view).unwrap_or_default();
        let _ = write!(
            html,
            "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td><details><summary>{}</summary><pre>{}</pre></details></td></tr>",
            span.from_ms,
            span.to_ms,
            escape(&view_summary(&span.view)),
            escape(&json)
        );
    }
    html.push_str("</table>");
}

/// The driver's log lines and stderr, when it wrote any.
fn driver_output_html(html: &mut String, result: &CaseResult) {
    if !result.driver_logs.is_empty() {
        let _ = write!(
            html,
            "<h3>Driver log lines</h3><pre>{}</pre>",
            escape(&result.driver_logs.join("\n"))
        );
    }
    if !result.driver_stderr.is_empty() {
        let _ = write!(
            html,
            "<h3>Driver stderr</h3><pre>{}</pre>",
            escape(&result.driver_stderr)
        );
    }
}

/// The self-contained page.
pub fn html(run: &Run<'_>) -> String {
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Conformance report</title><style>{THEME}{STYLE}</style></head><body><header class=\"bar\"><h1>messaging-mock <span class=\"muted\">conformance report</span></h1><span class=\"muted\">{}</span></header><main>",
        env!("CARGO_PKG_VERSION")
    );
    let (banner, colour) = if run.passed {
        ("Passed", "var(--pass)")
    } else {
        ("Failed", "var(--fail)")
    };
    let _ = write!(
        html,
        "<p class=\"muted\">Driver <code>{}</code> · profile {} · protocol {}{} · seed {} · {} case(s) · {:.1} s</p><p class=\"banner\" style=\"background:{colour}\">{banner}</p>",
        escape(&run.driver),
        run.profile.as_str(),
        run.protocol.as_str(),
        if run.tls { " over TLS" } else { "" },
        run.seed,
        run.cases.len(),
        run.duration_ms as f64 / 1000.0
    );
    html.push_str("<div class=\"summary\">");
    for (kind, count) in run.counts() {
        let _ = write!(
            html,
            "<div class=\"tile\"><b>{count}</b>{}</div>",
            badge(kind)
        );
    }
    let failed = run.cases.iter().filter(|c| c.failed()).count();
    let _ = write!(
        html,
        "<div class=\"tile\"><b>{failed} / {}</b>cases failed</div></div>",
        run.cases.len()
    );
    for (id, reasons) in &run.ungraded_musts {
        let _ = write!(
            html,
            "<p class=\"banner\" style=\"background:var(--fail)\">MUST {id} was never graded: {}</p>",
            escape(&reasons.join("; "))
        );
    }
    let _ = write!(
        html,
        "<p>Reproduce the run: <code>{}</code></p>",
        escape(&run.reproduce(None))
    );
    html.push_str("<h2>By obligation</h2><div class=\"scroll-x\"><table><tr><th>id</th><th>level</th><th>obligation</th><th>pass</th><th>fail</th><th>warn</th><th>skipped</th></tr>");
    for (obligation, [pass, fail, warn, skipped]) in run.by_obligation() {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{pass}</td><td>{fail}</td><td>{warn}</td><td>{skipped}</td></tr>",
            obligation.id,
            obligation.level.as_str(),
            escape(obligation.summary),
        );
    }
    html.push_str("</table></div><h2>Cases</h2>");
    let mut order: Vec<&CaseResult> = run.cases.iter().collect();
    order.sort_by_key(|c| (!c.failed(), !c.warned()));
    for result in order {
        html.push_str(&case_html(run, result));
    }
    html.push_str("</main></body></html>\n");
    html
}

/// Writes `results.json`, `junit.xml` and `report.html` into `dir`.
pub fn write(dir: &Path, run: &Run<'_>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(run).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("results.json"), json)?;
    std::fs::write(dir.join("junit.xml"), junit(run))?;
    std::fs::write(dir.join("report.html"), html(run))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Finding;

    fn result(verdict: Verdict, driver_error: Option<&str>) -> CaseResult {
        CaseResult {
            case: "a-case".into(),
            description: "d".into(),
            tier: crate::cases::Tier::Quick,
            seed: 7,
            params: Default::default(),
            findings: vec![Finding {
                obligation: ObligationId::Msg2,
                verdict,
            }],
            driver_error: driver_error.map(str::to_owned),
            notes: vec!["a <note>".into()],
            duration_ms: 1500,
            timeline: Vec::new(),
            views: Vec::new(),
            expected: Some(vec![crate::cases::ExpectedMessage {
                from: crate::cases::Speaker::Agent,
                text: "hello".into(),
            }]),
            shown: Some(Vec::new()),
            driver_logs: vec!["log \u{1b}[31m line".into()],
            driver_stderr: "err \u{0} <x>".into(),
            exercised: crate::coverage::Observed::default(),
        }
    }

    #[test]
    fn junit_is_valid_xml_for_any_driver_text() {
        let cases = [
            result(Verdict::Fail("bad \u{1} <frame> & \"quote\"".into()), None),
            result(
                Verdict::Skipped("not observable".into()),
                Some("crash \u{7}"),
            ),
        ];
        let run = Run::new(
            "node d.js".into(),
            crate::runner::RunProfile::Full,
            7,
            false,
            10,
            &cases,
        );
        let xml = junit(&run);
        assert!(xml.contains("testsuite"), "{xml}");
        assert!(xml.contains("failures=\"1\""), "{xml}");
        assert!(
            !xml.contains('\u{1}') && !xml.contains('\u{7}'),
            "control characters escaped: {xml}"
        );
        assert!(xml.contains("&lt;frame&gt;"), "{xml}");
    }

    #[test]
    fn the_page_puts_failures_first_and_shows_the_diff_and_reproduce_command() {
        let cases = [
            result(Verdict::Pass("fine".into()), None),
            CaseResult {
                case: "broken-case".into(),
                ..result(Verdict::Fail("shows it twice".into()), None)
            },
        ];
        let run = Run::new(
            "node my driver.js".into(),
            crate::runner::RunProfile::Full,
            42,
            false,
            10,
            &cases,
        );
        let page = html(&run);
        let failing = page.find("id=\"broken-case\"").expect("the failing case");
        let passing = page.find("id=\"a-case\"").expect("the passing case");
        assert!(failing < passing, "failing cases come first");
        assert!(page.contains("<details class=\"case\" id=\"broken-case\" open>"));
        assert!(
            page.contains("diff-del"),
            "the missing message is a removed line"
        );
        assert!(
            page.contains("--driver &#39;node my driver.js&#39; --seed 42"),
            "the driver command is shell-quoted"
        );
        assert!(page.contains("a &lt;note&gt;"));
        assert!(!page.contains("<script"), "no script in the report");
    }
}
