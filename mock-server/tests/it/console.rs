//! The web console's files, templates and the control-API answers it relies on. (The console
//! driven in a real browser is the `external` test binary's `console::in_a_browser`.)

use mock_server::Config;

use crate::support::{http, start};

/// The variant names of a schemars enum schema: `enum`/`const` values and single `required`
/// keys.
fn variants(schema: &serde_json::Value) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for option in schema["oneOf"]
        .as_array()
        .expect("an enum schema has oneOf")
    {
        let units = option["enum"].as_array().into_iter().flatten();
        for value in units.chain(option.get("const")) {
            names.insert(
                value
                    .as_str()
                    .expect("unit variants are strings")
                    .to_owned(),
            );
        }
        if let Some([key]) = option["required"].as_array().map(Vec::as_slice) {
            names.insert(key.as_str().expect("a key").to_owned());
        }
    }
    names
}

fn name_of(item: &serde_json::Value) -> String {
    match item {
        serde_json::Value::String(unit) => unit.clone(),
        serde_json::Value::Object(map) => map.keys().next().expect("one key").clone(),
        other => panic!("not a step: {other}"),
    }
}

/// The items of `templates[list]` (each under `key`) all parse as `T`, and together name every
/// variant `schema` lists; returns the names offered.
fn assert_templates_cover<T: serde::de::DeserializeOwned>(
    templates: &serde_json::Value,
    list: &str,
    key: &str,
    schema: &serde_json::Value,
) -> std::collections::BTreeSet<String> {
    let mut offered = std::collections::BTreeSet::new();
    for item in templates[list].as_array().expect("a template list") {
        let template = &item[key];
        serde_json::from_value::<T>(template.clone())
            .unwrap_or_else(|e| panic!("{key} template {template} does not parse: {e}"));
        offered.insert(name_of(template));
    }
    let all = variants(schema);
    assert!(all.len() > 15, "the schema lists the {list}: {all:?}");
    let missing: Vec<_> = all.difference(&offered).collect();
    assert!(
        missing.is_empty(),
        "{list} the console does not offer: {missing:?}"
    );
    offered
}

/// The console offers every step and every fault the control API takes, each as a body the
/// API accepts (a template the server refuses as malformed would be a broken button).
#[test]
fn the_console_templates_cover_every_step_and_fault_and_each_parses() {
    use mock_server::scenario::raw::{RawFault, RawStep};
    let (_, _, text) = mock_server::control::ui::FILES
        .iter()
        .find(|(name, _, _)| *name == "templates.json")
        .expect("templates.json is served");
    let templates: serde_json::Value = serde_json::from_str(text).expect("templates.json is JSON");
    let api = mock_server::control::openapi::document();
    let schemas = &api["components"]["schemas"];
    assert_templates_cover::<RawStep>(&templates, "steps", "step", &schemas["RawStep"]);
    assert_templates_cover::<RawFault>(&templates, "faults", "fault", &schemas["RawFault"]);

    // Negative controls: one fault left out is reported, and a typo'd step does not parse.
    let mut short = templates.clone();
    short["faults"].as_array_mut().expect("faults").remove(0);
    let missing = std::panic::catch_unwind(|| {
        assert_templates_cover::<RawFault>(&short, "faults", "fault", &schemas["RawFault"])
    });
    assert!(
        missing.is_err(),
        "a fault missing from the templates is reported"
    );
    let mut typo = templates.clone();
    typo["steps"][0]["step"] = serde_json::json!({"live_agent_mesage": {"text": "x"}});
    let broken = std::panic::catch_unwind(|| {
        assert_templates_cover::<RawStep>(&typo, "steps", "step", &schemas["RawStep"])
    });
    assert!(
        broken.is_err(),
        "a template that does not parse is reported"
    );
}

