// The contract loop of drivers/js/driver.mjs, end to end: a fixture adapter runs as a child
// process and the test talks NDJSON to it. Run: node --test drivers/js/test/
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Child, fixture } from "../fixtures/harness.mjs";

const ADAPTER = fixture("adapter.mjs");
const EMPTY = fixture("empty-adapter.mjs");
const T = { timeout: 20000 };

const children = [];
const start = (script = ADAPTER, env = {}) => {
  const child = new Child(script, env);
  children.push(child);
  return child;
};
afterEach(() => {
  while (children.length) children.pop().kill();
});

const schemaLogs = (child) => child.logs().filter((l) => l.startsWith("view does not match driver-view schema"));

test("the first line is the ready line with name and version", T, async () => {
  const child = start();
  await child.until((ls) => ls.length >= 1, "ready");
  assert.deepEqual(child.lines[0], { ready: true, name: "fixture-sdk", version: "9.9.9" });
  assert.equal(child.raw[0], '{"ready":true,"name":"fixture-sdk","version":"9.9.9"}');
});

test("start gets the command and the parsed environment", T, async () => {
  const child = start(ADAPTER, {
    MESSAGING_BASE_URL: "https://mock.test:8443",
    MESSAGING_CA_FILE: "/tmp/ca.pem",
  });
  child.send({ id: 1, cmd: "start", streaming: true });
  assert.deepEqual(await child.reply(1), { re: 1, ok: true });
  const line = child.logs().find((l) => l.startsWith("start "));
  assert.ok(line, "the adapter logged through ctx.log");
  const env = JSON.parse(line.slice(line.indexOf("env=") + 4));
  assert.ok(line.includes("streaming=true"));
  assert.deepEqual(env, {
    baseUrl: "https://mock.test:8443",
    wsUrl: "wss://mock.test:8443/ws",
    connectorToken: "tok",
    host: "host-1",
    caseId: "case-1",
    caFile: "/tmp/ca.pem",
  });
});

test("http base URL becomes a ws URL", T, async () => {
  const child = start();
  child.send({ id: 4, cmd: "start", streaming: false });
  await child.reply(4);
  const line = child.logs().find((l) => l.startsWith("start "));
  assert.ok(line.includes('"wsUrl":"ws://127.0.0.1:5/ws"'), line);
  assert.ok(line.includes("streaming=false"), line);
});

test("commands run one at a time and replies keep the order received", T, async () => {
  const child = start();
  child.send({ id: 10, cmd: "send", text: "slow" });
  child.send({ id: 11, cmd: "send", text: "fast" });
  child.send({ id: 12, cmd: "tap_suggestion", message_id: "msg_1", index: 2 });
  child.send({ id: 13, cmd: "end" });
  await child.reply(13);
  assert.deepEqual(child.replies(), [
    { re: 10, ok: true },
    { re: 11, ok: true },
    { re: 12, ok: true },
    { re: 13, ok: true },
  ]);
  // The fast send began only once the slow one ended.
  assert.deepEqual(child.logs(), ["begin slow", "end slow", "begin fast", "end fast", "tap msg_1 2"]);
});

test("a missing method, an unknown command and Unsupported reply unsupported", T, async () => {
  const child = start();
  child.send({ id: 1, cmd: "typing", state: "started" }); // the fixture has no typing()
  child.send({ id: 2, cmd: "fly_to_the_moon" });
  child.send({ id: 3, cmd: "constructor" }); // not a method of the adapter
  child.send({ id: 4 }); // no cmd at all
  child.send({ id: 5, cmd: "send", text: "unsupported" });
  child.send({ id: 6, cmd: "send", text: "fine" });
  await child.reply(6);
  assert.deepEqual(child.replies(), [
    { re: 1, unsupported: true },
    { re: 2, unsupported: true },
    { re: 3, unsupported: true },
    { re: 4, unsupported: true },
    { re: 5, unsupported: true },
    { re: 6, ok: true },
  ]);
});

