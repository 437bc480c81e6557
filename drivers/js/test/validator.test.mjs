// The view validator of drivers/js/driver.mjs, in process, against the real
// schemas/conformance/driver-view.schema.json. Run: node --test drivers/js/test/
import { test } from "node:test";
import assert from "node:assert/strict";
import { validateView, validate, loadViewSchema, unknownKeywords } from "../driver.mjs";

const VALID = {
  connection: "open",
  session_id: "ses_1",
  agent: { name: "Ada", avatar_url: "https://a/ada.png" },
  live_agent: { id: "agent_42", name: "Sarah", avatar_url: "https://a/s.png" },
  typing: { agent: false, live_agent: true },
  messages: [
    { message_id: "msg_1", from: "agent", text: "Hi", attachments: [{ type: "image", url: "x" }], suggestions: ["a", "b"], complete: true, status: null },
    { message_id: null, from: "user", text: "hello", attachments: [], suggestions: [], complete: true, status: "sending" },
    { message_id: "msg_3", from: "live_agent", text: "", complete: false },
  ],
  handoff: "live",
  queue: { queue_name: "q", position_in_queue: 3, estimated_wait_seconds: 180 },
  client_handoff: { reason: "COMPLEX_QUERY", queue_name: "q" },
  language: "fr-FR",
  system_messages: [{ level: "SYSTEM_MESSAGE_LEVEL_ERROR", message: "oops" }],
  ended: { reason: "REASON_USER_END" },
};

const clone = (v) => JSON.parse(JSON.stringify(v));
const withChange = (change) => {
  const view = clone(VALID);
  change(view);
  return view;
};

test("the schema file is found and every keyword in it is implemented", () => {
  const { schema, path } = loadViewSchema();
  assert.ok(schema, `schema at ${path}`);
  assert.deepEqual([...unknownKeywords(schema)], []);
  assert.deepEqual([...unknownKeywords({ type: "object", patternProperties: {}, properties: { a: { minLength: 1 } } })].sort(), ["minLength", "patternProperties"]);
});

test("valid views have no problems", () => {
  assert.deepEqual(validateView(VALID), []);
  assert.deepEqual(validateView({}), [], "every field may be left out");
  assert.deepEqual(validateView({ connection: "closed" }), []);
  const nulls = Object.fromEntries(Object.keys(VALID).map((k) => [k, null]));
  assert.deepEqual(validateView(nulls), [], "every field may be null");
  assert.deepEqual(validateView({ ...VALID, extension: { anything: 1 } }), [], "additive fields are allowed");
  for (const state of ["connecting", "open", "reconnecting", "closed"]) assert.deepEqual(validateView({ connection: state }), []);
  for (const h of ["none", "triggered", "accepted", "live", "client_required", "failed", "timeout", "ended"]) assert.deepEqual(validateView({ handoff: h }), []);
  assert.deepEqual(validateView({ queue: { queue_name: null, position_in_queue: 0 } }), []);
});

// The cases the task names: wrong enum value, missing required field, wrong type nested in messages[].
const CASES = [
  ["wrong enum value", (v) => { v.connection = "connected"; }, "/connection", '"connected" is not one of "connecting", "open", "reconnecting", "closed"'],
  ["wrong enum value nested", (v) => { v.messages[0].from = "bot"; }, "/messages/0/from", '"bot" is not one of'],
  ["missing required field", (v) => { delete v.messages[1].text; }, "/messages/1", 'missing required property "text"'],
  ["wrong type nested in messages[]", (v) => { v.messages[2].complete = "false"; }, "/messages/2/complete", "expected boolean, got string"],
];

for (const [name, change, pointer, problem] of CASES) {
  test(`invalid: ${name}`, () => {
    const problems = validateView(withChange(change));
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.ok(problems[0].startsWith(`${pointer}: `) && problems[0].includes(problem), problems[0]);
  });
}

