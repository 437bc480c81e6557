//! Reports of a run: `results.json` (the documented, stable shape of [`CaseResult`]),
//! `junit.xml` (one test per case and obligation) and `report.html` (self-contained: every
//! case's transcript, the client's final view, and the command that reproduces a failure).

use std::fmt::Write as _;
use std::path::Path;

use crate::runner::{CaseResult, Verdict};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: a suite per run, a test per (case, obligation), and one per driver failure.
pub fn junit(results: &[CaseResult]) -> String {
    let tests: usize = results.iter().map(|r| r.findings.len().max(1)).sum();
    let failures = results
        .iter()
        .flat_map(|r| &r.findings)
        .filter(|f| matches!(f.verdict, Verdict::Fail(_)))
        .count();
    let errors = results.iter().filter(|r| r.driver_error.is_some()).count();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"messaging-conformance\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n"
    );
    for result in results {
        let seconds = result.duration_ms as f64 / 1000.0;
        if let Some(error) = &result.driver_error {
            let _ = writeln!(
                xml,
                "  <testcase classname=\"{}\" name=\"driver\" time=\"{seconds:.3}\"><error message=\"{}\"/></testcase>",
                escape(result.case),
                escape(error)
            );
            continue;
        }
        for finding in &result.findings {
            let body = match &finding.verdict {
                Verdict::Pass => String::new(),
                Verdict::Fail(why) => format!("<failure message=\"{}\"/>", escape(why)),
                Verdict::Warn(why) => {
                    format!("<system-out>warning (SHOULD): {}</system-out>", escape(why))
                }
                Verdict::Skipped(why) => format!("<skipped message=\"{}\"/>", escape(why)),
            };
            let _ = writeln!(
                xml,
                "  <testcase classname=\"{}\" name=\"{}\" time=\"{seconds:.3}\">{body}</testcase>",
                escape(result.case),
                escape(finding.obligation)
            );
        }
    }
    xml.push_str("</testsuite>\n");
    xml
}

/// One HTML page, no external assets.
pub fn html(results: &[CaseResult], driver: &str) -> String {
    let mut page = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>messaging-conformance report</title><style>\
         body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
         .pass{color:#16794c}.fail{color:#b3261e;font-weight:bold}.warn{color:#a05a00}.skipped{color:#666}\
         pre{background:#f6f6f6;padding:.6em;overflow:auto;max-height:30em;font-size:.85em}</style></head><body>\
         <h1>messaging-conformance report</h1>",
    );
    let _ = write!(
        page,
        "<p>Driver: <code>{}</code></p><table><tr><th>Case</th><th>Obligation</th><th>Verdict</th></tr>",
        escape(driver)
    );
    for result in results {
        if let Some(error) = &result.driver_error {
            let _ = write!(
                page,
                "<tr><td><a href=\"#{0}\">{0}</a></td><td>—</td><td class=\"fail\">driver error: {1}</td></tr>",
                escape(result.case),
                escape(error)
            );
        }
        for finding in &result.findings {
            let (class, text) = match &finding.verdict {
                Verdict::Pass => ("pass", "pass".to_owned()),
                Verdict::Fail(why) => ("fail", format!("FAIL: {why}")),
                Verdict::Warn(why) => ("warn", format!("warning: {why}")),
                Verdict::Skipped(why) => ("skipped", format!("skipped: {why}")),
            };
            let _ = write!(
                page,
                "<tr><td><a href=\"#{0}\">{0}</a></td><td>{1}</td><td class=\"{class}\">{2}</td></tr>",
                escape(result.case),
                escape(finding.obligation),
                escape(&text)
            );
        }
    }
    page.push_str("</table>");
    for result in results {
        let _ = write!(
            page,
            "<h2 id=\"{0}\">{0} <small>({1}, {2} ms)</small></h2>",
            escape(result.case),
            escape(result.scenario),
            result.duration_ms
        );
        if result.failed() {
            let _ = write!(
                page,
                "<p>Reproduce: <code>messaging-conformance run --driver {} --only {}</code></p>",
                escape(&format!("{driver:?}")),
                escape(result.case)
            );
        }
        for note in &result.notes {
            let _ = write!(page, "<p>Note: {}</p>", escape(note));
        }
        let transcript: String = result
            .transcript
            .iter()
            .map(|line| format!("{line}\n"))
            .collect();
        let _ = write!(
            page,
            "<details><summary>Transcript ({} lines)</summary><pre>{}</pre></details>",
            result.transcript.len(),
            escape(&transcript)
        );
        let view = result
            .view
            .as_ref()
            .and_then(|v| serde_json::to_string_pretty(v).ok())
            .unwrap_or_else(|| "(none)".into());
        let _ = write!(
            page,
            "<details><summary>Final view</summary><pre>{}</pre></details>",
            escape(&view)
        );
    }
    page.push_str("</body></html>\n");
    page
}

/// Writes `results.json`, `junit.xml` and `report.html` into `dir`.
pub fn write(dir: &Path, results: &[CaseResult], driver: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(results).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("results.json"), json)?;
    std::fs::write(dir.join("junit.xml"), junit(results))?;
    std::fs::write(dir.join("report.html"), html(results, driver))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Finding;

    fn result(verdict: Verdict, driver_error: Option<&str>) -> CaseResult {
        CaseResult {
            case: "a-case",
            scenario: "playground",
            findings: vec![Finding {
                obligation: "MSG-2",
                verdict,
            }],
            driver_error: driver_error.map(str::to_owned),
            notes: vec!["a <note>".into()],
            duration_ms: 1500,
            transcript: vec![serde_json::json!(["→", {"type": "EVENT_TYPE_HEARTBEAT"}])],
            view: None,
        }
    }

    #[test]
    fn junit_counts_failures_skips_and_errors_and_escapes_text() {
        let xml = junit(&[
            result(Verdict::Fail("shows `x` <twice>".into()), None),
            result(Verdict::Skipped("not observable".into()), None),
            result(Verdict::Pass, Some("crashed")),
        ]);
        assert!(
            xml.contains(r#"tests="3" failures="1" errors="1""#),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"shows `x` &lt;twice&gt;\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"not observable\"/>"),
            "{xml}"
        );
        assert!(xml.contains("<error message=\"crashed\"/>"), "{xml}");
    }

    #[test]
    fn the_page_links_failures_to_a_reproduce_command() {
        let page = html(
            &[result(Verdict::Fail("broken".into()), None)],
            "node driver.js",
        );
        assert!(page.contains("class=\"fail\">FAIL: broken"), "{page}");
        assert!(page.contains("--only a-case"), "{page}");
        assert!(page.contains("a &lt;note&gt;"), "notes are escaped");
        assert!(
            page.contains("EVENT_TYPE_HEARTBEAT"),
            "the transcript is on the page"
        );
    }
}
