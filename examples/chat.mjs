// A minimal terminal chat client for the mock (Node 20, no packages): the docs' minimal flow
// plus a prompt. Type a line to send it as the user; `/quit` leaves the conversation. It
// reconnects with the cursor after a drop, so the console's faults can be watched from here.
//
//   node --experimental-websocket examples/chat.mjs [BASE_URL] [--json]
//
// BASE_URL defaults to $MESSAGING_BASE_URL, then http://127.0.0.1:8080. With --json it prints
// every event it receives as one JSON line (for scripts and tests) instead of a chat transcript.

import { createInterface } from "node:readline";

const args = process.argv.slice(2);
const json = args.includes("--json");
const baseUrl = args.find((a) => !a.startsWith("--")) ?? process.env.MESSAGING_BASE_URL ?? "http://127.0.0.1:8080";
const connectorToken = process.env.MESSAGING_CONNECTOR_TOKEN ?? "mock-connector-token";
const host = process.env.MESSAGING_HOST ?? "localhost";

const say = (text) => { if (!json) console.log(text); };
const post = async (path, headers, body) => {
  const response = await fetch(`${baseUrl}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
};

const { access_token: token } = await post("/api/v1/access-token", { "X-Token": connectorToken, "X-Host": host }, {});
const { session_id: sessionId } = await post("/api/v1/sessions", { Authorization: `Bearer ${token}` }, { streaming_enabled: false });
say(`session ${sessionId} (type a message, /quit to leave)`);

const seen = new Set();
let cursor = 0;
let socket;
let ended = false;
let retries = 0;
let joinSent = false;
let agentName = "agent";

function show(event) {
  if (json) return console.log(JSON.stringify(event));
  const p = event.payload ?? {};
  const lines = {
    EVENT_TYPE_POLY_AGENT_JOINED: () => { agentName = p.agent_name; return `* ${agentName} joined`; },
    EVENT_TYPE_POLY_AGENT_MESSAGE: () => `[${agentName}] ${p.text}`,
    EVENT_TYPE_LIVE_AGENT_JOINED: () => `* ${p.agent?.name} (live agent) joined`,
    EVENT_TYPE_LIVE_AGENT_MESSAGE: () => `[live agent] ${p.text}`,
    EVENT_TYPE_LIVE_AGENT_LEFT: () => "* the live agent left",
    EVENT_TYPE_SYSTEM_MESSAGE: () => `! ${p.message}`,
    EVENT_TYPE_SESSION_END: () => `* session ended (${p.reason})`,
  };
  const line = lines[event.type]?.();
  if (line) console.log(line);
}

function receive(event) {
  if (event.type === "EVENT_TYPE_EVENT_BATCH") return event.payload.events.forEach(receive);
  if (event.id && seen.has(event.id)) return;
  if (event.id) seen.add(event.id);
  if (typeof event.sequence === "number") cursor = Math.max(cursor, event.sequence);
  show(event);
  if (event.type === "EVENT_TYPE_SESSION_END") ended = true;
}

function connect() {
  const ws = baseUrl.replace(/^http/, "ws");
  socket = new WebSocket(`${ws}/ws?session_id=${sessionId}&access_token=${token}${cursor ? `&cursor=${cursor}` : ""}`);
  socket.onopen = () => { retries = 0; };
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    const batch = event.type === "EVENT_TYPE_EVENT_BATCH" ? event.payload.events.map((e) => e.type) : null;
    receive(event);
    // Join once, after the first history replay, unless the agent is already there (WS-2).
    if (batch && !joinSent) {
      joinSent = true;
      if (!batch.includes("EVENT_TYPE_POLY_AGENT_JOINED")) socket.send(JSON.stringify({ type: "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN", payload: {} }));
    }
  };
  socket.onclose = (event) => {
    if (ended || event.code === 1000) return process.exit(0);
    const wait = Math.min(500 * 2 ** retries, 5000);
    retries += 1;
    say(`* connection closed (${event.code}); reconnecting in ${wait} ms`);
    setTimeout(connect, wait);
  };
}
connect();
setInterval(() => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify({ type: "EVENT_TYPE_HEARTBEAT", payload: {} })), 30_000);

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "/quit") {
    socket.send(JSON.stringify({ type: "EVENT_TYPE_USER_END_SESSION", payload: {} }));
  } else if (line.trim()) {
    socket.send(JSON.stringify({ type: "EVENT_TYPE_USER_MESSAGE", payload: { text: line } }));
  }
});
