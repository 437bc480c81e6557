// Where driver.mjs finds the view schema: next to itself (the copy the npm package ships), then
// the repository's schemas/conformance/, and when neither exists it refuses to run unchecked.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadViewSchema, schemaCandidates } from "../driver.mjs";

const HERE = fileURLToPath(new URL("..", import.meta.url));
const REPO_SCHEMA = fileURLToPath(new URL("../../../schemas/conformance/driver-view.schema.json", import.meta.url));
const COPY = join(HERE, "driver-view.schema.json");
const DRIVER = join(HERE, "driver.mjs");

// Runs `code` (an ES module) with the given copy of driver.mjs imported as `d`.
function run(driverPath, code, extraEnv = {}) {
  const { DRIVER_VIEW_SCHEMA, ...env } = process.env;
  return spawnSync(process.execPath, ["--input-type=module", "-e", `import * as d from ${JSON.stringify(driverPath)};\n${code}`], {
    encoding: "utf8",
    env: { ...env, ...extraEnv },
    timeout: 10_000,
    input: "",
  });
}

test("the packaged copy of the schema is the repository's file, byte for byte", () => {
  assert.equal(
    readFileSync(COPY, "utf8"),
    readFileSync(REPO_SCHEMA, "utf8"),
    "drivers/js/driver-view.schema.json differs from schemas/conformance/driver-view.schema.json: copy it again",
  );
});

test("the schema next to driver.mjs comes first, the repository's second", () => {
  assert.deepEqual(schemaCandidates(), [COPY, REPO_SCHEMA]);
  const saved = process.env.DRIVER_VIEW_SCHEMA;
  delete process.env.DRIVER_VIEW_SCHEMA;
  try {
    assert.equal(loadViewSchema().path, COPY);
  } finally {
    if (saved !== undefined) process.env.DRIVER_VIEW_SCHEMA = saved;
  }
});

test("a driver.mjs laid out as in the repository, with no copy beside it, uses schemas/conformance/", () => {
  const root = mkdtempSync(join(tmpdir(), "driver-layout-"));
  try {
    mkdirSync(join(root, "drivers/js"), { recursive: true });
    mkdirSync(join(root, "schemas/conformance"), { recursive: true });
    copyFileSync(DRIVER, join(root, "drivers/js/driver.mjs"));
    writeFileSync(join(root, "schemas/conformance/driver-view.schema.json"), JSON.stringify({ type: "object", required: ["only_here"] }));
    const r = run(join(root, "drivers/js/driver.mjs"), "console.log(JSON.stringify([d.loadViewSchema().path, d.validateView({})]));");
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [
      join(root, "schemas/conformance/driver-view.schema.json"),
      ['(root): missing required property "only_here"'],
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("with no schema anywhere: validateView throws and runDriver exits 1 before its ready line", () => {
  const root = mkdtempSync(join(tmpdir(), "driver-alone-"));
  try {
    const alone = join(root, "a/b/driver.mjs");
    mkdirSync(join(root, "a/b"), { recursive: true });
    copyFileSync(DRIVER, alone);

    const validate = run(alone, "try { d.validateView({}); console.log('validated'); } catch (e) { console.log(e.name + ': ' + e.message); }");
    assert.equal(validate.status, 0, validate.stderr);
    assert.match(validate.stdout, /^SchemaNotFound: driver-view schema not found: looked for /);
    assert.ok(validate.stdout.includes(join(root, "a/b/driver-view.schema.json")), validate.stdout);
    assert.ok(validate.stdout.includes("DRIVER_VIEW_SCHEMA"), validate.stdout);

    const driver = run(alone, 'await d.runDriver({ name: "x", version: "1", adapter: {} });');
    assert.equal(driver.status, 1, driver.stdout + driver.stderr);
    assert.equal(driver.stdout, "", "no ready line");
    assert.match(driver.stderr, /^driver: driver-view schema not found: looked for /);

    // DRIVER_VIEW_SCHEMA still points it anywhere.
    const pointed = run(alone, 'await d.runDriver({ name: "x", version: "1", adapter: {} });', { DRIVER_VIEW_SCHEMA: REPO_SCHEMA });
    assert.equal(pointed.status, 0, pointed.stderr);
    assert.deepEqual(JSON.parse(pointed.stdout.split("\n")[0]), { ready: true, name: "x", version: "1" });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
