// The driver contract (docs/driver-contract.md) for Node 20, without npm packages, so an
// SDK author only writes an adapter object:
//
//   import { runDriver, Unsupported, NotImplemented } from "<repo>/drivers/js/driver.mjs";
//   await runDriver({ name: "my-sdk", version: "1.2.3", adapter });
//
// Each command `cmd` calls the adapter method of the same name in camelCase (`tap_suggestion` ->
// `tapSuggestion`) with (command, { env, log }). See drivers/js/README.md.

import { createInterface } from "node:readline";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

// --- errors an adapter throws ----------------------------------------------------------------

const UNSUPPORTED = Symbol.for("messaging-driver.unsupported");
const NOT_IMPLEMENTED = Symbol.for("messaging-driver.not-implemented");

/** The SDK cannot do this command: the reply is `{"re": id, "unsupported": true}`. */
export class Unsupported extends Error {
  constructor(message = "unsupported") {
    super(message);
    this.name = "Unsupported";
    this[UNSUPPORTED] = true;
  }
}

/** The SDK cannot run this case at all: the driver exits 89 and the case is skipped. */
export class NotImplemented extends Error {
  constructor(message = "not implemented") {
    super(message);
    this.name = "NotImplemented";
    this[NOT_IMPLEMENTED] = true;
  }
}

/** Exit 89 right away (case skipped), from anywhere. */
export function notImplemented(reason = "not implemented") {
  process.stderr.write(`driver: not implemented: ${reason}\n`);
  process.exit(89);
}

const isUnsupported = (e) => e instanceof Unsupported || Boolean(e?.[UNSUPPORTED]);
const isNotImplemented = (e) => e instanceof NotImplemented || Boolean(e?.[NOT_IMPLEMENTED]);

// --- the environment -------------------------------------------------------------------------

/** MESSAGING_* and CONFORMANCE_CASE, parsed (contract §1). */
export function readEnv(source = process.env) {
  const baseUrl = source.MESSAGING_BASE_URL;
  let wsUrl;
  if (baseUrl) {
    // As a real SDK derives it: http -> ws, https -> wss, path /ws under the base.
    wsUrl = baseUrl.replace(/\/+$/, "").replace(/^http(s?):/i, (_, s) => `ws${s}:`) + "/ws";
  }
  return {
    baseUrl,
    wsUrl,
    connectorToken: source.MESSAGING_CONNECTOR_TOKEN,
    host: source.MESSAGING_HOST,
    caseId: source.CONFORMANCE_CASE,
    // A TLS mock's CA (`run --tls`). Node's built-in fetch and WebSocket trust it through
    // NODE_EXTRA_CA_CERTS, which the kit sets too; other libraries take it as `ca`.
    caFile: source.MESSAGING_CA_FILE,
  };
}

// --- a small JSON Schema validator -----------------------------------------------------------
// Enough of draft 2020-12 for schemas/conformance/driver-view.schema.json: type (a name or an
// array of names), enum, const, properties, required, additionalProperties, items, $ref to
// #/$defs/... or #/definitions/... (any local JSON pointer), anyOf, oneOf, allOf, minimum,
// maximum. Annotations (title, description, default, format, $id, $schema) are ignored.

const KNOWN = new Set([
  "type", "enum", "const", "properties", "required", "additionalProperties", "items", "$ref",
  "anyOf", "oneOf", "allOf", "minimum", "maximum",
  "$schema", "$id", "$defs", "definitions", "title", "description", "default", "format",
  "examples", "$comment",
]);

