// Start the messaging-mock binary from a JavaScript test, and steer it through its control API.
// Node 20, ESM, no npm packages.
//
//   import { test } from "node:test";
//   import { startMock } from "@messaging-mock/driver/mock";   // or "<repo>/drivers/js/mock.mjs"
//
//   test("my SDK says hello", async (t) => {
//     const mock = await startMock({ scenario: "basic-conversation" });
//     t.after(() => mock.stop());                 // runs when the test passes, fails or throws
//     const sdk = new MySdk({ baseUrl: mock.baseUrl, token: mock.connectorToken, host: mock.host });
//     ...
//     const [session] = await mock.control.sessions();
//   });
//
// See drivers/js/README.md ("Starting the mock from a test").

import { spawn } from "node:child_process";
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { delimiter, isAbsolute, join, resolve } from "node:path";

/** The environment variable naming the binary when `options.binary` is not given. */
export const BINARY_ENV = "MESSAGING_MOCK_BIN";
/** The program looked up on `PATH` last. */
export const BINARY_NAME = "messaging-mock";

const HOW_TO_FIND =
  `Pass options.binary, set ${BINARY_ENV}=/path/to/messaging-mock, or put ${BINARY_NAME} on PATH ` +
  "(`cargo install --path mock-server` in the messaging-mock repository)";

// --- errors ---------------------------------------------------------------------------------

/** The binary could not be found, did not start, or did not become ready in time. */
export class MockStartError extends Error {
  constructor(message, { binary, stderr, code, signal, pid } = {}) {
    super(message);
    this.name = "MockStartError";
    this.binary = binary;
    /** The process id when it was started (it is gone by the time this is thrown). */
    this.pid = pid;
    this.stderr = stderr ?? "";
    this.code = code;
    this.signal = signal;
  }
}

/** A control-API call answered with a non-2xx status. `message` is the server's own text. */
export class ControlError extends Error {
  constructor(status, message, { method, url, body } = {}) {
    super(message);
    this.name = "ControlError";
    /** @type {number} */
    this.status = status;
    this.method = method;
    this.url = url;
    /** The parsed error body (`{error, message, pointer?}`), or the raw text. */
    this.body = body;
    /** For a malformed body: the JSON pointer the server names, else undefined. */
    this.pointer = body && typeof body === "object" ? body.pointer ?? undefined : undefined;
  }

  toString() {
    return `${this.name}: ${this.method} ${this.url} answered ${this.status}: ${this.message}`;
  }
}

// --- finding the binary ---------------------------------------------------------------------

function isExecutableFile(path) {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The path of the messaging-mock binary: `options.binary`, else `$MESSAGING_MOCK_BIN`, else
 * `messaging-mock` on `PATH`. Throws a MockStartError naming all three when none is usable.
 * @param {{binary?: string, env?: Record<string, string|undefined>}} [options]
 * @returns {string}
 */
export function findBinary(options = {}) {
  const env = { ...process.env, ...(options.env ?? {}) };
  const check = (path, source) => {
    const full = resolve(path);
    if (!isExecutableFile(full)) {
      throw new MockStartError(
        `messaging-mock binary not found: ${source} is ${JSON.stringify(path)}, which is not an executable file ` +
          `(the binary is looked for in options.binary, then ${BINARY_ENV}, then ${BINARY_NAME} on PATH). ${HOW_TO_FIND}`,
        { binary: full },
      );
    }
    return full;
  };
  if (options.binary) return check(options.binary, "options.binary");
  if (env[BINARY_ENV]) return check(env[BINARY_ENV], BINARY_ENV);
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, BINARY_NAME);
    if (isExecutableFile(candidate)) return isAbsolute(candidate) ? candidate : resolve(candidate);
  }
  throw new MockStartError(
    `messaging-mock binary not found: no options.binary, ${BINARY_ENV} is not set, and there is no ${BINARY_NAME} on PATH. ${HOW_TO_FIND}`,
  );
}

// --- leftover children ------------------------------------------------------------------------

const live = new Set(); // ChildProcess objects not yet exited
let hooksInstalled = false;

function killLeftovers() {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
}

