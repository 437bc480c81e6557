//! Which scenario a new session runs: the validated catalogue, the configured default, and the
//! control API's choices (the next session's, and one per connector token).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::lock;
use crate::scenario::{Catalogue, Script};

#[derive(Debug)]
pub(super) struct Scenarios {
    /// Every scenario sessions may run, validated before use.
    catalogue: Mutex<Catalogue>,
    /// `config.scenario`, and its script.
    default: (String, Arc<Script>),
    /// The scenario of the next session created (control API), used once.
    next: Mutex<Option<String>>,
    /// Scenario per connector token, set through the control API.
    per_connector: Mutex<HashMap<String, String>>,
}

impl Scenarios {
    pub(super) fn new(catalogue: Catalogue, default: (String, Arc<Script>)) -> Self {
        Self {
            catalogue: Mutex::new(catalogue),
            default,
            next: Mutex::new(None),
            per_connector: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn catalogue(&self) -> MutexGuard<'_, Catalogue> {
        lock(&self.catalogue)
    }

    pub(super) fn get(&self, name: &str) -> Option<Arc<Script>> {
        self.catalogue().get(name)
    }

    pub(super) fn names(&self) -> Vec<String> {
        self.catalogue().names().map(str::to_owned).collect()
    }

    pub(super) fn set_next(&self, key: String) {
        *lock(&self.next) = Some(key);
    }

    pub(super) fn set_for_connector(&self, token: &str, key: String) {
        lock(&self.per_connector).insert(token.to_owned(), key);
    }

    pub(super) fn for_connector(&self, token: &str) -> Option<String> {
        lock(&self.per_connector).get(token).cloned()
    }

    /// The scenario of a session being created: the control API's next choice (used up now),
    /// else the one its token carries, else the default; a name no longer in the catalogue
    /// falls back to the default.
    pub(super) fn for_new_session(&self, claimed: Option<&str>) -> (String, Arc<Script>) {
        let next = lock(&self.next).take();
        next.or_else(|| claimed.map(str::to_owned))
            .and_then(|name| self.get(&name).map(|script| (name, script)))
            .unwrap_or_else(|| (self.default.0.clone(), Arc::clone(&self.default.1)))
    }

    /// Forgets every control-API choice and every file loaded through it.
    pub(super) fn clear(&self) {
        *lock(&self.next) = None;
        lock(&self.per_connector).clear();
        self.catalogue().forget_loaded();
    }
}
