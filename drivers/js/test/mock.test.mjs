// mock.mjs against the real messaging-mock binary: starting and stopping it, a conversation over
// HTTP and WebSocket, every control-client method, errors, and no process left behind.
// Run: node --test drivers/js/test/
//
// The binary: $MESSAGING_MOCK_BIN, else target/debug/messaging-mock when it exists (this file
// sets the variable then), else `messaging-mock` on PATH. Without one these tests skip, saying
// why, except under CI=true, where they fail.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  startMock, findBinary, runningMocks, ControlClient, ControlError, MockStartError,
} from "../mock.mjs";
import { fixture } from "../fixtures/harness.mjs";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const DEFAULT_BIN = join(REPO, "target/debug/messaging-mock");
if (!process.env.MESSAGING_MOCK_BIN && existsSync(DEFAULT_BIN)) process.env.MESSAGING_MOCK_BIN = DEFAULT_BIN;

// The rule of tools/browser_test.rs: under CI a missing prerequisite fails the test.
const CI = ((v) => Boolean(v) && v !== "false" && v !== "0")(process.env.CI);
let binaryProblem;
try {
  findBinary();
} catch (error) {
  binaryProblem = error.message;
}
const needsBinary = (timeout = 30_000) => ({
  timeout,
  skip: binaryProblem && !CI ? `no messaging-mock binary (${binaryProblem})` : false,
});

const tmp = () => mkdtempSync(join(tmpdir(), "messaging-mock-js-"));

// Whether `pid` is a live process (a zombie counts as gone: nobody may reap it in a container).
function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (error.code === "ESRCH") return false;
    throw error;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function assertGone(pid, what, ms = 5000) {
  const until = Date.now() + ms;
  while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  assert.equal(alive(pid), false, `${what}: process ${pid} is still running`);
}