function installHooks() {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // A test runner that ends the process (a failed assertion, process.exit, the end of the file)
  // must not leave a mock behind.
  process.on("exit", killLeftovers);
  // Interrupted (Ctrl-C, a runner's timeout): kill the children, then let the signal do what it
  // would have done had we not listened, unless someone else handles it.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    const onSignal = () => {
      killLeftovers();
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

/** How many mocks this process started that are still running (for tests). */
export const runningMocks = () => live.size;

// --- starting ---------------------------------------------------------------------------------

const STDERR_KEEP = 64 * 1024;

/**
 * @typedef {object} StartOptions
 * @property {string} [binary] path of the messaging-mock binary (else MESSAGING_MOCK_BIN, else PATH)
 * @property {string} [scenario] `--scenario`: a built-in name or a scenario file
 * @property {number|bigint|string} [seed] `--seed`
 * @property {string} [config] `--config`: a JSON configuration file
 * @property {string} [bind] `--bind`, default `127.0.0.1:0` (a free port)
 * @property {string} [controlToken] `--control-token`; the control client then sends it
 * @property {string} [log] `--log` filter (e.g. `debug`)
 * @property {boolean} [tls] `--tls`: serve https:// and wss:// with a throwaway CA (handle.caFile); the control client trusts only that CA
 * @property {string[]} [args] any other flags, appended as given (e.g. `["--time-scale", "100"]`)
 * @property {Record<string, string|undefined>} [env] environment added to this process's (undefined removes a variable)
 * @property {string} [cwd] working directory of the mock
 * @property {number} [timeoutMs] how long to wait for the readiness line (default 10 000)
 * @property {number} [stopGraceMs] how long stop() waits after SIGTERM before SIGKILL (default 5 000)
 * @property {number} [requestTimeoutMs] per control-API request (default 10 000)
 * @property {(chunk: string) => void} [onStderr] called with the mock's log output as it comes
 */

/**
 * @typedef {object} Readiness the mock's readiness line, parsed
 * @property {true} ready
 * @property {string} base_url
 * @property {string} ws_url
 * @property {string} connector_token
 * @property {string} host
 * @property {number} seed may have lost precision: use handle.seed
 * @property {string} scenario
 * @property {string} profile
 * @property {string} console_url
 * @property {string} control_url
 * @property {boolean} [tls] true under `--tls`
 * @property {string} [ca_file] under `--tls`: the PEM file of the CA that signed the server certificate
 */

/**
 * Starts the mock on a free port and resolves once it printed its readiness line.
 * Always stop it: `t.after(() => mock.stop())` or `try { ... } finally { await mock.stop(); }`.
 * @param {StartOptions} [options]
 * @returns {Promise<MockHandle>}
 */
export async function startMock(options = {}) {
  const binary = findBinary(options);
  const args = ["--bind", options.bind ?? "127.0.0.1:0"];
  if (options.scenario !== undefined) args.push("--scenario", String(options.scenario));
  if (options.seed !== undefined) args.push("--seed", String(options.seed));
  if (options.config !== undefined) args.push("--config", String(options.config));
  if (options.controlToken !== undefined) args.push("--control-token", String(options.controlToken));
  if (options.log !== undefined) args.push("--log", String(options.log));
  if (options.tls) args.push("--tls");
  args.push(...(options.args ?? []).map(String));

  const env = { ...process.env };
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined || value === null) delete env[key];
    else env[key] = String(value);
  }
  const timeoutMs = options.timeoutMs ?? 10_000;

  installHooks();
  const child = spawn(binary, args, { env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);

  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    // Keep reading so the pipe never fills; keep only the tail.
    stderr += chunk;
    if (stderr.length > STDERR_KEEP) stderr = stderr.slice(stderr.length - STDERR_KEEP);
    options.onStderr?.(chunk);
  });

  let exitInfo;
  const exited = new Promise((resolveExit) => {
    child.on("exit", (code, signal) => {
      exitInfo = { code, signal };
      live.delete(child);
      resolveExit(exitInfo);
    });
  });
  // "error" comes instead of "exit" when the binary cannot be spawned at all.
  let spawnError;
  child.on("error", (error) => {
    spawnError = error;
    live.delete(child);
    exitInfo ??= { code: null, signal: null };
  });

  const tail = () => {
    const lines = stderr.trimEnd().split("\n");
    return lines.slice(-20).join("\n");
  };

  let readiness;
  let rawLine;
  try {
    ({ readiness, rawLine } = await new Promise((resolveReady, rejectReady) => {
      let buffer = "";
      const timer = setTimeout(
        () => fail(`did not print its readiness line within ${timeoutMs} ms`),
        timeoutMs,
      );
      const fail = (why) => {
        clearTimeout(timer);
        child.stdout.removeListener("data", onData);
        rejectReady(new Error(why));
      };
      const onData = (chunk) => {
        buffer += chunk;
        let nl;
        while ((nl = buffer.indexOf("\n")) !== -1) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          let parsed;
          try {
            parsed = JSON.parse(line);
          } catch {
            continue; // not the readiness line
          }
          if (parsed && parsed.ready === true) {
            clearTimeout(timer);
            child.stdout.removeListener("data", onData);
            child.stdout.resume(); // drain anything later
            resolveReady({ readiness: parsed, rawLine: line });
            return;
          }
        }
      };
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", onData);
      child.once("error", (error) => fail(`could not be started: ${error.message}`));
      child.once("exit", (code, signal) =>
        fail(`exited before it was ready (${signal ? `signal ${signal}` : `status ${code}`})`),
      );
    }));
  } catch (error) {
    if (!exitInfo) {
      child.kill("SIGKILL");
      await exited;
    } else if (!spawnError) {
      await exited;
    }
    // Let the last stderr chunks arrive.
    await new Promise((r) => setImmediate(r));
    const text = tail();
    throw new MockStartError(
      `messaging-mock (${binary} ${args.join(" ")}) ${error.message}` +
        (text ? `; its stderr ends with:\n${text}` : "; it wrote nothing to stderr"),
      { binary, stderr, code: exitInfo?.code, signal: exitInfo?.signal, pid: child.pid },
    );
  }

  // A mock the test forgot to stop must not keep the process alive (node:test would wait for it
  // forever); the exit hook kills it when the process ends.
  child.unref();
  child.stdout.unref?.();
  child.stderr.unref?.();
  return new MockHandle({ child, binary, args, readiness, rawLine, exited, options, stderr: () => stderr, exitInfo: () => exitInfo });
}