// Negative controls: broken in ways the cases above do not cover; each must still be rejected,
// at the right place.
const CONTROLS = [
  ["root is an array", () => [], "(root)", "expected object, got array"],
  ["root is null", () => null, "(root)", "expected object, got null"],
  ["agent is a string", (v) => { v.agent = "Ada"; }, "/agent", "expected object or null, got string"],
  ["agent without avatar_url", (v) => { delete v.agent.avatar_url; }, "/agent", 'missing required property "avatar_url"'],
  ["live_agent without id", (v) => { delete v.live_agent.id; }, "/live_agent", 'missing required property "id"'],
  ["typing flag is a string", (v) => { v.typing.agent = "no"; }, "/typing/agent", "expected boolean, got string"],
  ["session_id is a number", (v) => { v.session_id = 7; }, "/session_id", "expected string or null, got integer"],
  ["messages is an object", (v) => { v.messages = {}; }, "/messages", "expected array or null, got object"],
  ["a message is null", (v) => { v.messages[1] = null; }, "/messages/1", "expected object, got null"],
  ["a suggestion is a number", (v) => { v.messages[0].suggestions[1] = 2; }, "/messages/0/suggestions/1", "expected string, got integer"],
  ["attachments is a string", (v) => { v.messages[0].attachments = "none"; }, "/messages/0/attachments", "expected array, got string"],
  ["status is not a status", (v) => { v.messages[1].status = "delivered"; }, "/messages/1/status", '"delivered" is not one of "sending", "sent", "failed"'],
  ["handoff in upper case", (v) => { v.handoff = "LIVE"; }, "/handoff", '"LIVE" is not one of'],
  ["queue position negative", (v) => { v.queue.position_in_queue = -1; }, "/queue/position_in_queue", "-1 is less than 0"],
  ["queue wait not an integer", (v) => { v.queue.estimated_wait_seconds = 1.5; }, "/queue/estimated_wait_seconds", "expected integer or null, got number"],
  ["client_handoff without queue_name", (v) => { delete v.client_handoff.queue_name; }, "/client_handoff", 'missing required property "queue_name"'],
  ["system_messages entry without level", (v) => { delete v.system_messages[0].level; }, "/system_messages/0", 'missing required property "level"'],
  ["ended is empty", (v) => { v.ended = {}; }, "/ended", 'missing required property "reason"'],
  ["language is a boolean", (v) => { v.language = true; }, "/language", "expected string or null, got boolean"],
  ["undefined field vanishes on the wire", (v) => { v.agent.name = undefined; }, "/agent", 'missing required property "name"'],
];

for (const [name, change, pointer, problem] of CONTROLS) {
  test(`control: ${name}`, () => {
    const view = clone(VALID);
    const replaced = change(view);
    const problems = validateView(replaced === undefined ? view : replaced);
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.ok(problems[0].startsWith(`${pointer}: `), `${problems[0]} should be at ${pointer}`);
    assert.ok(problems[0].includes(problem), `${problems[0]} should say ${problem}`);
  });
}

test("control from the schema itself: every top-level property rejects a value of no allowed type", () => {
  const { schema } = loadViewSchema();
  const names = Object.keys(schema.properties);
  assert.ok(names.length >= 12);
  for (const name of names) {
    const problems = validateView({ [name]: 0.5 }); // no property of the view allows a fraction
    assert.equal(problems.length, 1, `${name}: ${JSON.stringify(problems)}`);
    assert.ok(problems[0].startsWith(`/${name}: expected `), problems[0]);
  }
});

test("several problems are all reported", () => {
  const problems = validateView({ connection: "x", messages: [{ from: "user" }], ended: { reason: 1 } });
  assert.deepEqual(problems, [
    '/connection: "x" is not one of "connecting", "open", "reconnecting", "closed"',
    '/messages/0: missing required property "text"',
    '/messages/0: missing required property "complete"',
    "/ended/reason: expected string, got integer",
  ]);
});

test("the generic validator: oneOf, additionalProperties, #/definitions, const, allOf, pointer escaping", () => {
  const schema = {
    definitions: { Id: { type: "string", const: "a" } },
    type: "object",
    properties: {
      one: { oneOf: [{ type: "integer" }, { type: "number", minimum: 0 }] },
      id: { $ref: "#/definitions/Id" },
      both: { allOf: [{ type: "integer" }, { maximum: 3 }] },
      "a/b": { type: "string" },
    },
    additionalProperties: false,
  };
  assert.deepEqual(validate({ one: -1, id: "a", both: 3, "a/b": "x" }, schema), []);
  assert.deepEqual(validate({ one: 1 }, schema), ["/one: matches 2 of the oneOf alternatives, not exactly one"]);
  assert.deepEqual(validate({ one: "x" }, schema), ["/one: expected integer or number, got string"]);
  assert.deepEqual(validate({ id: "b" }, schema), ['/id: must be "a"']);
  assert.deepEqual(validate({ both: 4 }, schema), ["/both: 4 is more than 3"]);
  assert.deepEqual(validate({ "a/b": 1 }, schema), ["/a~1b: expected string, got integer"]);
  assert.deepEqual(validate({ extra: 1 }, schema), ["/extra: property not allowed"]);
  assert.deepEqual(validate({ x: 1 }, { additionalProperties: { type: "string" } }), ["/x: expected string, got integer"]);
  assert.deepEqual(validate([1, "x"], { items: false }), ["/0: not allowed here", "/1: not allowed here"]);
});