// A child process that runs a node script; resolves with its exit and output, bounded.
function runNode(args, { env = {}, cwd, ms = 20_000 } = {}) {
  return new Promise((resolve, reject) => {
    // Without the runner's own variable, so a node:test file runs as a test file of its own.
    const { NODE_TEST_CONTEXT, ...inherited } = process.env;
    const child = spawn(process.execPath, args, { env: { ...inherited, ...env }, cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => { stdout += c; });
    child.stderr.on("data", (c) => { stderr += c; });
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error(`node ${args.join(" ")} ran over ${ms} ms\n${stdout}\n${stderr}`)); }, ms);
    child.on("exit", (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

// The WebSocket client: a child process, because node --test runs without --experimental-websocket.
class Socket {
  constructor(url) {
    this.lines = [];
    this.waiters = [];
    this.proc = spawn(process.execPath, ["--experimental-websocket", "--no-warnings", fixture("ws-client.mjs"), url], { stdio: ["pipe", "pipe", "pipe"] });
    this.stderr = "";
    let buffer = "";
    this.proc.stdout.setEncoding("utf8");
    this.proc.stdout.on("data", (chunk) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf("\n")) !== -1) {
        this.lines.push(JSON.parse(buffer.slice(0, nl)));
        buffer = buffer.slice(nl + 1);
        for (const w of [...this.waiters]) w();
      }
    });
    this.proc.stderr.on("data", (c) => { this.stderr += c; });
    this.proc.stdin.on("error", () => {});
  }

  frames() {
    return this.lines.filter((l) => l.frame).map((l) => l.frame);
  }

  // Every event, batches unpacked.
  events() {
    return this.frames().flatMap((f) => (f.type === "EVENT_TYPE_EVENT_BATCH" ? f.payload.events : [f]));
  }

  send(value) {
    this.proc.stdin.write(JSON.stringify(value) + "\n");
  }

  until(predicate, what, ms = 8000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { done(); reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.lines)} ${this.stderr}`)); }, ms);
      const check = () => {
        const found = predicate(this);
        if (found) { done(); resolve(found); }
      };
      const done = () => { clearTimeout(timer); this.waiters = this.waiters.filter((w) => w !== check); };
      this.waiters.push(check);
      check();
    });
  }

  kill() {
    this.proc.kill("SIGKILL");
  }
}

const json = (body) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

// --- without the binary ---------------------------------------------------------------------

test("a bad binary path is refused with an error naming all three places", async () => {
  await assert.rejects(startMock({ binary: "/nonexistent/messaging-mock" }), (error) => {
    assert.ok(error instanceof MockStartError);
    assert.match(error.message, /options\.binary is "\/nonexistent\/messaging-mock", which is not an executable file/);
    for (const place of ["options.binary", "MESSAGING_MOCK_BIN", "PATH"]) assert.ok(error.message.includes(place), error.message);
    return true;
  });
  await assert.rejects(startMock({ env: { MESSAGING_MOCK_BIN: "/nonexistent/bin" } }), /MESSAGING_MOCK_BIN is "\/nonexistent\/bin", which is not an executable file/);
  const empty = tmp();
  try {
    assert.throws(() => findBinary({ env: { MESSAGING_MOCK_BIN: undefined, PATH: empty } }), (error) => {
      assert.match(error.message, /no options\.binary, MESSAGING_MOCK_BIN is not set, and there is no messaging-mock on PATH/);
      return true;
    });
    // A directory is not a binary either.
    assert.throws(() => findBinary({ binary: empty }), /not an executable file/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
  assert.equal(runningMocks(), 0);
});

test("a binary that never gets ready is killed after the timeout, with its stderr in the error", { timeout: 15_000 }, async () => {
  const started = Date.now();
  let pid;
  await assert.rejects(
    startMock({ binary: fixture("silent-mock.sh"), timeoutMs: 700, onStderr: () => {} }),
    (error) => {
      assert.ok(error instanceof MockStartError);
      assert.match(error.message, /did not print its readiness line within 700 ms/);
      assert.match(error.message, /starting up, slowly/);
      pid = error.pid;
      return true;
    },
  );
  assert.ok(Date.now() - started < 5000, "bounded");
  assert.ok(Number.isInteger(pid), "the error names the pid");
  await assertGone(pid, "the timed-out start");
  assert.equal(runningMocks(), 0, "the child was killed and reaped");
});

test("stop() sends SIGTERM, then SIGKILL after the grace", { timeout: 15_000 }, async () => {
  const mock = await startMock({ binary: fixture("stubborn-mock.sh"), stopGraceMs: 300 });
  assert.equal(mock.seed, "18446744073709551615", "the seed keeps every digit");
  assert.equal(mock.running, true);
  const { signal } = await mock.stop();
  assert.equal(signal, "SIGKILL");
  assert.equal(mock.running, false);
  await assertGone(mock.pid, "stubborn mock");
  assert.deepEqual(await mock.stop(), { code: null, signal: "SIGKILL" }, "stop() twice is fine");
});

// --- with the binary --------------------------------------------------------------------------

test("a binary that exits before it is ready: the error carries its stderr", needsBinary(), async () => {
  await assert.rejects(startMock({ args: ["--no-such-flag"] }), (error) => {
    assert.ok(error instanceof MockStartError);
    assert.match(error.message, /exited before it was ready \(status 2\)/);
    assert.match(error.message, /unexpected argument '--no-such-flag'/);
    assert.equal(error.code, 2);
    return true;
  });
  assert.equal(runningMocks(), 0);
});

test("startMock: the handle mirrors the readiness line, options become flags, stop() leaves nothing", needsBinary(), async () => {
  const dir = tmp();
  const config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify({ connectors: [{ id: "acme", token: "tok-acme", host: "https://www.acme.example" }] }));
  const mock = await startMock({ scenario: "basic-conversation", seed: "18446744073709551615", config, env: { MESSAGING_MOCK_PROFILE: "2026-05" } });
  try {
    assert.equal(mock.seed, "18446744073709551615");
    assert.equal(mock.scenario, "basic-conversation");
    assert.equal(mock.profile, "2026-05", "env reaches the binary");
    assert.match(mock.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(new URL(mock.baseUrl).port, "8080", "port 0: a free port");
    assert.equal(mock.wsUrl, mock.baseUrl.replace("http", "ws") + "/ws");
    assert.equal(mock.controlUrl, mock.baseUrl + "/_mock");
    assert.equal(mock.consoleUrl, mock.baseUrl + "/_mock/ui/");
    // The config's connector replaces the default one, and the readiness line names it.
    assert.equal(mock.host, "https://www.acme.example");
    assert.equal(mock.connectorToken, "tok-acme");
    assert.deepEqual(mock.args.slice(0, 2), ["--bind", "127.0.0.1:0"]);
    // The config's connector works.
    const r = await fetch(`${mock.baseUrl}/api/v1/access-token`, { ...json({}), headers: { "content-type": "application/json", "x-token": "tok-acme", "x-host": "www.acme.example" } });
    assert.equal(r.status, 200, await r.text());
  } finally {
    await mock.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(mock.running, false);
  await assertGone(mock.pid, "stop()");
  assert.ok(mock.stderr().includes("stopped"), "the mock's logs are kept");
  assert.equal(runningMocks(), 0);
});

test("a conversation over HTTP and WebSocket, steered with every control-client method", needsBinary(60_000), async (t) => {
  const mock = await startMock({ seed: 7 });
  t.after(() => mock.stop());
  const c = mock.control;

  // Before any session.
  const health = await c.health();
  assert.equal(health.ok, true);
  assert.equal(health.sessions, 0);
  const scenarios = await c.scenarios();
  assert.ok(scenarios.includes("basic-conversation") && scenarios.includes("playground"), JSON.stringify(scenarios));
  assert.deepEqual(await c.nextScenario("playground"), { scenario: "playground" });
  assert.deepEqual(await c.connectorScenario(mock.connectorToken, "playground"), { scenario: "playground" });
  const armed = await c.httpFailures({ access_token: 1 });
  assert.equal(armed.access_token, 1);

  // REST: the first token call fails as armed, the second works.
  const tokenCall = () => fetch(`${mock.baseUrl}/api/v1/access-token`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-token": mock.connectorToken, "x-host": mock.host },
    body: "{}",
  });
  const failed = await tokenCall();
  assert.equal(failed.status, 500);
  const tokenResponse = await tokenCall();
  assert.equal(tokenResponse.status, 200);
  const { access_token: accessToken } = await tokenResponse.json();
  const sessionResponse = await fetch(`${mock.baseUrl}/api/v1/sessions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${accessToken}` },
    body: JSON.stringify({ streaming_enabled: false }),
  });
  assert.equal(sessionResponse.status, 200);
  const { session_id: id } = await sessionResponse.json();

  // WebSocket: history, join, greeting, a message and its answer.
  const ws = new Socket(`${mock.wsUrl}?session_id=${encodeURIComponent(id)}&access_token=${encodeURIComponent(accessToken)}`);
  t.after(() => ws.kill());
  await ws.until((s) => s.frames().some((f) => f.type === "EVENT_TYPE_EVENT_BATCH"), "the history batch");
  ws.send({ type: "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN", payload: {} });
  await ws.until((s) => s.events().some((e) => e.type === "EVENT_TYPE_POLY_AGENT_MESSAGE"), "the greeting");
  ws.send({ type: "EVENT_TYPE_USER_MESSAGE", payload: { text: "hello" } });
  await ws.until((s) => s.events().some((e) => e.type === "EVENT_TYPE_POLY_AGENT_MESSAGE" && e.payload.text === "You said: hello"), "the answer");

  // Sessions.
  const [summary] = await c.sessions(1);
  assert.equal(summary.session_id, id);
  assert.equal(summary.open_sockets, 1);
  assert.equal((await c.sessions()).length, 1);
  const one = await c.session(id);
  assert.equal(one.state, "agent");
  assert.equal(one.scenario, "playground");

  // A step the client receives, then a fault that duplicates the next event.
  assert.deepEqual(await c.steps(id, { reply: { text: "pushed by the test" } }), { accepted: 1 });
  await ws.until((s) => s.events().some((e) => e.payload?.text === "pushed by the test"), "the pushed reply");
  assert.deepEqual(await c.faults(id, "duplicate_next"), { accepted: 1 });
  await c.steps(id, [{ reply: { text: "said twice" } }]);
  await ws.until((s) => s.events().filter((e) => e.payload?.text === "said twice").length === 2, "the duplicated reply");

  // The clock.
  const before = (await c.health()).clock_ms;
  const moved = await c.clock({ advanceMs: 60_000 });
  assert.ok(moved.clock_ms >= before + 60_000, JSON.stringify(moved));
  assert.equal((await c.clock({ scale: 2 })).clock_scale, 2);

  // Ending: SESSION_END with the reason, then the server closes with 1000.
  await c.end(id, "REASON_NATURAL_END");
  await ws.until((s) => s.events().some((e) => e.type === "EVENT_TYPE_SESSION_END"), "SESSION_END");
  const closed = await ws.until((s) => s.lines.find((l) => "close" in l), "the close");
  assert.equal(closed.close, 1000);
  assert.match((await c.session(id)).state, /^ended:/);

  // The journal, as entries and as a recording.
  const journal = await c.journal(id);
  assert.ok(Array.isArray(journal) && journal.length > 5, JSON.stringify(journal).slice(0, 500));
  assert.ok(JSON.stringify(journal).includes("You said: hello"));
  const recording = await c.journal(id, { format: "jsonl" });
  assert.equal(typeof recording, "string");
  const lines = recording.trim().split("\n").map((l) => JSON.parse(l));
  assert.ok(lines.length >= journal.length - 1, `${lines.length} recording lines`);

  // requests(): every REST call and handshake, filtered.
  const calls = await c.requests();
  assert.deepEqual(calls.map((x) => [x.endpoint, x.status]), [["/api/v1/access-token", 500], ["/api/v1/access-token", 200], ["/api/v1/sessions", 200], ["/ws", 101]]);
  assert.deepEqual(await c.requests({ count: true }), { count: 4 });
  const refused = await c.requests({ status: 500 });
  assert.equal(refused.length, 1);
  assert.equal(refused[0].error, "Failed to create access token");
  assert.deepEqual((await c.requests({ endpoint: "ws", sessionId: id })).map((x) => x.session_id), [id]);
  assert.deepEqual(await c.requests({ sinceMs: calls[1].at_ms, count: true }), { count: 3 });
  assert.deepEqual(await c.requests({ untilMs: calls[0].at_ms, count: true }), { count: 0 });
  await assert.rejects(c.requests({ nonsense: 1 }), TypeError);

  // Refusals: status and the server's message.
  await assert.rejects(c.session("no-such-session"), (error) => {
    assert.ok(error instanceof ControlError);
    assert.equal(error.status, 404);
    assert.equal(error.message, "no session `no-such-session`");
    return true;
  });
  await assert.rejects(c.steps(id, { not_a_step: 1 }), (error) => {
    assert.equal(error.status, 400);
    assert.ok(error.message.length > 0);
    return true;
  });
  await assert.rejects(c.requests({ endpoint: "nope" }), (error) => error.status === 400);
  await assert.rejects(c.nextScenario("no-such-scenario"), (error) => error.status === 400 && /no scenario named `no-such-scenario`/.test(error.message));

  // Reset drops the sessions.
  const reset = await c.reset();
  assert.equal(reset.sessions, 0);
  assert.deepEqual(await c.sessions(), []);

  const pid = mock.pid;
  await mock.stop();
  await assertGone(pid, "stop()");
});

test("a control token is sent by the client", needsBinary(), async (t) => {
  const mock = await startMock({ controlToken: "s3cret" });
  t.after(() => mock.stop());
  assert.equal((await mock.control.health()).ok, true);
  await assert.rejects(new ControlClient(mock.controlUrl).health(), (error) => error.status === 401);
});

test("tls: https with a throwaway CA; the control client trusts that CA and no other", needsBinary(), async (t) => {
  const mock = await startMock({ tls: true });
  t.after(() => mock.stop());
  // A second mock only for its CA: a real CA that did not sign the first mock's certificate.
  const other = await startMock({ tls: true });
  t.after(() => other.stop());
  assert.equal(mock.tls, true);
  assert.match(mock.baseUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(mock.wsUrl, mock.baseUrl.replace("https", "wss") + "/ws");
  assert.equal(mock.controlUrl, mock.baseUrl + "/_mock");
  assert.ok(existsSync(mock.caFile), mock.caFile);
  assert.match(readFileSync(mock.caFile, "utf8"), /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\s*$/);

  assert.equal((await mock.control.health()).ok, true, "the handle's client trusts the mock's CA");
  const withPem = new ControlClient(mock.controlUrl, { ca: readFileSync(mock.caFile, "utf8") });
  assert.equal((await withPem.health()).ok, true, "ca as PEM text");
  // Errors still carry the server's answer over https.
  await assert.rejects(withPem.session("no-such-session"), (error) => error instanceof ControlError && error.status === 404);
  const untrusted = /certificate|self.signed|UNABLE_TO_VERIFY|SELF_SIGNED/i;
  await assert.rejects(new ControlClient(mock.controlUrl).health(), (error) => {
    assert.ok(error instanceof ControlError && error.status === 0, String(error));
    assert.match(error.message, untrusted);
    return true;
  }, "without the CA");
  await assert.rejects(new ControlClient(mock.controlUrl, { caFile: other.caFile }).health(), (error) => {
    assert.equal(error.status, 0);
    assert.match(error.message, untrusted);
    return true;
  }, "with another mock's CA");

  const caFile = mock.caFile;
  await mock.stop();
  assert.equal(existsSync(caFile), false, "the default CA file goes with the mock");
});

test("a test that fails still stops its mock (t.after)", needsBinary(), async () => {
  const dir = tmp();
  try {
    const pidFile = join(dir, "pid");
    const run = await runNode([fixture("fails-with-mock.mjs")], { env: { PID_FILE: pidFile } });
    assert.equal(run.code, 1, `the fixture test must fail:\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /fails on purpose/);
    await assertGone(Number(readFileSync(pidFile, "utf8")), "t.after");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a process that throws or exits without stop() kills its mock on the way out", needsBinary(), async () => {
  const dir = tmp();
  try {
    for (const how of ["throw", "exit"]) {
      const pidFile = join(dir, `pid-${how}`);
      const run = await runNode([fixture("leak-check.mjs"), how], { env: { PID_FILE: pidFile } });
      assert.equal(run.code, how === "throw" ? 1 : 3, run.stderr);
      await assertGone(Number(readFileSync(pidFile, "utf8")), `the exit hook (${how})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// --- the package ------------------------------------------------------------------------------

test("npm pack, then npm install --offline into a scratch project: both entry points and the schema work", needsBinary(90_000), async () => {
  const npm = spawnSync("npm", ["--version"], { encoding: "utf8" });
  if (npm.status !== 0) {
    assert.ok(!CI, "CI=true but npm is not available");
    return; // npm missing outside CI: nothing to pack with
  }
  const dir = tmp();
  try {
    const packDir = join(dir, "pack");
    mkdirSync(packDir);
    const pack = spawnSync("npm", ["pack", "--json", "--pack-destination", packDir, fileURLToPath(new URL("..", import.meta.url))], {
      encoding: "utf8", cwd: dir, timeout: 60_000, env: { ...process.env, npm_config_loglevel: "error" },
    });
    assert.equal(pack.status, 0, pack.stderr);
    const [info] = JSON.parse(pack.stdout);
    assert.deepEqual(info.files.map((f) => f.path).sort(), [
      "README.md", "driver-view.schema.json", "driver.d.ts", "driver.mjs", "mock.d.ts", "mock.mjs", "package.json",
    ]);
    const tgz = join(packDir, info.filename);
    assert.ok(existsSync(tgz), tgz);

    const project = join(dir, "project");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "scratch", version: "1.0.0", private: true, type: "module" }));
    const install = spawnSync("npm", ["install", tgz, "--offline", "--no-audit", "--no-fund", "--loglevel=error"], {
      encoding: "utf8", cwd: project, timeout: 60_000,
    });
    assert.equal(install.status, 0, install.stdout + install.stderr);

    writeFileSync(join(project, "check.mjs"), `
      import { runDriver, validateView, loadViewSchema } from "@messaging-mock/driver";
      import { startMock } from "@messaging-mock/driver/mock";
      const { path, schema } = loadViewSchema();
      const mock = await startMock();
      let health;
      try { health = await mock.control.health(); } finally { await mock.stop(); }
      console.log(JSON.stringify({
        runDriver: typeof runDriver, schemaPath: path, title: schema && Object.keys(schema).length > 0,
        valid: validateView({ connection: "open" }), invalid: validateView({ connection: "sideways" }).length,
        health: health.ok,
      }));
    `);
    const run = await runNode(["check.mjs"], { cwd: project });
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout.trim().split("\n").pop());
    assert.equal(out.runDriver, "function");
    assert.equal(out.schemaPath, join(project, "node_modules/@messaging-mock/driver/driver-view.schema.json"), "the schema next to the installed module");
    assert.deepEqual(out.valid, []);
    assert.equal(out.invalid, 1);
    assert.equal(out.health, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