// --- the handle -------------------------------------------------------------------------------

export class MockHandle {
  /** @internal */
  constructor({ child, binary, args, readiness, rawLine, exited, options, stderr, exitInfo }) {
    /** @type {import("node:child_process").ChildProcess} */
    this.process = child;
    /** @type {number} */
    this.pid = child.pid;
    this.binary = binary;
    this.args = args;
    /** @type {Readiness} the readiness line, parsed */
    this.readiness = readiness;
    /** @type {string} e.g. http://127.0.0.1:41234 */
    this.baseUrl = readiness.base_url;
    /** @type {string} e.g. ws://127.0.0.1:41234/ws */
    this.wsUrl = readiness.ws_url;
    /** @type {string} e.g. http://127.0.0.1:41234/_mock */
    this.controlUrl = readiness.control_url;
    /** @type {string} the web console */
    this.consoleUrl = readiness.console_url;
    /** @type {boolean} whether the mock serves https:// and wss:// (`tls: true`) */
    this.tls = readiness.tls === true;
    /** @type {string|undefined} under TLS: the CA's PEM file, for your SDK to trust (removed when the mock exits) */
    this.caFile = readiness.ca_file ?? undefined;
    /** @type {string} send as X-Token */
    this.connectorToken = readiness.connector_token;
    /** @type {string} send as X-Host */
    this.host = readiness.host;
    /** @type {string} the seed, exactly, as a decimal string (a u64 does not fit a JS number) */
    this.seed = /"seed"\s*:\s*(\d+)/.exec(rawLine)?.[1] ?? String(readiness.seed);
    /** @type {string} */
    this.scenario = readiness.scenario;
    /** @type {string} */
    this.profile = readiness.profile;
    /** @type {ControlClient} */
    this.control = new ControlClient(readiness.control_url, {
      token: options.controlToken,
      timeoutMs: options.requestTimeoutMs,
      caFile: this.caFile,
    });
    this._exited = exited;
    this._stderr = stderr;
    this._exitInfo = exitInfo;
    this._grace = options.stopGraceMs ?? 5_000;
    this._stopping = undefined;
  }

  /** What the mock wrote to stderr (its logs), the last 64 KiB. */
  stderr() {
    return this._stderr();
  }

  /** Whether the process is still running. */
  get running() {
    return this._exitInfo() === undefined;
  }

  /**
   * SIGTERM, then SIGKILL when it has not exited after the grace. Resolves with how it exited;
   * calling it again returns the same promise.
   * @param {{graceMs?: number}} [opts]
   * @returns {Promise<{code: number|null, signal: string|null}>}
   */
  stop({ graceMs = this._grace } = {}) {
    this._stopping ??= (async () => {
      if (this._exitInfo() !== undefined) return this._exitInfo();
      this.process.ref(); // until it has exited
      this.process.kill("SIGTERM");
      let timer;
      const late = new Promise((r) => { timer = setTimeout(() => r("late"), graceMs); });
      const first = await Promise.race([this._exited, late]);
      clearTimeout(timer);
      if (first === "late") {
        this.process.kill("SIGKILL");
        return await this._exited;
      }
      return first;
    })();
    return this._stopping;
  }
}

