//! `metadata`: `{"custom": {...}}`, sent by a client and echoed back (spec §4.1, §12 B7).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Client-chosen key/value pairs for correlating a sent event with its echo. Any JSON values
/// are accepted under `custom` and echoed verbatim (key order preserved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Metadata {
    pub custom: Map<String, Value>,
}

impl Metadata {
    pub fn custom_str(&self, key: &str) -> Option<&str> {
        self.custom.get(key).and_then(Value::as_str)
    }
}