test("an adapter without methods: unsupported everywhere, exit still works", T, async () => {
  const child = start(EMPTY);
  child.send({ id: 1, cmd: "start", streaming: false });
  child.send({ id: 2, cmd: "view" });
  child.send({ id: 3, cmd: "exit" });
  assert.equal(await child.exit(), 0);
  assert.deepEqual(child.lines[0], { ready: true, name: "empty-sdk", version: "0.0.0" });
  assert.deepEqual(child.replies(), [{ re: 1, unsupported: true }, { re: 2, unsupported: true }, { re: 3, ok: true }]);
});

test("a thrown error or rejected promise replies ok:false with its text, and the driver goes on", T, async () => {
  const child = start();
  child.send({ id: 1, cmd: "send", text: "boom" });
  child.send({ id: 2, cmd: "send", text: "reject" });
  child.send({ id: 3, cmd: "send", text: "after" });
  await child.reply(3);
  assert.deepEqual(child.replies(), [
    { re: 1, ok: false, error: "boom: the app shows this" },
    { re: 2, ok: false, error: "rejected later" },
    { re: 3, ok: true },
  ]);
});

test("unparsable lines and commands without an id are logged, not answered", T, async () => {
  const child = start();
  child.send("this is not json");
  child.send('{"cmd":"view"}');
  child.send('{"id":"seven","cmd":"view"}');
  child.send("[1,2]");
  child.send("");
  child.send({ id: 9, cmd: "send", text: "ok" });
  await child.reply(9);
  assert.deepEqual(child.replies(), [{ re: 9, ok: true }]);
  const notCommands = child.logs().filter((l) => l.startsWith("not a command"));
  assert.equal(notCommands.length, 4, JSON.stringify(child.logs()));
  assert.ok(notCommands[0].includes("this is not json"));
});

test("a valid view is replied as is, with no schema log", T, async () => {
  const child = start();
  child.send({ id: 1, cmd: "view" });
  const reply = await child.reply(1);
  assert.equal(reply.ok, true);
  assert.equal(reply.view.connection, "open");
  assert.equal(reply.view.messages[0].text, "hi");
  child.send({ id: 2, cmd: "view", fixture_view: { connection: "closed" } });
  assert.deepEqual(await child.reply(2), { re: 2, ok: true, view: { connection: "closed" } });
  assert.deepEqual(schemaLogs(child), []);
});

test("an invalid view: one log line with the pointer, and the view is still replied", T, async () => {
  const child = start();
  const cases = [
    [{ connection: "open", handoff: "LIVE" }, '/handoff: "LIVE" is not one of'],
    [{ messages: [{ from: "agent", complete: true }] }, '/messages/0: missing required property "text"'],
    [{ messages: [{ from: "user", text: "a", complete: true }, { from: "agent", text: "b", complete: "yes" }] }, "/messages/1/complete: expected boolean, got string"],
  ];
  for (const [i, [view, expected]] of cases.entries()) {
    child.send({ id: i + 1, cmd: "view", fixture_view: view });
    assert.deepEqual(await child.reply(i + 1), { re: i + 1, ok: true, view });
    const logs = schemaLogs(child);
    assert.equal(logs.length, i + 1, `one log line per invalid view: ${JSON.stringify(logs)}`);
    assert.ok(logs[i].includes(expected), `${logs[i]} should include ${expected}`);
  }
});

test("negative control: a view broken in another way is rejected too", T, async () => {
  const child = start();
  child.send({ id: 1, cmd: "view", fixture_view: { typing: { agent: false }, queue: { position_in_queue: -3 } } });
  await child.reply(1);
  const [line] = schemaLogs(child);
  assert.ok(line, "expected a schema log line");
  assert.ok(line.includes('/typing: missing required property "live_agent"'), line);
  assert.ok(line.includes("/queue/position_in_queue: -3 is less than 0"), line);
  // A view that is not an object at all.
  child.send({ id: 2, cmd: "view", fixture_view: ["open"] });
  await child.reply(2);
  assert.ok(schemaLogs(child)[1]?.includes("(root): expected object, got array"), JSON.stringify(schemaLogs(child)));
});

test("strict mode replies ok:false with the problem instead", T, async () => {
  const child = start(ADAPTER, { DRIVER_STRICT_VIEW: "1" });
  child.send({ id: 1, cmd: "view", fixture_view: { connection: "up" } });
  const reply = await child.reply(1);
  assert.equal(reply.ok, false);
  assert.equal(reply.view, undefined);
  assert.match(reply.error, /^view does not match driver-view schema: \/connection: "up" is not one of/);
  child.send({ id: 2, cmd: "view" }); // a valid view still passes in strict mode
  const ok = await child.reply(2);
  assert.equal(ok.ok, true);
  assert.equal(ok.view.connection, "open");
});