const escapePointer = (key) => String(key).replace(/~/g, "~0").replace(/\//g, "~1");
const at = (pointer) => pointer || "(root)";

function typeOf(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function hasType(value, type) {
  const actual = typeOf(value);
  if (type === "number") return actual === "number" || actual === "integer";
  return actual === type;
}

function resolveRef(root, ref) {
  if (!ref.startsWith("#")) throw new Error(`unsupported $ref ${ref}`);
  let node = root;
  for (const raw of ref.slice(1).split("/").slice(1)) {
    const key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    node = node?.[key];
  }
  if (node === undefined) throw new Error(`unresolvable $ref ${ref}`);
  return node;
}

// The problems of `value` against `schema`, as "pointer: problem" strings.
function check(root, schema, value, pointer, problems) {
  if (schema === true || schema === undefined) return;
  if (schema === false) {
    problems.push(`${at(pointer)}: not allowed here`);
    return;
  }
  if (schema.$ref !== undefined) check(root, resolveRef(root, schema.$ref), value, pointer, problems);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => hasType(value, t))) {
      problems.push(`${at(pointer)}: expected ${types.join(" or ")}, got ${typeOf(value)}`);
      return; // the other keywords would only repeat it
    }
  }
  if (schema.enum !== undefined && !schema.enum.some((v) => deepEqual(v, value))) {
    problems.push(`${at(pointer)}: ${JSON.stringify(value)} is not one of ${schema.enum.map((v) => JSON.stringify(v)).join(", ")}`);
  }
  if (schema.const !== undefined && !deepEqual(schema.const, value)) {
    problems.push(`${at(pointer)}: must be ${JSON.stringify(schema.const)}`);
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) problems.push(`${at(pointer)}: ${value} is less than ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) problems.push(`${at(pointer)}: ${value} is more than ${schema.maximum}`);
  }
  if (typeOf(value) === "object") {
    for (const key of schema.required ?? []) {
      if (!Object.hasOwn(value, key)) problems.push(`${at(pointer)}: missing required property ${JSON.stringify(key)}`);
    }
    const properties = schema.properties ?? {};
    for (const [key, item] of Object.entries(value)) {
      const child = `${pointer}/${escapePointer(key)}`;
      if (Object.hasOwn(properties, key)) check(root, properties[key], item, child, problems);
      else if (schema.additionalProperties === false) problems.push(`${at(child)}: property not allowed`);
      else if (schema.additionalProperties !== undefined) check(root, schema.additionalProperties, item, child, problems);
    }
  }
  if (Array.isArray(value) && schema.items !== undefined) {
    value.forEach((item, i) => check(root, schema.items, item, `${pointer}/${i}`, problems));
  }
  for (const sub of schema.allOf ?? []) check(root, sub, value, pointer, problems);
  if (schema.anyOf !== undefined) checkAlternatives(root, schema.anyOf, value, pointer, problems, "anyOf");
  if (schema.oneOf !== undefined) checkAlternatives(root, schema.oneOf, value, pointer, problems, "oneOf");
}

function checkAlternatives(root, alternatives, value, pointer, problems, keyword) {
  const results = alternatives.map((sub) => {
    const found = [];
    check(root, sub, value, pointer, found);
    return found;
  });
  const matches = results.filter((r) => r.length === 0).length;
  if (keyword === "oneOf" && matches > 1) {
    problems.push(`${at(pointer)}: matches ${matches} of the oneOf alternatives, not exactly one`);
    return;
  }
  if (matches > 0) return;
  // Report the alternatives whose type fits the value (e.g. the enum of "string or null" for a
  // wrong string); when none fits, one line naming the expected types.
  const typeMiss = (r) => r.length === 1 && r[0].startsWith(`${at(pointer)}: expected `);
  const relevant = results.filter((r) => !typeMiss(r));
  if (relevant.length > 0) {
    for (const r of relevant) problems.push(...r);
    return;
  }
  const expected = results.map((r) => r[0].slice(`${at(pointer)}: expected `.length).replace(/, got \S+$/, ""));
  problems.push(`${at(pointer)}: expected ${[...new Set(expected)].join(" or ")}, got ${typeOf(value)}`);
}

function deepEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
}

// Keywords in `schema` this validator does not implement (they would be ignored).
export function unknownKeywords(schema, found = new Set()) {
  if (schema === null || typeof schema !== "object") return found;
  for (const [key, sub] of Object.entries(schema)) {
    if (!KNOWN.has(key)) found.add(key);
    if (key === "properties" || key === "$defs" || key === "definitions") {
      for (const s of Object.values(sub ?? {})) unknownKeywords(s, found);
    } else if (key === "anyOf" || key === "oneOf" || key === "allOf") {
      for (const s of sub ?? []) unknownKeywords(s, found);
    } else if (key === "items" || key === "additionalProperties") {
      unknownKeywords(sub, found);
    }
  }
  return found;
}

/** The problems of `value` against `schema` ("pointer: problem"; empty when it is valid). */
export function validate(value, schema) {
  const problems = [];
  check(schema, schema, value, "", problems);
  return problems;
}

/** The file name of the view schema, next to this module in the package. */
export const SCHEMA_FILE = "driver-view.schema.json";

/**
 * Where the view schema is looked for, in order: next to this module (the copy the npm package
 * ships, `drivers/js/driver-view.schema.json` in the repository), then the repository's
 * `schemas/conformance/driver-view.schema.json` relative to this module.
 */
export const schemaCandidates = () => [
  fileURLToPath(new URL(`./${SCHEMA_FILE}`, import.meta.url)),
  fileURLToPath(new URL(`../../schemas/conformance/${SCHEMA_FILE}`, import.meta.url)),
];

/** Thrown when no view schema can be found: views would otherwise go unchecked. */
export class SchemaNotFound extends Error {
  constructor(message) {
    super(message);
    this.name = "SchemaNotFound";
  }
}

/**
 * The path of the view schema: `DRIVER_VIEW_SCHEMA` when set, else the first of
 * schemaCandidates() that exists. Throws SchemaNotFound, naming the paths tried, when none does.
 */
export const defaultSchemaPath = () => {
  if (process.env.DRIVER_VIEW_SCHEMA) return resolve(process.env.DRIVER_VIEW_SCHEMA);
  const candidates = schemaCandidates();
  const found = candidates.find((path) => existsSync(path));
  if (found) return found;
  throw new SchemaNotFound(
    `driver-view schema not found: looked for ${candidates.join(" and ")}; ` +
      "views cannot be validated. Reinstall the package, or set DRIVER_VIEW_SCHEMA to the absolute path of driver-view.schema.json",
  );
};

/**
 * The driver-view schema, or `{ schema: null, error }` when the file given (or named by
 * `DRIVER_VIEW_SCHEMA`) cannot be read. Without either and without a schema in the default
 * places, throws SchemaNotFound.
 */
export function loadViewSchema(path = defaultSchemaPath()) {
  try {
    return { path, schema: JSON.parse(readFileSync(path, "utf8")) };
  } catch (error) {
    return { path, schema: null, error: error.code === "ENOENT" ? "not found" : error.message };
  }
}

let cachedSchema;
/** The problems of a view against the driver-view schema (empty when valid or no schema). */
export function validateView(view, schema) {
  if (schema === undefined) schema = (cachedSchema ??= loadViewSchema()).schema;
  if (!schema) return [];
  // Judge what goes on the wire: undefined fields vanish, as in the reply.
  const wire = view === undefined ? null : JSON.parse(JSON.stringify(view));
  return validate(wire, schema);
}

// --- the contract loop -----------------------------------------------------------------------

const camel = (cmd) => cmd.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());

/**
 * Run the driver: print the ready line, then answer stdin commands in order through `adapter`.
 * Resolves once the loop is set up; the process exits on `exit` (0), stdin close (0),
 * NotImplemented (89) or an uncaught error outside a command (1).
 */
export async function runDriver({ name, version, adapter = {} }) {
  const write = (value) => process.stdout.write(JSON.stringify(value) + "\n");
  const log = (text) => write({ log: String(text) });
  const ctx = { env: readEnv(), log };
  const strict = process.env.DRIVER_STRICT_VIEW === "1";

  const fatal = (error) => {
    if (isNotImplemented(error)) {
      process.stderr.write(`driver: not implemented: ${error.message}\n`);
      process.exit(89);
    }
    process.stderr.write(`driver: uncaught error: ${error?.stack ?? error}\n`);
    process.exit(1);
  };
  process.on("uncaughtException", fatal);
  process.on("unhandledRejection", fatal);

  // Before the ready line: without a schema no view could be checked, so the driver does not
  // start (exit 1, the reason on stderr) rather than run unchecked.
  let loaded;
  try {
    loaded = loadViewSchema();
  } catch (error) {
    process.stderr.write(`driver: ${error.message}\n`);
    process.exit(1);
  }
  cachedSchema = loaded;

  write({ ready: true, name, version });

  if (!loaded.schema) {
    log(`driver-view schema ${loaded.error} (${loaded.path}): views are not validated`);
  } else {
    const ignored = [...unknownKeywords(loaded.schema)];
    if (ignored.length) log(`driver-view schema: keywords not checked: ${ignored.join(", ")}`);
  }

  // After the last line is flushed; `grace` lets sockets the adapter closed send their close frame.
  const exit = (code, grace = 0) =>
    process.stdout.write("", () => setTimeout(() => process.exit(code), grace));

  async function handle(line) {
    let command;
    try {
      command = JSON.parse(line);
    } catch {
      log(`not a command (not JSON): ${line}`);
      return;
    }
    if (typeOf(command) !== "object" || !Number.isInteger(command.id)) {
      log(`not a command (no integer id): ${line}`);
      return;
    }
    const { id, cmd } = command;
    const method = typeof cmd === "string" ? camel(cmd) : undefined;
    const fn = method && !(method in Object.prototype) ? adapter[method] : undefined;
    let reply;
    if (typeof fn !== "function") {
      reply = cmd === "exit" ? { re: id, ok: true } : { re: id, unsupported: true };
    } else {
      try {
        const result = await fn.call(adapter, command, ctx);
        reply = { re: id, ok: true };
        if (cmd === "view") {
          const view = result === undefined ? null : result;
          let problems;
          try {
            problems = validateView(view);
          } catch (error) {
            log(`driver-view schema unusable, view not validated: ${error.message}`);
            problems = [];
          }
          if (problems.length) {
            const error = `view does not match driver-view schema: ${problems.join("; ")}`;
            reply = strict ? { re: id, ok: false, error } : { re: id, ok: true, view };
            if (!strict) log(error);
          } else {
            reply.view = view;
          }
        }
      } catch (error) {
        if (isNotImplemented(error)) fatal(error);
        if (isUnsupported(error)) {
          if (error.message && error.message !== "unsupported") process.stderr.write(`driver: ${cmd} unsupported: ${error.message}\n`);
          reply = { re: id, unsupported: true };
        } else {
          reply = { re: id, ok: false, error: String(error?.message || error) };
        }
      }
    }
    write(reply);
    if (cmd === "exit") {
      exiting = true;
      exit(0, 50);
    }
  }

  let exiting = false;
  let chain = Promise.resolve();
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on("line", (line) => {
    if (!line.trim()) return;
    chain = chain.then(() => (exiting ? undefined : handle(line)));
  });
  lines.on("close", () => chain.then(() => exit(0)));
}