/// The console's files come with a CSP that allows only their own origin; with a control
/// token they load without it (code, not data) while the data still needs it.
#[tokio::test]
async fn the_console_files_are_served_with_a_strict_policy() {
    crate::support::bounded(async {
        let server = start(Config::default()).await;
        for (name, content_type, _) in mock_server::control::ui::FILES {
            let response = http(&server, "GET", &format!("/_mock/ui/{name}"), &[], "").await;
            assert_eq!(response.status, 200, "{name}");
            assert_eq!(response.headers["content-type"], *content_type, "{name}");
            let csp = response.headers["content-security-policy"]
                .to_str()
                .expect("ascii");
            assert!(
                csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
                "{csp}"
            );
        }
        let index = http(&server, "GET", "/_mock/ui/", &[], "").await;
        assert!(String::from_utf8_lossy(&index.body).contains("<title>messaging-mock console"));
        let bare = http(&server, "GET", "/_mock/ui", &[], "").await;
        assert_eq!(bare.status, 308);
        assert_eq!(bare.headers["location"], "/_mock/ui/");
        let missing = http(&server, "GET", "/_mock/ui/nope.js", &[], "").await;
        assert_eq!(missing.status, 404);
        // The same loopback rules as the API: another Host is refused.
        let foreign = http(
            &server,
            "GET",
            "/_mock/ui/",
            &[("host", "evil.example:80")],
            "",
        )
        .await;
        assert_eq!(foreign.status, 403);
        server.shutdown().await;

        let config = Config {
            control_token: Some("console-secret".into()),
            ..Config::default()
        };
        let server = start(config).await;
        let page = http(&server, "GET", "/_mock/ui/app.js", &[], "").await;
        assert_eq!(
            page.status, 200,
            "the console's code loads without the token"
        );
        let data = http(&server, "GET", "/_mock/sessions", &[], "").await;
        assert_eq!(data.status, 401, "the data does not");
        let with = http(
            &server,
            "GET",
            "/_mock/sessions",
            &[("authorization", "Bearer console-secret")],
            "",
        )
        .await;
        assert_eq!(with.status, 200);
        server.shutdown().await;
    })
    .await;
}

/// `?format=jsonl` downloads the journal in the recording format; an unknown format is a 400.
#[tokio::test]
async fn a_session_journal_downloads_as_a_recording() {
    crate::support::bounded(async {
        let server = start(Config::default()).await;
        let (_, session) = crate::support::new_session(&server, false).await;
        let path = format!("/_mock/sessions/{session}/journal?format=jsonl");
        let response = http(&server, "GET", &path, &[], "").await;
        assert_eq!(response.status, 200);
        assert_eq!(response.headers["content-type"], "application/x-ndjson");
        let disposition = response.headers["content-disposition"]
            .to_str()
            .expect("ascii");
        assert_eq!(
            disposition,
            format!("attachment; filename=\"{session}.jsonl\"")
        );
        let text = String::from_utf8(response.body).expect("utf-8");
        let lines: Vec<mock_server::journal::JournalEntry> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is a journal entry"))
            .collect();
        assert_eq!(
            lines.len(),
            server.journal(&session).expect("journal").len()
        );
        assert!(!lines.is_empty());
        let bad = http(
            &server,
            "GET",
            &format!("/_mock/sessions/{session}/journal?format=xml"),
            &[],
            "",
        )
        .await;
        assert_eq!(bad.status, 400);
        assert!(String::from_utf8_lossy(&bad.body).contains("unknown journal format"));
        server.shutdown().await;
    })
    .await;
}

/// `GET /_mock/sessions?limit=N` gives the newest N, oldest first, for the console's list.
#[tokio::test]
async fn the_session_list_can_be_limited_to_the_newest() {
    crate::support::bounded(async {
        let server = start(Config::default()).await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(crate::support::new_session(&server, false).await.1);
            // The list is ordered by creation millisecond: keep the three apart.
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        let listed = |path: &'static str| {
            let server = &server;
            async move {
                let body = http(server, "GET", path, &[], "").await.json();
                body.as_array()
                    .expect("a list")
                    .iter()
                    .map(|s| s["session_id"].as_str().expect("id").to_owned())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(listed("/_mock/sessions").await, ids);
        assert_eq!(listed("/_mock/sessions?limit=2").await, ids[1..]);
        assert_eq!(
            listed("/_mock/sessions?limit=0").await,
            Vec::<String>::new()
        );
        assert_eq!(listed("/_mock/sessions?limit=9").await, ids);
        let bad = http(&server, "GET", "/_mock/sessions?limit=-1", &[], "").await;
        assert_eq!(bad.status, 400);
        server.shutdown().await;
    })
    .await;
}
