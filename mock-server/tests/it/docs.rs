//! The repository is the product: every relative link and anchor in every tracked Markdown
//! file resolves inside it, nothing points outside it, and every spec section and obligation
//! id the code and docs cite is a heading of `docs/protocol.md`. Each check has a negative
//! control that must fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::browser::repo;

/// Every file git tracks (and the untracked ones it does not ignore) under the repository.
fn tracked() -> Vec<PathBuf> {
    let output = std::process::Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(repo())
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git ls-files failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| repo().join(l))
        .filter(|p| p.is_file())
        .collect()
}

/// GitHub's anchor for a heading: lowercase; letters, digits, `-`, `_` and spaces kept;
/// spaces become `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Lines outside fenced code blocks, with their numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// The anchors of a Markdown text's headings (duplicates get `-1`, `-2`, … as on GitHub).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (_, line) in prose(text) {
        let Some(heading) = line.strip_prefix('#').map(|h| h.trim_start_matches('#')) else {
            continue;
        };
        if !heading.starts_with(' ') {
            continue;
        }
        let base = slug(&heading.replace('`', ""));
        let n = seen.entry(base.clone()).or_default();
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// The link targets of a Markdown text: `[..](target)` and `src="target"`.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (number, line) in prose(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = after[..end].split_whitespace().next().unwrap_or("");
            out.push((number, target.trim_matches(['<', '>']).to_owned()));
            rest = &after[end..];
        }
        let mut rest = line;
        while let Some(at) = rest.find("src=\"") {
            let after = &rest[at + 5..];
            let end = after.find('"').unwrap_or(after.len());
            out.push((number, after[..end].to_owned()));
            rest = &after[end..];
        }
    }
    out
}

/// Every broken relative link or anchor of the Markdown file `file` (contents `text`), as
/// `file:line: target (why)`.
fn broken_links(file: &Path, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let shown = file
        .strip_prefix(repo())
        .unwrap_or(file)
        .display()
        .to_string();
    for (line, target) in links(text) {
        if target.is_empty()
            || target.starts_with("http://")
            || target.starts_with("https://")
            || target.starts_with("mailto:")
        {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let resolved = if path.is_empty() {
            file.to_path_buf()
        } else {
            file.parent().unwrap_or(Path::new(".")).join(path)
        };
        let Ok(canonical) = resolved.canonicalize() else {
            out.push(format!("{shown}:{line}: {target} (no such file)"));
            continue;
        };
        let Ok(root) = repo().canonicalize() else {
            continue;
        };
        if !canonical.starts_with(&root) {
            out.push(format!("{shown}:{line}: {target} (outside the repository)"));
            continue;
        }
        if let Some(anchor) = anchor.filter(|a| !a.is_empty()) {
            let is_markdown = canonical.extension().is_some_and(|e| e == "md");
            let heads = if path.is_empty() {
                anchors(text)
            } else {
                std::fs::read_to_string(&canonical)
                    .map(|t| anchors(&t))
                    .unwrap_or_default()
            };
            if is_markdown && !heads.contains(anchor) {
                out.push(format!(
                    "{shown}:{line}: {target} (no heading with that anchor)"
                ));
            }
        }
    }
    out
}

#[test]
fn every_markdown_link_and_anchor_resolves_inside_the_repository() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in tracked()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .filter(|p| !p.components().any(|c| c.as_os_str() == "node_modules"))
    {
        let text = std::fs::read_to_string(&file).expect("readable");
        checked += links(&text).len();
        broken.extend(broken_links(&file, &text));
    }
    assert!(checked > 50, "only {checked} links found");
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_link_checker_finds_a_missing_file_a_missing_anchor_and_a_link_out_of_the_repository() {
    let file = repo().join("README.md");
    let text = "# Title\n\n## A heading\n\nSee [x](docs/nope.md), [y](#a-heading), [z](#no-such), \
                [w](../outside.md), [v](docs/protocol.md#0-documentation-revisions) and \
                [u](https://example.com/x).\n\n```\n[in code](ignored.md)\n```\n";
    let broken = broken_links(&file, text);
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(
        !broken.iter().any(|b| b.contains("#a-heading")),
        "{broken:?}"
    );
    assert!(
        broken[0].contains("docs/nope.md (no such file)"),
        "{broken:?}"
    );
    assert!(broken[1].contains("#no-such (no heading"), "{broken:?}");
    assert!(broken[2].contains("../outside.md"), "{broken:?}");
    assert_eq!(
        slug("MSG-2 — Deduplicate by id"),
        "msg-2--deduplicate-by-id",
        "GitHub's anchors"
    );
}

/// No tracked file points at the team's working folder outside the repository.
#[test]
fn nothing_points_outside_the_repository() {
    let needle = ["..", "/shared/"].concat();
    let spec = ["shared/", "spec/"].concat();
    let offending: Vec<String> = tracked()
        .into_iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "node_modules"))
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            (text.contains(&needle) || text.contains(&spec))
                .then(|| p.strip_prefix(repo()).unwrap_or(&p).display().to_string())
        })
        .collect();
    assert!(offending.is_empty(), "{offending:#?}");
}