if (typeof Symbol.asyncDispose === "symbol") {
  // `await using mock = await startMock()` where the syntax is available.
  MockHandle.prototype[Symbol.asyncDispose] = function dispose() {
    return this.stop();
  };
}

// --- the control client -----------------------------------------------------------------------

/**
 * @typedef {object} Health
 * @property {boolean} ok
 * @property {number} sessions
 * @property {number} clock_ms
 * @property {number} clock_scale
 */
/**
 * @typedef {object} SessionSummary
 * @property {string} session_id
 * @property {string} connector
 * @property {string} scenario
 * @property {boolean} streaming
 * @property {string} state `awaiting_join`, `joining`, `agent`, `handoff_queued`, `live_agent:<id>`, `no_agent`, `ended:<reason>`
 * @property {string} status `active`, `ended` or `expired`
 * @property {number} open_sockets
 * @property {number} last_sequence
 * @property {number} journal_entries
 * @property {string|null} [recording_error]
 * @property {number} created_at_ms
 */
/**
 * @typedef {object} HttpCall one REST call or /ws handshake the mock answered
 * @property {number} at_ms
 * @property {"/api/v1/access-token"|"/api/v1/sessions"|"/ws"} endpoint the path addressed
 * @property {number} status
 * @property {string|null} [error]
 * @property {number|null} [retry_after]
 * @property {object} request
 * @property {string|null} [token]
 * @property {string|null} [session_id]
 */
/**
 * @typedef {object} RequestFilter
 * @property {"access-token"|"sessions"|"ws"} [endpoint] (the answers spell it as the path: `/api/v1/access-token`, ...)
 * @property {number} [status]
 * @property {string} [sessionId]
 * @property {number} [sinceMs] mock-clock ms: calls at or after
 * @property {number} [untilMs] mock-clock ms: calls before
 * @property {boolean} [count] answer `{count}` only
 */

// The answer as request() needs it, whichever transport carried it.
async function viaFetch(url, init) {
  const response = await fetch(url, init);
  return {
    ok: response.ok,
    status: response.status,
    statusText: response.statusText,
    contentType: response.headers.get("content-type"),
    text: await response.text(),
  };
}

/** A small client of the mock's control API (`/_mock/`). Every method rejects with a ControlError on a non-2xx answer. */
export class ControlClient {
  /**
   * @param {string} controlUrl the readiness line's `control_url`, e.g. http://127.0.0.1:41234/_mock
   * @param {{token?: string, timeoutMs?: number, ca?: string|Buffer, caFile?: string}} [opts]
   *   `ca` (PEM) or `caFile`: for an https control URL, the only CA trusted (without either, Node's default CAs)
   */
  constructor(controlUrl, { token, timeoutMs, ca, caFile } = {}) {
    this.url = String(controlUrl).replace(/\/+$/, "");
    this.token = token;
    this.timeoutMs = timeoutMs ?? 10_000;
    // Read now, while the mock runs: it deletes its CA file when it exits.
    this.ca = ca ?? (caFile ? readFileSync(caFile) : undefined);
  }

