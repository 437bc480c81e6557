// Validates the generated API descriptions with the ecosystem's own tools: the AsyncAPI parser
// (@asyncapi/parser, which runs the AsyncAPI Spectral ruleset) on schemas/asyncapi.json, and
// Redocly's linter (@redocly/openapi-core, `recommended` rules) on schemas/openapi.json and
// schemas/control-openapi.json. Prints every finding; exits 1 on any error or warning.
//
//   node tools/validate-apis.mjs [asyncapi.json] [openapi.json ...]
//
// Run by mock-server/tests/it/apidocs.rs, which also feeds it broken documents (negative
// controls) to make sure it can fail.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Parser } from "@asyncapi/parser";
import { lint, createConfig } from "@redocly/openapi-core";
import Ajv from "ajv";

const repo = fileURLToPath(new URL("../", import.meta.url));
const [asyncapiPath = `${repo}schemas/asyncapi.json`, ...openapiPaths] = process.argv.slice(2);
if (openapiPaths.length === 0) openapiPaths.push(`${repo}schemas/openapi.json`, `${repo}schemas/control-openapi.json`);

let problems = 0;
const report = (file, severity, code, message, where) => {
  problems += 1;
  console.log(`${file}: ${severity} ${code}: ${message}${where ? ` (at ${where})` : ""}`);
};

// AsyncAPI: severity 0 = error, 1 = warning (Spectral's scale). The parser's AsyncAPI 3 ruleset
// does not check message examples against their payloads (its v2 ruleset did), so Ajv does
// that below, with the document's components as the reference root.
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(asyncapiPath, "utf8"));
for (const d of diagnostics) {
  if (d.severity <= 1) report(asyncapiPath, d.severity === 0 ? "error" : "warning", d.code, d.message, d.path?.join("/"));
}
if (!document) report(asyncapiPath, "error", "parse", "the parser returned no document");
const raw = JSON.parse(readFileSync(asyncapiPath, "utf8"));
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema({ components: raw.components ?? {} }, "asyncapi");
let checkedExamples = 0;
for (const [name, message] of Object.entries(raw.components?.messages ?? {})) {
  if (!message.payload) continue;
  const validate = ajv.compile({ $ref: `asyncapi#/components/messages/${name}/payload` });
  for (const [i, example] of (message.examples ?? []).entries()) {
    checkedExamples += 1;
    if (!validate(example.payload)) {
      for (const e of validate.errors) report(asyncapiPath, "error", "message-example", `${name} example ${i}: ${e.instancePath || "/"} ${e.message}`);
    }
  }
}
if (document) console.log(`${asyncapiPath}: AsyncAPI ${document.version()}, ${document.allMessages().length} messages, ${document.channels().length} channel(s), ${checkedExamples} example(s) checked`);

// OpenAPI: Redocly's recommended ruleset.
const config = await createConfig({ extends: ["recommended"] });
for (const path of openapiPaths) {
  const results = await lint({ ref: path, config });
  for (const r of results) {
    if (r.severity === "error" || r.severity === "warn") {
      report(path, r.severity, r.ruleId, r.message, r.location?.[0]?.pointer);
    }
  }
  const doc = JSON.parse(readFileSync(path, "utf8"));
  console.log(`${path}: OpenAPI ${doc.openapi}, ${Object.keys(doc.paths ?? {}).length} path(s)`);
}

console.log(problems === 0 ? "ok: no errors or warnings" : `${problems} problem(s)`);
process.exit(problems === 0 ? 0 : 1);