/// The spec sections cited in `text` (`§3.6`, `§12 C4`, `§0`), as heading prefixes.
fn citations(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find('§') {
        rest = &rest[at + '§'.len_utf8()..];
        let number: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let number = number.trim_end_matches('.').to_owned();
        if number.is_empty() {
            continue;
        }
        let after = rest.trim_start()[number.len()..].to_owned();
        // `§12 C4`: a decision of §12.
        let decision: String = after
            .strip_prefix(' ')
            .map(|a| {
                a.chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect::<String>()
            })
            .filter(|d| {
                d.len() >= 2
                    && d.starts_with(|c: char| ('A'..='F').contains(&c))
                    && d[1..].chars().all(|c| c.is_ascii_digit())
            })
            .unwrap_or_default();
        if number == "12" && !decision.is_empty() {
            out.insert(format!("{decision} "));
        } else {
            out.insert(format!("{number} "));
        }
    }
    out
}

/// The cited sections that are not headings of `protocol` (a heading `### 3.6 …` answers
/// `3.6 `, `## 12. …` answers `12 `, `#### C4. …` answers `C4 `).
fn unresolved(cited: &BTreeSet<String>, protocol: &str) -> Vec<String> {
    let headings: Vec<String> = prose(protocol)
        .into_iter()
        .filter_map(|(_, l)| l.strip_prefix('#'))
        .map(|h| h.trim_start_matches('#').trim().replacen(". ", " ", 1))
        .collect();
    cited
        .iter()
        .filter(|c| !headings.iter().any(|h| h.starts_with(c.as_str())))
        .cloned()
        .collect()
}

#[test]
fn every_cited_spec_section_and_obligation_id_is_a_heading_of_the_protocol_document() {
    let protocol =
        std::fs::read_to_string(repo().join("docs/protocol.md")).expect("docs/protocol.md");
    let mut cited = BTreeSet::new();
    for file in tracked().into_iter().filter(|p| {
        p.extension().is_some_and(|e| {
            ["rs", "md", "mjs", "py", "java", "json"].contains(&e.to_str().unwrap_or(""))
        }) && !p.ends_with("docs/protocol.md")
            && !p.ends_with("mock-server/tests/it/docs.rs")
            && !p.components().any(|c| c.as_os_str() == "node_modules")
    }) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        // RFC sections (`RFC 6455 §5.5.1`) are not the spec's.
        let text = text
            .replace("RFC 6455 §", "RFC 6455 section ")
            .replace("RFC 9112 §", "RFC 9112 section ");
        cited.extend(citations(&text));
    }
    assert!(cited.len() > 30, "{cited:?}");
    let missing = unresolved(&cited, &protocol);
    assert!(
        missing.is_empty(),
        "cited but not a heading of docs/protocol.md: {missing:?}"
    );
    for obligation in [
        "AUTH-1", "AUTH-2", "AUTH-3", "AUTH-4", "AUTH-5", "WS-1", "WS-2", "WS-3", "WS-4", "WS-5",
        "WS-6", "WS-7", "HB-1", "HB-2", "RC-1", "RC-2", "RC-3", "RC-4", "RC-5", "MSG-1", "MSG-2",
        "MSG-3", "MSG-4", "MSG-5", "UX-1", "UX-2", "UX-3", "UX-4", "UX-5", "UX-6", "ERR-1",
        "ERR-2", "SEC-1",
    ] {
        assert!(
            protocol.contains(&format!("\n#### {obligation} — ")),
            "{obligation} has no heading in docs/protocol.md"
        );
    }
    // Negative control: sections that do not exist are reported.
    let control = citations("see §3.6, §12 C4 and §12 Z9, §14.2 and §99");
    assert_eq!(
        unresolved(&control, &protocol),
        ["14.2 ", "99 "],
        "{control:?}"
    );
}

/// The control API routes of an OpenAPI document that a guide's table leaves out. A row names
/// a route as `` `METHOD /path` `` (query strings in brackets after the path are allowed).
fn undocumented_routes(openapi: &serde_json::Value, guide: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for (path, operations) in openapi["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("operations").keys() {
            let route = format!("`{} {path}", method.to_uppercase());
            let shown = guide
                .lines()
                .filter(|l| l.starts_with('|'))
                .any(|l| l.contains(&route) || l.contains(&route.replace("/{file}", "/")));
            if !shown {
                missing.push(route);
            }
        }
    }
    missing
}

