//! The foreign suite: single-bug variants of the example clients, written from the spec by
//! people who did not read the checks (`conformance/tests/foreign/<language>.json`: each
//! variant's id, the obligation its bug breaks, the bug in a sentence, and the edits that make
//! it). Each variant is built in a scratch copy of its example, run against the cases that
//! grade its obligation, and must be flagged on that obligation; what else it broke is printed
//! beside it.

use std::path::Path;
use std::time::Duration;

use conformance::cases::{Case, EVERY_CASE, Tier, catalogue};
use conformance::driver::ProcessLauncher;
use conformance::obligations::ObligationId;
use conformance::params::Params;
use conformance::runner::{run_cases, select};
use libtest_mimic::Trial;
use serde::Deserialize;

use crate::support::{
    UNBOUNDED_WAIT, compile_java, java, needing, node, python, repo, run, scratch, with_permit,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Variant {
    id: String,
    obligation: ObligationId,
    bug: String,
    edits: Vec<Edit>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    file: String,
    find: String,
    replace: String,
}

/// A language's example and how to run its driver.
#[derive(Debug, Clone, Copy)]
struct Language {
    name: &'static str,
    example: &'static str,
    driver: &'static str,
    /// The prerequisite: the interpreter (or, for Java, the example compiled), or why not.
    program: fn() -> Result<String, String>,
    /// The command that runs the driver at `driver` in the variant's copy `example`.
    command: fn(program: &str, example: &Path, driver: &Path) -> Result<String, String>,
}

/// An interpreted example: the interpreter, then the driver's file.
fn interpreted(program: &str, _: &Path, driver: &Path) -> Result<String, String> {
    Ok(format!("{program} {}", driver.display()))
}

/// The Java example: the variant's copy compiled next to it.
fn compiled(_: &str, example: &Path, _: &Path) -> Result<String, String> {
    compile_java(example, &example.join("classes"))
}

const LANGUAGES: [Language; 3] = [
    Language {
        name: "python",
        example: "examples/drivers/python",
        driver: "driver.py",
        program: python,
        command: interpreted,
    },
    Language {
        name: "node",
        example: "examples/drivers/node",
        driver: "driver.mjs",
        program: node,
        command: interpreted,
    },
    Language {
        name: "java",
        example: "examples/drivers/java",
        driver: "Driver.java",
        program: java,
        command: compiled,
    },
];

fn variants(language: &Language) -> Result<Vec<Variant>, String> {
    let path = repo().join(format!("conformance/tests/foreign/{}.json", language.name));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The variant's sources: the example's files with its edits applied, each `find` occurring
/// exactly once in the file it edits.
fn edited(language: &Language, variant: &Variant) -> Result<Vec<(String, String)>, String> {
    let dir = repo().join(language.example);
    let mut files: Vec<(String, String)> = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_file() {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
            files.push((name, text));
        }
    }
    for edit in &variant.edits {
        let Some((_, text)) = files.iter_mut().find(|(name, _)| *name == edit.file) else {
            return Err(format!(
                "{}: no file {} in {}",
                variant.id, edit.file, language.example
            ));
        };
        let found = text.matches(edit.find.as_str()).count();
        if found != 1 {
            return Err(format!(
                "{}: the text to find occurs {found} times in {} (once wanted): {:?}",
                variant.id, edit.file, edit.find
            ));
        }
        *text = text.replacen(edit.find.as_str(), &edit.replace, 1);
    }
    Ok(files)
}

/// Writes the variant next to a link to the driver helpers (the examples import them from
/// `../../../drivers`), returning the command that runs its driver.
fn build(language: &Language, variant: &Variant, program: &str) -> Result<String, String> {
    let root = scratch(&format!("foreign/{}/{}", language.name, variant.id));
    let _ = std::fs::remove_dir_all(&root);
    let example = root.join(language.example);
    std::fs::create_dir_all(&example).map_err(|e| e.to_string())?;
    for (name, text) in edited(language, variant)? {
        std::fs::write(example.join(name), text).map_err(|e| e.to_string())?;
    }
    link(&repo().join("drivers"), &root.join("drivers"))?;
    (language.command)(program, &example, &example.join(language.driver))
}

#[cfg(unix)]
fn link(target: &Path, at: &Path) -> Result<(), String> {
    std::os::unix::fs::symlink(target, at).map_err(|e| format!("{}: {e}", at.display()))
}

/// The cases that grade `obligation`, thorough ones included (listed by the case itself; every
/// full-profile case for the wire-form obligations the kit adds to all).
fn cases_for(all: &[Case], obligation: ObligationId) -> Vec<&Case> {
    select(all, Tier::Thorough, &[])
        .into_iter()
        .filter(|c| c.tier != Tier::Thorough || c.listed_checks().contains(&obligation))
        .filter(|c| EVERY_CASE.contains(&obligation) || c.listed_checks().contains(&obligation))
        .collect()
}

async fn flagged(command: String, variant: Variant) -> Result<(), String> {
    let all = catalogue().map_err(|e| e.to_string())?;
    let cases = cases_for(&all, variant.obligation);
    let launcher = ProcessLauncher {
        command,
        timeout: Duration::from_secs(10),
    };
    let results = run_cases(
        &cases,
        &Params::draw(7),
        &launcher,
        cases.len(),
        |_, _, _| {},
    )
    .await;
    let mut intended = Vec::new();
    let mut collateral = Vec::new();
    for result in &results {
        if let Some(error) = &result.driver_error {
            collateral.push(format!("{}: driver error {error}", result.case));
        }
        for finding in result.findings.iter().filter(|f| f.verdict.is_broken()) {
            let line = format!(
                "{} {} {}: {}",
                result.case,
                finding.obligation,
                finding.verdict.kind(),
                finding.verdict.reason()
            );
            if finding.obligation == variant.obligation {
                intended.push(line);
            } else {
                collateral.push(line);
            }
        }
    }
    println!("{} ({}): {}", variant.id, variant.obligation, variant.bug);
    for line in &intended {
        println!("  flagged: {line}");
    }
    for line in &collateral {
        println!("  also: {line}");
    }
    if intended.is_empty() {
        return Err(format!(
            "{} was not flagged on {} in {:?}: {}",
            variant.id,
            variant.obligation,
            cases.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            variant.bug
        ));
    }
    Ok(())
}

pub fn trials() -> Vec<Trial> {
    let mut out = vec![Trial::test("foreign::suite", || {
        let mut total = 0;
        for language in &LANGUAGES {
            let list = variants(language)?;
            let mut ids = std::collections::BTreeSet::new();
            for variant in &list {
                if !ids.insert(variant.id.clone()) {
                    return Err(format!("{} is listed twice", variant.id).into());
                }
                if !variant.obligation.observable() {
                    return Err(format!(
                        "{}: {} is not observable",
                        variant.id, variant.obligation
                    )
                    .into());
                }
                if variant.edits.is_empty() || variant.bug.trim().is_empty() {
                    return Err(format!("{}: no edits or no description", variant.id).into());
                }
                edited(language, variant)?;
            }
            total += list.len();
        }
        if total < 47 {
            return Err(format!("{total} variants; the suite keeps at least 47").into());
        }
        Ok(())
    })];
    for language in LANGUAGES {
        let Ok(list) = variants(&language) else {
            continue; // foreign::suite says why.
        };
        for variant in list {
            let name = format!("foreign::{}::{}", language.name, variant.id);
            out.push(needing(name, language.program, move |program| {
                let command = build(&language, &variant, &program)?;
                run(
                    UNBOUNDED_WAIT,
                    with_permit(Duration::from_secs(300), flagged(command, variant)),
                )
            }));
        }
    }
    out
}
