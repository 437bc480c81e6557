//! Scenarios: agent behaviour, streaming, handoffs, errors and faults as data files
//! (`fixtures/scenarios/<area>/<name>.json`).
//!
//! Loading has two stages: [`raw`] is the file as written (serde; the JSON Schema comes from
//! it), [`validate`] turns it into a [`Script`] or a [`ScenarioError`] naming the file, the JSON
//! pointer and the problem. The engine only ever sees validated scripts.
//!
//! - [`script`]: the validated vocabulary ([`Step`], [`Fault`], triggers, rules).
//! - [`Catalogue`]: every scenario a server can select, by name.

pub mod raw;
pub mod recording;
pub mod script;
pub mod validate;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub use script::{Audience, Fault, Memory, Persona, Reply, Script, Step};

/// A scenario file that cannot be used: which file, where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: at {pointer}: {problem}")]
pub struct ScenarioError {
    pub file: String,
    /// JSON pointer into the file (`/rules/2/steps/0`); empty for the whole document.
    pub pointer: String,
    pub problem: String,
}

/// The scenario every session gets unless configured otherwise.
pub const DEFAULT_SCENARIO: &str = "playground";

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_scenarios.rs"));
}

/// Every fixture compiled into the binary: `(area/name, contents)`.
pub fn embedded() -> &'static [(&'static str, &'static str)] {
    embedded::EMBEDDED
}

/// Parses and validates one scenario text.
pub fn parse(name: &str, file: &str, text: &str) -> Result<Script, ScenarioError> {
    let raw = parse_raw(file, text)?;
    validate::validate(name, file, &raw)
}

/// Stage one only: the file as written.
pub fn parse_raw(file: &str, text: &str) -> Result<raw::ScenarioFile, ScenarioError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let pointer = json_pointer(&error.path().to_string());
        let inner = error.into_inner();
        ScenarioError {
            file: file.to_owned(),
            pointer,
            problem: format!("{inner}"),
        }
    })
}

/// `rules[2].steps[0].reply` → `/rules/2/steps/0/reply`.
fn json_pointer(path: &str) -> String {
    if path == "." || path == "?" {
        return String::new();
    }
    let mut out = String::new();
    for segment in path.split('.').filter(|s| *s != "?") {
        let mut rest = segment;
        if let Some(open) = rest.find('[') {
            out.push('/');
            out.push_str(&rest[..open].replace('~', "~0").replace('/', "~1"));
            rest = &rest[open..];
            while let Some(close) = rest.find(']') {
                out.push('/');
                out.push_str(&rest[1..close]);
                rest = &rest[close + 1..];
            }
        } else if !rest.is_empty() {
            out.push('/');
            out.push_str(&rest.replace('~', "~0").replace('/', "~1"));
        }
    }
    out
}

/// The largest scenario file read: a long recording fits; `/dev/zero` does not.
pub const MAX_SCENARIO_BYTES: u64 = 4 * 1024 * 1024;

/// The one answer for a path that is not a readable scenario file, whatever the reason (missing,
/// a directory, a device, too large, no permission): the control API must not tell which.
pub const UNREADABLE: &str = "not a readable scenario file (a regular file of at most 4 MiB)";

/// Reads `path` only when it is a regular file of at most [`MAX_SCENARIO_BYTES`].
pub fn read_scenario_file(path: &Path) -> Result<String, ScenarioError> {
    use std::io::Read as _;
    let unreadable = || ScenarioError {
        file: path.display().to_string(),
        pointer: String::new(),
        problem: UNREADABLE.into(),
    };
    let file = std::fs::File::open(path).map_err(|_| unreadable())?;
    let metadata = file.metadata().map_err(|_| unreadable())?;
    if !metadata.is_file() || metadata.len() > MAX_SCENARIO_BYTES {
        return Err(unreadable());
    }
    let mut text = String::new();
    file.take(MAX_SCENARIO_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|_| unreadable())?;
    if text.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(unreadable());
    }
    Ok(text)
}