/// docs/mock.md's control-API table has a row for every route the server's OpenAPI
/// description has, so a new endpoint cannot ship undocumented.
#[test]
fn the_guide_documents_every_control_api_route() {
    let openapi: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schemas/control-openapi.json")).expect("openapi"),
    )
    .expect("json");
    let guide = std::fs::read_to_string(repo().join("docs/mock.md")).expect("docs/mock.md");
    let missing = undocumented_routes(&openapi, &guide);
    assert!(
        missing.is_empty(),
        "docs/mock.md has no row for {missing:?}"
    );
    // Negative controls: a route the guide never mentions, and a table that lost a row.
    let extra = serde_json::json!({"paths": {"/_mock/nope": {"delete": {}}}});
    assert_eq!(undocumented_routes(&extra, &guide), ["`DELETE /_mock/nope"]);
    let cut: String = guide
        .lines()
        .filter(|l| !l.contains("`GET /_mock/requests"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        undocumented_routes(&openapi, &cut),
        ["`GET /_mock/requests"]
    );
}

/// The paths ARCHITECTURE.md's codemap names that do not exist under `root`. An entry is a
/// line of the block whose text starts before column 24 (later columns continue a
/// description); its indentation nests it under the last shallower entry, and one line may
/// name several paths (`ui.rs, ui/`).
fn missing_codemap_paths(architecture: &str, root: &Path) -> Vec<String> {
    let Some(block) = architecture
        .split("## Codemap")
        .nth(1)
        .and_then(|rest| rest.split("```").nth(1))
    else {
        return vec!["no codemap block".into()];
    };
    let mut parents: Vec<(usize, PathBuf)> = Vec::new();
    let mut missing = Vec::new();
    for line in block.lines().skip(1) {
        let indent = line.len() - line.trim_start().len();
        if line.trim().is_empty() || indent >= 24 {
            continue;
        }
        let names = line.trim_start().split("  ").next().unwrap_or_default();
        parents.retain(|(depth, _)| *depth < indent);
        let base = parents.last().map_or_else(PathBuf::new, |(_, p)| p.clone());
        for name in names.split(", ") {
            let path = base.join(name.trim());
            if !root.join(&path).exists() {
                missing.push(path.display().to_string());
            }
        }
        if let Some(first) = names.split(", ").last().filter(|n| n.ends_with('/')) {
            parents.push((indent, base.join(first.trim())));
        }
    }
    missing
}

#[test]
fn every_path_in_the_architecture_codemap_exists() {
    let root = repo();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    assert_eq!(missing_codemap_paths(&text, &root), Vec::<String>::new());
    // Negative controls: a missing file at the top, a missing one nested under a real
    // directory, and a nested one whose parent directory does not exist.
    let bogus = "## Codemap\n\n```\nmock-server/            lib\n  src/nowhere.rs        x\n  src/state/            y\n    ghost.rs            z\nno-such-dir/            w\n  inner.rs              v\n```\n";
    assert_eq!(
        missing_codemap_paths(bogus, &root),
        [
            "mock-server/src/nowhere.rs",
            "mock-server/src/state/ghost.rs",
            "no-such-dir/",
            "no-such-dir/inner.rs"
        ]
    );
}

/// The strings of `pub const NAME: &str = "…";` items in `source` that `protocol` does not
/// quote verbatim, and how many such items there were.
fn unquoted_catalogue_strings(source: &str, protocol: &str) -> (usize, Vec<String>) {
    let mut count = 0;
    let mut unquoted = Vec::new();
    for item in source.split("pub const ").skip(1) {
        let Some(value) = item
            .split_once('=')
            .and_then(|(_, rest)| rest.split_once('"'))
            .and_then(|(_, rest)| rest.split_once("\";"))
            .map(|(value, _)| value)
        else {
            continue;
        };
        count += 1;
        if !protocol.contains(value) {
            unquoted.push(value.to_owned());
        }
    }
    (count, unquoted)
}

/// The tests assert the mock's answers as literal strings; this is the one place that checks
/// the mock's catalogue (`protocol::catalog`) against the protocol document.
#[test]
fn every_catalogue_string_is_quoted_verbatim_in_the_protocol_document() {
    let root = repo();
    let source = std::fs::read_to_string(root.join("mock-server/src/protocol/catalog.rs"))
        .expect("catalog.rs");
    let protocol = std::fs::read_to_string(root.join("docs/protocol.md")).expect("protocol.md");
    let (count, unquoted) = unquoted_catalogue_strings(&source, &protocol);
    assert_eq!(
        count,
        source.matches("pub const ").count(),
        "every item parsed"
    );
    assert!(count >= 30, "{count} strings");
    assert_eq!(unquoted, Vec::<String>::new());
    // Negative controls: a string the document never quotes, and one whose case differs.
    let drifted = "pub const A: &str = \"Sesion not found\";\npub const B: &str =\n    \"Session Not Found\";\n";
    assert_eq!(
        unquoted_catalogue_strings(drifted, &protocol),
        (
            2,
            vec!["Sesion not found".into(), "Session Not Found".into()]
        )
    );
}

