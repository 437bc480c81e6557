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
        let pointer = json_pointer(error.path());
        let inner = error.into_inner();
        ScenarioError {
            file: file.to_owned(),
            pointer,
            problem: format!("{inner}"),
        }
    })
}

/// Where a deserialization error happened, as a JSON pointer (RFC 6901): `rules[2].steps[0]`
/// becomes `/rules/2/steps/0`, and a key holding `/` or `~` is escaped (`~1`, `~0`). Read from
/// the path's segments, not its text, where a key holding `.` or `[` would be ambiguous. The one
/// converter for scenario files, control-API bodies and the kit's case files.
pub fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        let key = match segment {
            Segment::Seq { index } => index.to_string(),
            Segment::Map { key } => key.replace('~', "~0").replace('/', "~1"),
            Segment::Enum { variant } => variant.replace('~', "~0").replace('/', "~1"),
            Segment::Unknown => continue,
        };
        out.push('/');
        out.push_str(&key);
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
    let file = open_regular(path)?;
    read_opened(path, file)
}

fn unreadable(path: &Path) -> ScenarioError {
    ScenarioError {
        file: path.display().to_string(),
        pointer: String::new(),
        problem: UNREADABLE.into(),
    }
}

/// Opens `path` if it is a regular file of at most [`MAX_SCENARIO_BYTES`]. The open itself
/// never waits: a FIFO or a device is opened non-blocking, then refused by its type.
fn open_regular(path: &Path) -> Result<std::fs::File, ScenarioError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|_| unreadable(path))?;
    let metadata = file.metadata().map_err(|_| unreadable(path))?;
    if !metadata.is_file() || metadata.len() > MAX_SCENARIO_BYTES {
        return Err(unreadable(path));
    }
    Ok(file)
}

fn read_opened(path: &Path, file: std::fs::File) -> Result<String, ScenarioError> {
    use std::io::Read as _;
    let mut text = String::new();
    file.take(MAX_SCENARIO_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|_| unreadable(path))?;
    if text.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(unreadable(path));
    }
    Ok(text)
}

/// A scenario file loaded on a caller's request: its canonical path (one entry however the
/// path was spelt), the script, and the file's size.
#[derive(Debug)]
pub struct LoadedFile {
    pub key: String,
    pub script: Script,
    pub bytes: u64,
}

/// Loads a scenario file for a caller that may not own it: inside `dirs` when any are given,
/// judged by the file actually opened (not by a path that could change in between), never
/// blocking on a FIFO, and with errors that carry no value of the file
/// ([`ScenarioError::redacted`]).
pub fn load_file_within(
    path: &Path,
    dirs: &[std::path::PathBuf],
) -> Result<LoadedFile, ScenarioError> {
    let file = open_regular(path)?;
    let real = path.canonicalize().map_err(|_| unreadable(path))?;
    if !dirs.is_empty() {
        let inside = dirs
            .iter()
            .filter_map(|d| d.canonicalize().ok())
            .any(|d| real.starts_with(d));
        if !inside {
            return Err(unreadable(path));
        }
    }
    // `real` has no symbolic link left in it; the file opened must be the one it names now.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let opened = file.metadata().map_err(|_| unreadable(path))?;
        let named = std::fs::metadata(&real).map_err(|_| unreadable(path))?;
        if (opened.dev(), opened.ino()) != (named.dev(), named.ino()) {
            return Err(unreadable(path));
        }
    }
    let text = read_opened(path, file)?;
    let key = real.display().to_string();
    let name = real
        .file_stem()
        .map_or_else(|| key.clone(), |s| s.to_string_lossy().into_owned());
    let shown = path.display().to_string();
    let script = if real.extension().is_some_and(|e| e == "jsonl") {
        recording_scenario(&shown, &text).and_then(|raw| validate::validate(&name, &shown, &raw))
    } else {
        parse(&name, &shown, &text)
    }
    .map_err(|e| e.redacted())?;
    Ok(LoadedFile {
        key,
        script,
        bytes: text.len() as u64,
    })
}

impl ScenarioError {
    /// The error without anything taken from the file: the problem up to its first quoted
    /// or reported value, and the pointer with every segment that is neither an index nor a
    /// field of the scenario format replaced by `…`. Control-API callers get this form: a
    /// loopback caller must not learn fragments of a file it names (`check-scenario` on the
    /// command line shows everything).
    pub fn redacted(&self) -> Self {
        let fields = scenario_field_names();
        let pointer = self
            .pointer
            .split('/')
            .skip(1)
            .map(|segment| {
                if segment.parse::<u64>().is_ok() || fields.contains(segment) {
                    segment
                } else {
                    "…"
                }
            })
            .fold(String::new(), |out, segment| out + "/" + segment);
        let cut = ["`", "\"", "got ", ": ", "{"]
            .iter()
            .filter_map(|marker| self.problem.find(marker))
            .min()
            .unwrap_or(self.problem.len());
        let kept = self.problem[..cut].trim_end_matches([' ', ',', ':', '(']);
        let kept = if kept.is_empty() || kept.starts_with(|c: char| c.is_ascii_digit()) {
            "not a valid scenario here"
        } else {
            kept
        };
        Self {
            file: self.file.clone(),
            pointer,
            problem: format!(
                "{kept} (the file's values are not echoed here; `messaging-mock check-scenario FILE` shows them)"
            ),
        }
    }
}

