// The docs' minimal JavaScript flow (spec §1.4), against any base URL: fetch a token, create a
// session, open the socket, wait for the history batch, then join and wait for the greeting.
//
//   node --experimental-websocket examples/minimal-flow.mjs [BASE_URL]
//
// BASE_URL defaults to $MESSAGING_BASE_URL, then http://127.0.0.1:8080. Prints one JSON line
// with what happened and exits 0 on success, 1 on failure (after 10 s at most).

const baseUrl = process.argv[2] ?? process.env.MESSAGING_BASE_URL ?? "http://127.0.0.1:8080";
const connectorToken = process.env.MESSAGING_CONNECTOR_TOKEN ?? "mock-connector-token";
const host = process.env.MESSAGING_HOST ?? "localhost";

const fail = (why) => {
  console.log(JSON.stringify({ ok: false, error: String(why) }));
  process.exit(1);
};
setTimeout(() => fail("timed out after 10 s"), 10_000).unref();

const tokenResponse = await fetch(`${baseUrl}/api/v1/access-token`, {
  method: "POST",
  headers: { "Content-Type": "application/json", "X-Token": connectorToken, "X-Host": host },
  body: "{}",
});
if (!tokenResponse.ok) fail(`access-token: ${tokenResponse.status} ${await tokenResponse.text()}`);
const { access_token: accessToken } = await tokenResponse.json();

const sessionResponse = await fetch(`${baseUrl}/api/v1/sessions`, {
  method: "POST",
  headers: { "Content-Type": "application/json", Authorization: `Bearer ${accessToken}` },
  body: JSON.stringify({ streaming_enabled: false }),
});
if (!sessionResponse.ok) fail(`sessions: ${sessionResponse.status} ${await sessionResponse.text()}`);
const { session_id: sessionId } = await sessionResponse.json();

const wsUrl = baseUrl.replace(/^http/, "ws") + `/ws?session_id=${sessionId}&access_token=${accessToken}`;
const socket = new WebSocket(wsUrl);
const received = [];
let joined = false;

socket.onerror = () => fail("websocket error");
socket.onclose = (event) => fail(`closed early with ${event.code}`);
socket.onmessage = (message) => {
  const event = JSON.parse(message.data);
  received.push(event.type);
  // Wait for the history before deciding to join (spec §11 WS-2).
  if (event.type === "EVENT_TYPE_EVENT_BATCH" && !joined) {
    const history = event.payload.events.map((e) => e.type);
    if (!history.includes("EVENT_TYPE_POLY_AGENT_JOINED")) {
      joined = true;
      socket.send(JSON.stringify({ type: "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN", payload: {} }));
    }
  }
  if (event.type === "EVENT_TYPE_POLY_AGENT_MESSAGE") {
    socket.onclose = null;
    socket.close(1000);
    console.log(JSON.stringify({ ok: true, session_id: sessionId, greeting: event.payload.text, received }));
    process.exit(0);
  }
};
