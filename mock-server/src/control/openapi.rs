//! The OpenAPI description of the control API, built from the same types the handlers use.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::{Accepted, ClockChange, ControlErrorBody, EndRequest, Health, ScenarioChoice};
use crate::http_log::HttpFailures;
use crate::journal::JournalEntry;
use crate::scenario::raw::{RawFault, RawStep};
use crate::state::SessionSummary;

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn error(description: &str) -> Value {
    ok(
        description,
        json!({ "$ref": "#/components/schemas/ControlErrorBody" }),
    )
}

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn one_or_many(name: &str) -> Value {
    json!({ "oneOf": [r(name), { "type": "array", "items": r(name) }] })
}

fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

/// The schemas of the control API's bodies, for `components/schemas`.
fn components() -> Map<String, Value> {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let mut components = Map::new();
    macro_rules! component {
        ($($t:ty => $name:literal),* $(,)?) => {$(
            let schema = generator.subschema_for::<$t>();
            if !schema.as_value().get("$ref").is_some() {
                components.insert($name.into(), schema.to_value());
            }
        )*};
    }
    component!(
        SessionSummary => "SessionSummary",
        JournalEntry => "JournalEntry",
        RawStep => "RawStep",
        RawFault => "RawFault",
        ControlErrorBody => "ControlErrorBody",
        Accepted => "Accepted",
        Health => "Health",
        ScenarioChoice => "ScenarioChoice",
        ClockChange => "ClockChange",
        EndRequest => "EndRequest",
        HttpFailures => "HttpFailures",
        crate::http_log::HttpCall => "HttpCall",
    );
    for (name, schema) in generator.take_definitions(true) {
        components.insert(name, schema);
    }
    components
}