/// The public modules a crate root declares that its `//!` module map does not name.
fn unmapped_modules(lib_rs: &str) -> Vec<String> {
    let map: String = lib_rs
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    lib_rs
        .lines()
        .filter_map(|line| line.strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';').trim().to_owned())
        .filter(|module| !map.contains(&format!("[`{module}`]")))
        .collect()
}

#[test]
fn every_crate_root_module_map_names_every_public_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for lib in ["mock-server/src/lib.rs", "conformance/src/lib.rs"] {
        let text = std::fs::read_to_string(root.join(lib)).expect("readable");
        assert_eq!(unmapped_modules(&text), Vec::<String>::new(), "{lib}");
    }
    // Negative control: a module the map leaves out is named.
    let bogus = "//! - [`a`]: one.\npub mod a;\npub mod b;\n";
    assert_eq!(unmapped_modules(bogus), ["b"]);
}

/// Functions longer than this many lines must say why, next to them (ARCHITECTURE.md).
const LONG_FUNCTION: usize = 80;
/// Modules longer than this many lines of non-test code break the house rule.
const LONG_MODULE: usize = 650;
/// What a long function's comment says to explain itself.
const KEPT_LONG: &str = "Kept long:";

/// The non-test part of a Rust file: everything before its first `#[cfg(test)]` line.
fn non_test_code(source: &str) -> Vec<&str> {
    source
        .lines()
        .take_while(|line| line.trim() != "#[cfg(test)]")
        .collect()
}

/// `(name, first line, length)` of each function longer than [`LONG_FUNCTION`] lines whose
/// comments and attributes directly above do not hold [`KEPT_LONG`]. Relies on rustfmt's
/// layout: a body ends at the first line that is the signature's indentation and `}`.
fn unexplained_long_functions(source: &str) -> Vec<(String, usize, usize)> {
    let signature =
        regex::Regex::new(r"^(\s*)(?:pub(?:\([^)]*\))? )?(?:const )?(?:async )?fn (\w+)")
            .expect("valid");
    let lines = non_test_code(source);
    let mut long = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(found) = signature.captures(line) else {
            continue;
        };
        if line.trim_end().ends_with(';') {
            continue; // a declaration in a trait
        }
        let close = format!("{}}}", &found[1]);
        let Some(end) = lines[start..].iter().position(|l| *l == close) else {
            continue;
        };
        let length = end + 1;
        let explained = lines[..start]
            .iter()
            .rev()
            .take_while(|l| {
                let l = l.trim_start();
                l.starts_with("//") || l.starts_with("#[")
            })
            .any(|l| l.contains(KEPT_LONG));
        if length > LONG_FUNCTION && !explained {
            long.push((found[2].to_owned(), start + 1, length));
        }
    }
    long
}

#[test]
fn every_function_over_80_lines_says_why_and_no_module_is_over_the_limit() {
    let mut found = Vec::new();
    for path in tracked() {
        let relative = path.strip_prefix(repo()).expect("inside").to_path_buf();
        let name = relative.to_string_lossy().replace('\\', "/");
        let test_code = name.contains("/tests/") || name.ends_with("tests.rs");
        if !name.ends_with(".rs") || test_code || name.starts_with("tools/") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("readable");
        for (function, line, length) in unexplained_long_functions(&source) {
            found.push(format!(
                "{name}:{line}: fn {function} is {length} lines; split it or say why (`// {KEPT_LONG} …`)"
            ));
        }
        let code = non_test_code(&source).len();
        if code > LONG_MODULE {
            found.push(format!(
                "{name}: {code} lines of non-test code (house limit ~600)"
            ));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));

    // Negative controls: a long function without a reason, a long method inside an impl, and
    // one whose reason is there; a long test function is not counted.
    let body = "    let x = 1;\n".repeat(LONG_FUNCTION);
    let bare = format!("pub fn bare() {{\n{body}}}\n");
    let method = format!("impl A {{\n    async fn method(&self) {{\n    {body}    }}\n}}\n");
    let reasoned =
        format!("/// Does it.\n// {KEPT_LONG} a table.\n#[inline]\nfn kept() {{\n{body}}}\n");
    let in_tests = format!("#[cfg(test)]\nmod tests {{\nfn long_test() {{\n{body}}}\n}}\n");
    let short = "fn short() {\n    let x = 1;\n}\n";
    let source = format!("{bare}{method}{reasoned}{in_tests}{short}");
    let names: Vec<String> = unexplained_long_functions(&source)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    assert_eq!(names, ["bare", "method"]);
}