/// Every property name the scenario format defines (from its JSON Schema).
fn scenario_field_names() -> &'static std::collections::BTreeSet<String> {
    static NAMES: std::sync::OnceLock<std::collections::BTreeSet<String>> =
        std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        fn walk(value: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, inner) in map {
                        if key == "properties"
                            && let serde_json::Value::Object(properties) = inner
                        {
                            out.extend(properties.keys().cloned());
                        }
                        walk(inner, out);
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
                _ => {}
            }
        }
        let schema = schemars::SchemaGenerator::default()
            .into_root_schema_for::<raw::ScenarioFile>()
            .to_value();
        let mut names = std::collections::BTreeSet::new();
        walk(&schema, &mut names);
        names
    })
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
    /// Files loaded through the control API, by canonical path, with their sizes: bounded
    /// by [`MAX_LOADED_FILES`] and [`MAX_LOADED_BYTES`], and forgotten on reset.
    loaded: BTreeMap<String, u64>,
}

/// At most this many scenario files loaded through the control API at once.
pub const MAX_LOADED_FILES: usize = 64;
/// At most this many bytes of them.
pub const MAX_LOADED_BYTES: u64 = 32 * 1024 * 1024;

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

    /// Adds a file loaded on a caller's request (replacing an earlier load of the same
    /// file), or says which bound it would break.
    pub fn insert_loaded(&mut self, file: LoadedFile) -> Result<(), String> {
        let others = self.loaded.iter().filter(|(key, _)| **key != file.key);
        let (count, bytes) = others.fold((0, 0), |(n, b), (_, size)| (n + 1, b + size));
        if count >= MAX_LOADED_FILES || bytes + file.bytes > MAX_LOADED_BYTES {
            return Err(format!(
                "{count} scenario files ({bytes} bytes) are loaded already; at most {MAX_LOADED_FILES} files and {MAX_LOADED_BYTES} bytes are held (`POST /_mock/reset` forgets them)"
            ));
        }
        self.loaded.insert(file.key.clone(), file.bytes);
        self.insert(file.key, file.script);
        Ok(())
    }

    /// Forgets every file loaded through [`Catalogue::insert_loaded`].
    pub fn forget_loaded(&mut self) {
        for key in std::mem::take(&mut self.loaded).into_keys() {
            self.by_name.remove(&key);
        }
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
    fn loaded_files_are_bounded_in_bytes_and_a_reload_replaces_its_copy() {
        let file = |key: &str, bytes: u64| LoadedFile {
            key: key.into(),
            script: parse("t", "t.json", r#"{"description": "t"}"#).expect("valid"),
            bytes,
        };
        let half = MAX_LOADED_BYTES / 2 + 1;
        let mut catalogue = Catalogue::default();
        catalogue
            .insert_loaded(file("/a.json", half))
            .expect("fits");
        catalogue
            .insert_loaded(file("/a.json", half))
            .expect("replaces itself");
        let refused = catalogue
            .insert_loaded(file("/b.json", half))
            .expect_err("over");
        assert!(refused.contains("bytes"), "{refused}");
        catalogue
            .insert_loaded(file("/b.json", half - 2))
            .expect("just fits");
        catalogue.forget_loaded();
        assert_eq!(catalogue.names().count(), 0);
    }

    #[test]
    fn a_redacted_error_keeps_the_kind_of_problem_and_the_format_s_own_names() {
        let error = |pointer: &str, problem: &str| {
            ScenarioError {
                file: "f.json".into(),
                pointer: pointer.into(),
                problem: problem.into(),
            }
            .redacted()
        };
        let typed = error(
            "/persona",
            "invalid type: string \"CANARY\", expected struct RawPersona",
        );
        assert_eq!(typed.pointer, "/persona");
        assert!(
            typed.problem.starts_with("invalid type (the file's values"),
            "{}",
            typed.problem
        );
        let keyed = error(
            "/exercise/notes/CANARY",
            "invalid type: integer `5`, expected a string",
        );
        assert_eq!(keyed.pointer, "/exercise/notes/…");
        let ranged = error("/rules/3/probability", "must be within 0..1, got 7");
        assert_eq!(ranged.pointer, "/rules/3/probability");
        assert!(
            ranged.problem.starts_with("must be within 0..1 ("),
            "{}",
            ranged.problem
        );
        let leading = error(
            "/rules/0/steps/0/fault/unknown_event_type",
            "`CANARY` must be undocumented",
        );
        assert!(!leading.problem.contains("CANARY"), "{}", leading.problem);
        assert!(leading.problem.starts_with("not a valid scenario here"));
    }

    #[test]
    fn serde_paths_become_json_pointers() {
        fn pointer_of<T: serde::de::DeserializeOwned>(json: &str) -> String {
            let mut deserializer = serde_json::Deserializer::from_str(json);
            let error = serde_path_to_error::deserialize::<_, T>(&mut deserializer)
                .err()
                .expect("a bad document");
            json_pointer(error.path())
        }
        let file = r#"{"description": "s", "rules": [{"when": "join", "steps": [{"reply": 5}]}]}"#;
        assert_eq!(
            pointer_of::<raw::ScenarioFile>(file),
            "/rules/0/steps/0/reply"
        );
        assert_eq!(pointer_of::<raw::ScenarioFile>("[]"), "");
        // A key holding `/`, `~`, `.` and `[` stays one segment, escaped as RFC 6901 says.
        type Keyed = std::collections::BTreeMap<String, Vec<u32>>;
        assert_eq!(
            pointer_of::<Keyed>(r#"{"a/b~c.d[0]": [1, "x"]}"#),
            "/a~1b~0c.d[0]/1"
        );
    }
}