/// The document served at `/_mock/openapi.json` and committed as `schemas/control-openapi.json`.
pub fn document() -> Value {
    let components = components();
    let id =
        json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } });
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "messaging-mock control API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "See and steer a running mock. Loopback peers only unless `control_token` is configured (then `Authorization: Bearer <token>`). Errors: 404 unknown session, 400 malformed body (with the JSON pointer), 409 a step that does not fit the session's state (nothing changed).",
            "license": { "name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0" }
        },
        "servers": [ { "url": "http://127.0.0.1:8080", "description": "messaging-mock's default address (or --control-bind)" } ],
        // Anonymous from loopback, or the bearer token when `control_token` is configured.
        "security": [ {}, { "controlToken": [] } ],
        "paths": {
            "/_mock/health": { "get": { "summary": "Liveness, session count, mock clock", "responses": { "200": ok("Health", r("Health")) } } },
            "/_mock/sessions": { "get": { "summary": "Every session, oldest first; `?limit=N`: only the newest N",
                "parameters": [{ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 0 } }], "responses": { "200": ok("Sessions", json!({ "type": "array", "items": r("SessionSummary") })) } } },
            "/_mock/sessions/{id}": { "get": { "summary": "One session", "parameters": [id], "responses": { "200": ok("Session", r("SessionSummary")), "404": error("Unknown session") } } },
            "/_mock/sessions/{id}/journal": { "get": {
                "summary": "The session's journal; `?follow=true` streams JSON Lines as it grows; `?format=jsonl` downloads it as a recording (the `--record` format)",
                "parameters": [id, { "name": "follow", "in": "query", "schema": { "type": "boolean" } },
                    { "name": "format", "in": "query", "schema": { "type": "string", "enum": ["json", "jsonl"] } }],
                "responses": { "200": {
                    "description": "Journal entries: a JSON array, or JSON Lines with `follow` or `format=jsonl`",
                    "content": {
                        "application/json": { "schema": { "type": "array", "items": r("JournalEntry") } },
                        "application/x-ndjson": { "schema": r("JournalEntry") } } },
                    "400": error("Unknown format"), "404": error("Unknown session") } } },
            "/_mock/sessions/{id}/steps": { "post": {
                "summary": "Play scenario steps now (one or an array)", "parameters": [id], "requestBody": body(one_or_many("RawStep")),
                "responses": { "200": ok("Accepted", r("Accepted")), "400": error("Malformed step"), "404": error("Unknown session"), "409": error("Does not fit the session's state") } } },
            "/_mock/sessions/{id}/faults": { "post": {
                "summary": "Apply faults now (one or an array)", "parameters": [id], "requestBody": body(one_or_many("RawFault")),
                "responses": { "200": ok("Accepted", r("Accepted")), "400": error("Malformed fault"), "404": error("Unknown session"), "409": error("The session has ended") } } },
            "/_mock/sessions/{id}/end": { "post": {
                "summary": "End the session (SESSION_END, close 1000)", "parameters": [id], "requestBody": body(r("EndRequest")),
                "responses": { "200": ok("Accepted", r("Accepted")), "404": error("Unknown session"), "409": error("Already ended") } } },
            "/_mock/next-scenario": { "put": { "summary": "Scenario of the next session created", "requestBody": body(r("ScenarioChoice")),
                "responses": { "200": ok("Chosen", r("ScenarioChoice")), "400": error("Unknown or invalid scenario") } } },
            "/_mock/connectors/{token}/scenario": { "put": { "summary": "Scenario of later tokens of this connector",
                "parameters": [{ "name": "token", "in": "path", "required": true, "schema": { "type": "string" } }], "requestBody": body(r("ScenarioChoice")),
                "responses": { "200": ok("Chosen", r("ScenarioChoice")), "400": error("Unknown connector or scenario") } } },
            "/_mock/scenarios": { "get": { "summary": "Scenario names", "responses": { "200": ok("Names", json!({ "type": "array", "items": { "type": "string" } })) } } },
            "/_mock/requests": { "get": {
                "summary": "Every REST call and /ws handshake the server answered, refused ones too (before any session exists), oldest first (the newest 10 000); filtered; `count=true` answers only how many",
                "parameters": [
                    { "name": "endpoint", "in": "query", "schema": { "type": "string", "enum": ["access-token", "sessions", "ws"] } },
                    { "name": "status", "in": "query", "schema": { "type": "integer", "minimum": 100, "maximum": 599 } },
                    { "name": "session_id", "in": "query", "schema": { "type": "string" } },
                    { "name": "since_ms", "in": "query", "description": "Mock-clock ms: calls at or after", "schema": { "type": "integer", "minimum": 0 } },
                    { "name": "until_ms", "in": "query", "description": "Mock-clock ms: calls before", "schema": { "type": "integer", "minimum": 0 } },
                    { "name": "count", "in": "query", "schema": { "type": "boolean" } }],
                "responses": {
                    "200": { "description": "The calls, or their count", "content": { "application/json": { "schema": { "oneOf": [
                        { "type": "array", "items": r("HttpCall") },
                        { "type": "object", "properties": { "count": { "type": "integer", "minimum": 0 } }, "required": ["count"], "additionalProperties": false }
                    ] } } } },
                    "400": error("An unknown endpoint or a malformed filter") } } },
            "/_mock/clock": { "post": { "summary": "Advance or scale the mock clock", "requestBody": body(r("ClockChange")),
                "responses": { "200": ok("Health", r("Health")), "400": error("Neither or an invalid value") } } },
            "/_mock/http-failures": { "post": { "summary": "The next REST calls answer 429 with Retry-After (first) or their documented 500 (counts add up)", "requestBody": body(r("HttpFailures")),
                "responses": { "200": ok("Now armed", r("HttpFailures")), "400": error("Malformed body") } } },
            "/_mock/reset": { "post": { "summary": "Drop every session (sockets closed with 1001) and every control choice", "responses": { "200": ok("Health", r("Health")) } } },
            "/_mock/ui/{file}": { "get": { "summary": "The web console: `/_mock/ui/` is index.html; its files load without the control token, its data does not",
                "parameters": [{ "name": "file", "in": "path", "required": true, "schema": { "type": "string", "enum": super::ui::FILES.iter().map(|(name, _, _)| *name).collect::<Vec<_>>() } }],
                "responses": { "200": { "description": "A console file", "content": { "text/html": {}, "text/javascript": {}, "text/css": {}, "application/json": {} } }, "404": error("No such console file") } } },
            "/_mock/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3" } } } }
        },
        "components": {
            "schemas": components,
            "securitySchemes": { "controlToken": { "type": "http", "scheme": "bearer", "description": "The `control_token` of the configuration, when one is set." } }
        }
    });
    name_operations_and_add_refusals(&mut doc);
    doc
}

/// Every operation: an operationId from its method and path, and the guard's refusals.
fn name_operations_and_add_refusals(doc: &mut Value) {
    if let Some(Value::Object(paths)) = doc.get_mut("paths") {
        for (path, item) in paths.iter_mut() {
            let Value::Object(item) = item else { continue };
            for (method, operation) in item.iter_mut() {
                operation["operationId"] = operation_id(method, path).into();
                let responses = &mut operation["responses"];
                responses["401"] = error("`control_token` is configured and was not presented");
                responses["403"] =
                    error("Not a loopback peer, or a Host/Origin that is not this server");
            }
        }
    }
}

/// `get` + `/_mock/sessions/{id}/journal` → `getSessionsIdJournal`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for word in path
        .trim_start_matches("/_mock")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.push_str(chars.as_str());
        }
    }
    id
}