  /**
   * One request; the parsed JSON body (or the text, for non-JSON answers).
   * @param {string} method
   * @param {string} path under the control URL, starting with `/`
   * @param {unknown} [body] sent as JSON (writes always carry `Content-Type: application/json`)
   */
  async request(method, path, body) {
    const url = this.url + path;
    const headers = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const init = { method, headers, signal: AbortSignal.timeout(this.timeoutMs) };
    if (method !== "GET") {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(body === undefined ? {} : body);
    }
    let response;
    try {
      response = url.startsWith("https:") ? await this._https(url, init) : await viaFetch(url, init);
    } catch (error) {
      const cause = error.cause ?? error;
      const code = cause.code ? ` (${cause.code})` : "";
      throw new ControlError(0, `${method} ${url} failed: ${cause.message}${code}`, { method, url });
    }
    const { text } = response;
    const isJson = (response.contentType ?? "").includes("json");
    let parsed = text;
    if (isJson && text.length) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!response.ok) {
      const message =
        parsed && typeof parsed === "object" && typeof parsed.message === "string"
          ? parsed.message
          : text || response.statusText;
      throw new ControlError(response.status, message, { method, url, body: parsed });
    }
    return parsed;
  }

  /**
   * One request over node:https, because Node 20's fetch cannot trust a CA per request.
   * @internal
   */
  _https(url, { method, headers, body, signal }) {
    return new Promise((resolveResponse, rejectResponse) => {
      // agent: false — a fresh connection each time, so no pooled socket or TLS session outlives a
      // stopped mock or is shared with a client trusting another CA.
      const options = { method, headers, signal, agent: false };
      if (this.ca !== undefined) options.ca = this.ca;
      const req = httpsRequest(url, options, (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("error", rejectResponse);
        res.on("end", () =>
          resolveResponse({
            ok: res.statusCode >= 200 && res.statusCode < 300,
            status: res.statusCode,
            statusText: res.statusMessage ?? "",
            contentType: res.headers["content-type"],
            text: Buffer.concat(chunks).toString("utf8"),
          }),
        );
      });
      req.on("error", rejectResponse);
      req.end(body);
    });
  }

  /** @returns {Promise<Health>} */
  health() {
    return this.request("GET", "/health");
  }

  /** The sessions, or the newest `limit`. @param {number} [limit] @returns {Promise<SessionSummary[]>} */
  sessions(limit) {
    return this.request("GET", `/sessions${limit === undefined ? "" : `?limit=${encodeURIComponent(limit)}`}`);
  }

  /** @param {string} id @returns {Promise<SessionSummary>} */
  session(id) {
    return this.request("GET", `/sessions/${encodeURIComponent(id)}`);
  }

  /**
   * The session's journal: an array of entries, or with `{format: "jsonl"}` the recording text
   * (which `--scenario FILE.jsonl` replays).
   * @param {string} id
   * @param {{format?: "json"|"jsonl"}} [opts]
   * @returns {Promise<object[]|string>}
   */
  journal(id, { format } = {}) {
    const query = format ? `?format=${encodeURIComponent(format)}` : "";
    return this.request("GET", `/sessions/${encodeURIComponent(id)}/journal${query}`);
  }

  /** Play scenario steps now (one or an array). @returns {Promise<{accepted: number}>} */
  steps(id, steps) {
    return this.request("POST", `/sessions/${encodeURIComponent(id)}/steps`, steps);
  }

  /** Apply faults now (one or an array): `"drop"`, `{close: 4002}`, ... @returns {Promise<{accepted: number}>} */
  faults(id, faults) {
    return this.request("POST", `/sessions/${encodeURIComponent(id)}/faults`, faults);
  }

  /** End the session (`REASON_NATURAL_END` unless `reason`). @returns {Promise<{accepted: number}>} */
  end(id, reason) {
    return this.request("POST", `/sessions/${encodeURIComponent(id)}/end`, reason === undefined ? {} : { reason });
  }

  /**
   * Move the mock clock forward (`advanceMs`: due timers fire now) and/or scale it.
   * @param {{advanceMs?: number, scale?: number}} change
   * @returns {Promise<Health>}
   */
  clock({ advanceMs, scale } = {}) {
    const body = {};
    if (advanceMs !== undefined) body.advance_ms = advanceMs;
    if (scale !== undefined) body.scale = scale;
    return this.request("POST", "/clock", body);
  }

  /** The scenario of the next session. @returns {Promise<{scenario: string}>} */
  nextScenario(name) {
    return this.request("PUT", "/next-scenario", { scenario: name });
  }

  /** The scenario of a connector's later tokens. @returns {Promise<{scenario: string}>} */
  connectorScenario(token, name) {
    return this.request("PUT", `/connectors/${encodeURIComponent(token)}/scenario`, { scenario: name });
  }

  /**
   * Arm REST failures, as the API spells them: `{access_token: 1, sessions: 2,
   * sessions_429: {count: 1, retry_after_seconds: 3}}`. Resolves with what is armed.
   */
  httpFailures(spec) {
    return this.request("POST", "/http-failures", spec);
  }

  /**
   * Every REST call and /ws handshake, oldest first, filtered; with `{count: true}` resolves
   * with `{count: n}` instead.
   * @param {RequestFilter} [filter]
   * @returns {Promise<HttpCall[] | {count: number}>}
   */
  async requests(filter = {}) {
    const names = { endpoint: "endpoint", status: "status", sessionId: "session_id", session_id: "session_id", sinceMs: "since_ms", since_ms: "since_ms", untilMs: "until_ms", until_ms: "until_ms", count: "count" };
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(filter)) {
      if (value === undefined || value === null) continue;
      const name = names[key];
      if (!name) throw new TypeError(`requests(): unknown filter ${JSON.stringify(key)} (known: endpoint, status, sessionId, sinceMs, untilMs, count)`);
      query.set(name, String(value));
    }
    const text = query.toString();
    return this.request("GET", `/requests${text ? `?${text}` : ""}`);
  }

  /** Drop every session and control choice. @returns {Promise<Health>} */
  reset() {
    return this.request("POST", "/reset");
  }

  /** The built-in scenario names. @returns {Promise<string[]>} */
  scenarios() {
    return this.request("GET", "/scenarios");
  }
}
