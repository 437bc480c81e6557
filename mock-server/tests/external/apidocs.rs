//! The ecosystem's validators (the AsyncAPI parser with its Spectral ruleset and Ajv, Redocly's
//! linter; `tools/validate-apis.mjs`) accept the committed API documents and reject broken
//! ones, each broken in its own way.

use std::path::PathBuf;
use std::process::Command;

use mock_server::apidocs::{asyncapi, openapi};
use serde_json::{Value, json};

use crate::browser::repo;

/// `node` and the validators installed by `npm ci --prefix tools`.
pub fn prerequisites() -> Result<(), String> {
    crate::trials::node()?;
    let installed = repo().join("tools/node_modules/@asyncapi/parser").is_dir()
        && repo()
            .join("tools/node_modules/@redocly/openapi-core")
            .is_dir();
    if installed {
        Ok(())
    } else {
        Err("the API validators are not installed (run `npm ci --prefix tools`)".into())
    }
}

/// `node tools/validate-apis.mjs ARGS`: whether it accepted them, and what it said.
fn validate(args: &[PathBuf]) -> (bool, String) {
    let output = Command::new("node")
        .arg(repo().join("tools/validate-apis.mjs"))
        .args(args)
        .output()
        .expect("node runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

pub fn the_ecosystem_validators_accept_the_committed_documents_and_reject_broken_ones() {
    let schemas = repo().join("schemas");
    let committed = [
        schemas.join("asyncapi.json"),
        schemas.join("openapi.json"),
        schemas.join("control-openapi.json"),
    ];
    let (ok, output) = validate(&committed);
    assert!(ok, "{output}");
    assert!(
        output.contains("AsyncAPI 3.0.0") && output.contains("OpenAPI 3.1.0"),
        "{output}"
    );

    // Negative controls, each broken in its own way.
    let dir = repo().join(format!("target/apidocs-controls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let write = |name: &str, value: &Value| {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string(value).expect("json")).expect("write");
        path
    };
    let good_rest = schemas.join("openapi.json");

    let mut bad_example = asyncapi();
    bad_example["components"]["messages"]["ClientUserMessage"]["examples"][0]["payload"]["payload"]
        ["text"] = json!(5);
    let bad_example = write("bad-example.json", &bad_example);
    let (ok, output) = validate(&[bad_example, good_rest.clone()]);
    assert!(
        !ok && output.contains("bad-example.json: error"),
        "an example off its schema:\n{output}"
    );

    let mut dangling = asyncapi();
    dangling["operations"]["sendClientEvents"]["channel"] = json!({ "$ref": "#/channels/nowhere" });
    let dangling = write("dangling.json", &dangling);
    let (ok, output) = validate(&[dangling, good_rest]);
    assert!(
        !ok && output.contains("dangling.json: error"),
        "a dangling channel:\n{output}"
    );

    let mut rest = openapi();
    rest["paths"]["/api/v1/sessions"]["post"]["responses"]["200"]["content"]["application/json"]
        ["schema"] = json!({ "$ref": "#/components/schemas/Nowhere" });
    let rest = write("bad-rest.json", &rest);
    let (ok, output) = validate(&[schemas.join("asyncapi.json"), rest]);
    assert!(
        !ok && output.contains("bad-rest.json: error"),
        "a missing schema:\n{output}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