test("a missing schema file skips validation with one log line", T, async () => {
  const child = start(ADAPTER, { DRIVER_VIEW_SCHEMA: "/nonexistent/driver-view.schema.json", DRIVER_STRICT_VIEW: "1" });
  child.send({ id: 1, cmd: "view", fixture_view: { connection: 42 } });
  assert.deepEqual(await child.reply(1), { re: 1, ok: true, view: { connection: 42 } });
  child.send({ id: 2, cmd: "view", fixture_view: { connection: 43 } });
  await child.reply(2);
  const skipped = child.logs().filter((l) => l.includes("not validated"));
  assert.equal(skipped.length, 1, JSON.stringify(child.logs()));
  assert.ok(skipped[0].includes("/nonexistent/driver-view.schema.json"));
  assert.equal(child.lines[0].ready, true, "the ready line stays first");
});

test("DRIVER_VIEW_SCHEMA points the validation at another schema", T, async () => {
  const dir = mkdtempSync(join(tmpdir(), "driver-schema-"));
  const path = join(dir, "s.json");
  writeFileSync(path, JSON.stringify({ type: "object", required: ["session_id"] }));
  const child = start(ADAPTER, { DRIVER_VIEW_SCHEMA: path });
  child.send({ id: 1, cmd: "view", fixture_view: { connection: "bogus" } }); // fine for that schema
  await child.reply(1);
  assert.deepEqual(schemaLogs(child), ['view does not match driver-view schema: (root): missing required property "session_id"']);
});

test("exit replies, calls the adapter, exits 0 and ignores what follows", T, async () => {
  const child = start();
  child.send({ id: 1, cmd: "exit" });
  child.send({ id: 2, cmd: "view" });
  assert.equal(await child.exit(), 0);
  assert.deepEqual(child.replies(), [{ re: 1, ok: true }]);
  assert.ok(child.logs().includes("exit called"));
});

test("stdin closing exits 0 after the pending commands are answered", T, async () => {
  const child = start();
  child.send({ id: 1, cmd: "send", text: "slow" });
  child.proc.stdin.end();
  assert.equal(await child.exit(), 0);
  assert.deepEqual(child.replies(), [{ re: 1, ok: true }]);
});

test("a thrown NotImplemented exits 89 without a reply", T, async () => {
  const child = start();
  child.send({ id: 1, cmd: "send", text: "not-implemented" });
  child.send({ id: 2, cmd: "view" });
  assert.equal(await child.exit(), 89);
  assert.deepEqual(child.replies(), []);
  assert.match(child.stderr, /cannot run this case/);
});

test("notImplemented() exits 89", T, async () => {
  const child = start();
  child.send({ id: 1, cmd: "send", text: "not-implemented-call" });
  assert.equal(await child.exit(), 89);
  assert.deepEqual(child.replies(), []);
  assert.match(child.stderr, /called the helper/);
});

test("NotImplemented thrown outside a command exits 89", T, async () => {
  const child = start();
  child.send({ id: 1, cmd: "send", text: "uncaught-not-implemented" });
  assert.equal(await child.exit(), 89);
  assert.deepEqual(child.replies(), [{ re: 1, ok: true }]);
});

test("an uncaught error outside a command goes to stderr and exits 1", T, async () => {
  const child = start();
  child.send({ id: 1, cmd: "send", text: "uncaught" });
  assert.equal(await child.exit(), 1);
  assert.deepEqual(child.replies(), [{ re: 1, ok: true }]);
  assert.match(child.stderr, /escaped from a timer/);
  assert.ok(!child.raw.some((l) => l.includes("escaped from a timer")), "not on stdout");
});

test("control: a driver kept alive is not reported as exited", T, async () => {
  // The harness itself must be able to see a driver that does not exit.
  const child = start();
  child.send({ id: 1, cmd: "view" });
  await child.reply(1);
  await assert.rejects(child.exit(400), /still running/);
});
