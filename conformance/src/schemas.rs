//! The JSON Schemas of the kit's own formats, committed under `schemas/conformance/` and kept
//! fresh by a test: the case file (`fixtures/conformance/*.json`) and the driver contract's
//! view (§4), so an editor checks a case and a driver author can validate a view.

use schemars::generate::SchemaSettings;
use serde_json::Value;

/// One generated file: its name under `schemas/conformance/` and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFile {
    pub name: &'static str,
    pub contents: String,
}

/// A whole-string `{parameter}` stands for a number, a boolean or an enum value in a case file.
const PARAMETER: &str = "^\\{[a-z0-9_]+\\}$";

/// Every number, boolean or enumerated string in `schema` also admits a `{parameter}`.
fn admit_parameters(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let numeric = |t: &Value| matches!(t.as_str(), Some("integer" | "number" | "boolean"));
            let scalar = map.contains_key("enum")
                || match map.get("type") {
                    Some(Value::Array(types)) => types.iter().any(numeric),
                    Some(t) => numeric(t),
                    None => false,
                };
            for value in map.values_mut() {
                admit_parameters(value);
            }
            if scalar {
                let original = Value::Object(std::mem::take(map));
                map.insert(
                    "anyOf".into(),
                    serde_json::json!([original, { "type": "string", "pattern": PARAMETER }]),
                );
            }
        }
        Value::Array(items) => items.iter_mut().for_each(admit_parameters),
        _ => {}
    }
}

fn schema_of<T: schemars::JsonSchema>(id: &str, title: &str, description: &str) -> String {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.root_schema_for::<T>().to_value();
    if id.starts_with("conformance-case") {
        admit_parameters(&mut schema);
    }
    if let Value::Object(map) = &mut schema {
        map.insert(
            "$id".into(),
            format!("https://messaging-mock.example/schemas/conformance/{id}").into(),
        );
        map.insert("title".into(), title.into());
        map.insert("description".into(), description.into());
    }
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Every file of `schemas/conformance/`.
/// Where the driver helpers keep their packaged copy of the view schema (repository paths),
/// which `generate-schemas` writes with the rest.
pub const HELPER_VIEW_SCHEMA_COPIES: [&str; 2] = [
    "drivers/js/driver-view.schema.json",
    "drivers/python/driver-view.schema.json",
];

pub fn generate() -> Vec<SchemaFile> {
    vec![
        SchemaFile {
            name: "conformance-case.schema.json",
            contents: schema_of::<crate::cases::CaseFile>(
                "conformance-case.schema.json",
                "conformance case",
                "A case of the conformance kit (fixtures/conformance/<id>.json): the scenario the mock plays, what the user does, what the app must show, and the obligations graded. Strings may hold {parameter}s drawn from the run's seed. See conformance/README.md.",
            ),
        },
        SchemaFile {
            name: "driver-view.schema.json",
            contents: schema_of::<crate::contract::View>(
                "driver-view.schema.json",
                "driver view",
                "What the app shows right now: the `view` a conformance driver answers with (driver contract §4). Fields the SDK cannot observe are left out.",
            ),
        },
    ]
}
