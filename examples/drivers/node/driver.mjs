// A conformance driver for the Messaging API, in plain Node 20 (built-in fetch and WebSocket, no
// npm packages). The client ("SDK") is client.mjs: it keeps the obligations of spec §11 the
// conformance kit checks. This file is only the adapter from the driver contract
// (docs/driver-contract.md) to that client; the contract itself (ready line, NDJSON
// framing, replies, exit codes, view validation) is drivers/js/driver.mjs.
//
//   node --experimental-websocket examples/drivers/node/driver.mjs
//
// Environment: MESSAGING_BASE_URL, MESSAGING_CONNECTOR_TOKEN, MESSAGING_HOST.

import { runDriver } from "../../../drivers/js/driver.mjs";
import { Client } from "./client.mjs";

// The working directory is the driver's to persist in (contract §1).
const STATE_FILE = ".node-driver-session.json";
let client = null;

const adapter = {
  async start({ streaming }, { env }) {
    client?.stop();
    client = new Client(env, Boolean(streaming));
    await client.start();
  },
  send({ text }) {
    client.send(text);
  },
  typing({ state }) {
    const typing = state === "started" ? "TYPING_STATE_STARTED" : "TYPING_STATE_STOPPED";
    client.sendFrame({ type: "EVENT_TYPE_USER_TYPING", payload: { state: typing } });
  },
  tapSuggestion({ message_id, index }) {
    const message = client.view().messages.find((m) => m.message_id === message_id);
    const text = message?.suggestions?.[index];
    if (text === undefined) throw new Error("no such suggestion");
    client.send(text);
  },
  end() {
    client.sendFrame({ type: "EVENT_TYPE_USER_END_SESSION", payload: {} });
  },
  view() {
    return client ? client.view() : { connection: "closed" };
  },
  // An app restart: the SDK instance goes, a new one resumes from what was persisted.
  restart(_, { env }) {
    if (!client) throw new Error("no conversation");
    client.save(STATE_FILE);
    client.stop();
    client = Client.restore(env, STATE_FILE);
  },
  exit() {
    client?.stop();
  },
};

await runDriver({ name: "node-reference-driver", version: "0.1.0", adapter });