/// Reads and validates a scenario file; its name is the file stem. A `.jsonl` file is a
/// recording (`--record`), replayed as a scenario.
pub fn load_file(path: &Path) -> Result<Script, ScenarioError> {
    let shown = path.display().to_string();
    let text = read_scenario_file(path)?;
    let name = path
        .file_stem()
        .map_or_else(|| shown.clone(), |s| s.to_string_lossy().into_owned());
    if path.extension().is_some_and(|e| e == "jsonl") {
        let raw = recording_scenario(&shown, &text)?;
        return validate::validate(&name, &shown, &raw);
    }
    parse(&name, &shown, &text)
}

/// The scenario a recording's text describes.
pub fn recording_scenario(file: &str, text: &str) -> Result<raw::ScenarioFile, ScenarioError> {
    let entries = crate::journal::read_recording(text).map_err(|problem| ScenarioError {
        file: file.to_owned(),
        pointer: String::new(),
        problem,
    })?;
    Ok(recording::from_recording(&entries, file))
}

/// The scenarios a server can select, validated up front: the embedded fixtures and any
/// extra files. Names are `area/name` and, when unambiguous, just `name`.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    by_name: BTreeMap<String, Arc<Script>>,
}

impl Catalogue {
    /// The embedded fixtures, parsed and validated once per process (about 4 ms; every
    /// server start and every `MockServer` in a test process shares the result).
    pub fn embedded() -> Result<Self, ScenarioError> {
        static PARSED: std::sync::OnceLock<Result<Catalogue, ScenarioError>> =
            std::sync::OnceLock::new();
        PARSED.get_or_init(Self::parse_embedded).clone()
    }

    fn parse_embedded() -> Result<Self, ScenarioError> {
        let mut catalogue = Self::default();
        let mut short: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, text) in embedded() {
            let stem = name.rsplit('/').next().unwrap_or(name);
            let file = format!("fixtures/scenarios/{name}.json");
            let script = Arc::new(parse(stem, &file, text)?);
            catalogue
                .by_name
                .insert((*name).to_owned(), Arc::clone(&script));
            short
                .entry(stem.to_owned())
                .or_default()
                .push((*name).to_owned());
        }
        for (stem, full) in short {
            if let [only] = full.as_slice()
                && let Some(script) = catalogue.by_name.get(only).cloned()
            {
                catalogue.by_name.entry(stem).or_insert(script);
            }
        }
        Ok(catalogue)
    }

    /// Adds a scenario under `name` (replacing one of the same name).
    pub fn insert(&mut self, name: impl Into<String>, script: Script) -> Arc<Script> {
        let script = Arc::new(script);
        self.by_name.insert(name.into(), Arc::clone(&script));
        script
    }

    pub fn get(&self, name: &str) -> Option<Arc<Script>> {
        self.by_name.get(name).cloned()
    }

    /// A name from the catalogue, or a path to a file (anything with `/` or ending in
    /// `.json` that is not a catalogue name).
    pub fn resolve(&mut self, name_or_path: &str) -> Result<Arc<Script>, ScenarioError> {
        if let Some(script) = self.get(name_or_path) {
            return Ok(script);
        }
        let path = Path::new(name_or_path);
        if name_or_path.ends_with(".json") || name_or_path.ends_with(".jsonl") || path.exists() {
            let script = load_file(path)?;
            return Ok(self.insert(name_or_path, script));
        }
        Err(ScenarioError {
            file: name_or_path.to_owned(),
            pointer: String::new(),
            problem: format!(
                "no such scenario; known: {}",
                self.names().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// Whether `name_or_path` would be read from a file (it is not a catalogue name).
    pub fn is_file_reference(&self, name_or_path: &str) -> bool {
        self.get(name_or_path).is_none()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_paths_become_json_pointers() {
        assert_eq!(
            json_pointer("rules[2].steps[0].reply"),
            "/rules/2/steps/0/reply"
        );
        assert_eq!(json_pointer("description"), "/description");
        assert_eq!(json_pointer("."), "");
        assert_eq!(json_pointer("fallback.agent[1]"), "/fallback/agent/1");
    }
}
