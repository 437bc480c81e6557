// A small but complete Messaging API client in plain Node 20 (built-in fetch and WebSocket, no npm
// packages): the "SDK" the Node example driver (driver.mjs) runs. It keeps the obligations of
// spec §11 the conformance kit checks: token and session, REST retries, WebSocket with history,
// agent join, heartbeats, reconnect with backoff, dedupe, ordering, resends, and persistence for
// an app restart.
//
//   const client = new Client({ baseUrl, connectorToken, host }, streaming);
//   await client.start(); client.send("hi"); client.view(); client.stop();

import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

const log = (text) => process.stderr.write(text + "\n");

export class Client {
  // env: { baseUrl, connectorToken, host }.
  constructor(env, streaming) {
    this.env = env;
    this.streaming = streaming;
    this.seen = new Set(); // event ids: dedupe (MSG-2)
    this.log = []; // [key, event] sorted by key (MSG-3)
    this.lastSequence = 0;
    this.arrivals = 0;
    this.pending = []; // unechoed user messages {id, text, frame, resends, failed, due}
    this.connection = "connecting";
    this.joinSent = false;
    this.ended = false;
    this.stopped = false;
    this.failures = 0;
    // Unechoed messages are resent on a 1 s tick (MSG-5).
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  // POST with retries: 429 waits Retry-After; 5xx backs off 0.5 s, 1 s, 2 s (AUTH-5).
  async post(path, init) {
    let delay = 500;
    for (let attempt = 1; ; attempt += 1) {
      const response = await fetch(`${this.env.baseUrl}${path}`, { method: "POST", ...init });
      const retry = response.status === 429 || response.status >= 500;
      if (!retry || attempt === 5) return response;
      let wait;
      if (response.status === 429) {
        wait = (Number(response.headers.get("retry-after")) || 1) * 1000;
      } else {
        wait = delay;
        delay = Math.min(delay * 2, 30000);
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  async newSession() {
    const json = { "Content-Type": "application/json" };
    const token = await this.post("/api/v1/access-token", {
      headers: { ...json, "X-Token": this.env.connectorToken, "X-Host": this.env.host },
      body: "{}",
    });
    if (!token.ok) throw new Error(`access-token: ${token.status}`);
    this.token = (await token.json()).access_token;
    const session = await this.post("/api/v1/sessions", {
      headers: { ...json, Authorization: `Bearer ${this.token}` },
      body: JSON.stringify({ streaming_enabled: this.streaming, platform: "custom" }),
    });
    if (!session.ok) throw new Error(`sessions: ${session.status}`);
    this.sessionId = (await session.json()).session_id;
  }

  url(cursor) {
    const base = this.env.baseUrl.replace(/^http/, "ws");
    const cursorPart = cursor > 0 ? `&cursor=${cursor}` : "";
    return `${base}/ws?session_id=${this.sessionId}&access_token=${this.token}${cursorPart}`;
  }

  capabilities() {
    const start = this.log.find(([, e]) => e.type === "EVENT_TYPE_SESSION_START");
    return start ? start[1].payload.capabilities ?? {} : {};
  }

  async start() {
    await this.newSession();
    await new Promise((resolve, reject) => this.connect(0, resolve, reject));
  }

  connect(cursor, resolve, reject) {
    const socket = new WebSocket(this.url(cursor));
    this.socket = socket;
    let opened = false;
    let history = false;
    socket.onopen = () => {
      opened = true;
      this.failures = 0;
      this.connection = "open";
      resolve?.();
    };
    socket.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return; // undecodable frames are ignored (ERR-2)
      }
      const batchEnds = event.type === "EVENT_TYPE_EVENT_BATCH" &&
        (event.payload?.events ?? []).some((e) => e.type === "EVENT_TYPE_SESSION_END");
      this.ingest(event);
      if (event.type === "EVENT_TYPE_EVENT_BATCH" && !history) {
        history = true;
        if (!batchEnds) this.onHistory(socket);
      }
      if (event.type === "EVENT_TYPE_SESSION_END" || batchEnds) {
        this.ended = true;
        clearInterval(this.heartbeat);
        socket.close(1000); // the client closes the socket itself (UX-4)
      }
    };
    let closed = false;
    // Node's WebSocket may report a refused handshake with `error` alone: handle either once.
    socket.onclose = socket.onerror = () => {
      if (closed || (opened && socket.readyState !== WebSocket.CLOSED)) return;
      closed = true;
      this.ready = false;
      clearInterval(this.heartbeat);
      if (this.socket !== socket) return;
      if (this.ended || this.stopped) {
        this.connection = "closed";
        return;
      }
      if (!opened && resolve) {
        reject?.(new Error("the WebSocket did not open"));
        return;
      }
      this.connection = "reconnecting";
      if (opened) {
        // The first retry 1 s after the drop (RC-3).
        this.failures = 0;
        this.retryAfter(1000);
      } else {
        this.attemptFailed();
      }
    };
  }

  retryAfter(ms) {
    setTimeout(() => {
      if (!this.stopped && !this.ended) this.connect(this.lastSequence);
    }, ms);
  }

  // A reconnect attempt was refused.
  async attemptFailed() {
    this.failures += 1;
    // A browser-style WebSocket cannot read a refusal's status: ask with a plain GET, and on
    // 404 or 401 start over with a new token and session (RC-5).
    const probe = await fetch(this.url(this.lastSequence).replace(/^ws/, "http")).catch(() => null);
    if (probe && (probe.status === 404 || probe.status === 401)) {
      try {
        await this.newSession();
        this.reset();
        this.connect(0);
        return;
      } catch (error) {
        log(`new session failed: ${error}`);
      }
    }
    // Exactly max_reconnect_attempts attempts (RC-4), then the failure shows.
    const max = this.capabilities().max_reconnect_attempts ?? 5;
    if (this.failures >= max) {
      this.connection = "closed";
      return;
    }
    // 2 s, 4 s, … capped at 30 s (RC-3).
    this.retryAfter(Math.min(1000 * 2 ** this.failures, 30000));
  }

  reset() {
    this.seen = new Set();
    this.log = [];
    this.lastSequence = 0;
    this.joinSent = false;
    this.pending = [];
  }

  // What survives an app restart, kept in the working directory.
  save(path) {
    const state = {
      token: this.token, sessionId: this.sessionId, streaming: this.streaming,
      events: this.log.map(([, e]) => e), pending: this.pending, joinSent: this.joinSent,
    };
    writeFileSync(path, JSON.stringify(state));
  }

  static restore(env, path) {
    const state = JSON.parse(readFileSync(path, "utf8"));
    const client = new Client(env, state.streaming);
    Object.assign(client, { token: state.token, sessionId: state.sessionId, joinSent: state.joinSent });
    for (const event of state.events) client.ingestOne(event);
    client.pending = state.pending.map((p) => ({ ...p, due: Date.now() + 5000 }));
    // Messages that never went out before the restart go once the history has arrived.
    client.queued = client.pending.filter((p) => !p.sent && !p.failed).map((p) => p.frame);
    client.connect(client.lastSequence);
    return client;
  }

  onHistory(socket) {
    const interval = this.capabilities().heartbeat_interval_seconds ?? 30;
    clearInterval(this.heartbeat);
    if (interval > 0) {
      this.heartbeat = setInterval(() => this.sendFrame({ type: "EVENT_TYPE_HEARTBEAT", payload: {} }), interval * 1000);
    }
    const joined = this.log.some(([, e]) => e.type === "EVENT_TYPE_POLY_AGENT_JOINED");
    if (!joined && !this.joinSent) {
      this.joinSent = true; // after the history, once (WS-2/3/4)
      socket.send(JSON.stringify({ type: "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN", payload: {} }));
    }
    // Messages that went out before a drop and are not echoed in the history go again; those
    // never sent are still queued and go once.
    for (const p of this.pending.filter((p) => p.sent && !p.failed)) socket.send(p.frame);
    for (const frame of this.queued ?? []) this.transmit(socket, frame);
    this.queued = [];
    this.ready = true;
  }

  ingest(event) {
    if (event.type === "EVENT_TYPE_EVENT_BATCH") {
      for (const inner of event.payload?.events ?? []) {
        // Appendix A: a payload may sit under a key named after the type.
        if (inner.payload === undefined) {
          const key = inner.type.replace(/^EVENT_TYPE_/, "").toLowerCase();
          inner.payload = inner[key] ?? {};
        }
        this.ingestOne(inner); // flatten (MSG-1)
      }
      return;
    }
    this.ingestOne(event);
  }

  ingestOne(event) {
    if (!event.id || this.seen.has(event.id)) return;
    this.seen.add(event.id);
    const clientId = event.metadata?.custom?.client_event_id;
    if (event.type === "EVENT_TYPE_USER_MESSAGE" && clientId) {
      this.pending = this.pending.filter((p) => p.id !== clientId);
    }
    this.arrivals += 1;
    let key;
    if (Number.isInteger(event.sequence)) {
      this.lastSequence = Math.max(this.lastSequence, event.sequence);
      key = [event.sequence, 0];
    } else {
      key = [this.lastSequence, this.arrivals];
    }
    const after = (k) => k[0] > key[0] || (k[0] === key[0] && k[1] > key[1]);
    const at = this.log.findIndex(([k]) => after(k));
    this.log.splice(at === -1 ? this.log.length : at, 0, [key, event]);
  }

  sendFrame(value) {
    const frame = typeof value === "string" ? value : JSON.stringify(value);
    if (this.ready && this.socket?.readyState === WebSocket.OPEN) this.transmit(this.socket, frame);
    else (this.queued ??= []).push(frame);
  }

  transmit(socket, frame) {
    socket.send(frame);
    const pending = this.pending.find((p) => p.frame === frame);
    if (pending && !pending.sent) {
      pending.sent = true;
      pending.due = Date.now() + 5000;
    }
  }

  send(text) {
    const id = randomUUID();
    const frame = JSON.stringify({
      type: "EVENT_TYPE_USER_MESSAGE",
      payload: { text },
      metadata: { custom: { client_event_id: id } },
    });
    const limit = this.capabilities().max_message_size_bytes ?? 131072;
    if (this.ended) throw new Error("the conversation is over");
    if (Buffer.byteLength(frame) > limit) throw new Error("message too large"); // WS-7
    this.pending.push({ id, text, frame, resends: 0, failed: false, sent: false, due: Date.now() + 5000 });
    this.sendFrame(frame);
  }

  tick() {
    // Resend unechoed messages 5 s, 15 s and 30 s after they were sent; failed 5 s after the
    // third resend (MSG-5).
    const now = Date.now();
    for (const p of this.pending) {
      if (p.failed || !p.sent || now < p.due) continue;
      if (p.resends >= 3) {
        p.failed = true;
        continue;
      }
      p.resends += 1;
      p.due = now + (p.resends >= 3 ? 5000 : 5000 * (p.resends + 1));
      this.sendFrame(p.frame);
    }
  }

  view() {
    const messages = [];
    const chunks = new Map();
    const echoed = new Set();
    const typing = { agent: false, live_agent: false };
    const view = {
      connection: this.connection,
      session_id: this.sessionId ?? null,
      agent: null,
      live_agent: null,
      handoff: "none",
      queue: null,
      client_handoff: null,
      language: null,
      ended: null,
    };
    const systemMessages = [];
    const reply = (m, from) => ({
      message_id: m.message_id,
      from,
      text: m.text ?? "",
      attachments: m.attachments ?? [],
      suggestions: (m.response_suggestions ?? []).map((s) => s.message_text),
      complete: true,
      status: null,
    });
    for (const [, e] of this.log) {
      const p = e.payload ?? {};
      switch (e.type) {
        case "EVENT_TYPE_USER_MESSAGE": {
          const id = e.metadata?.custom?.client_event_id;
          if (id && echoed.has(id)) break;
          if (id) echoed.add(id);
          messages.push({ ...reply(p, "user"), status: "sent" });
          break;
        }
        case "EVENT_TYPE_POLY_AGENT_MESSAGE": typing.agent = false; messages.push(reply(p, "agent")); break;
        case "EVENT_TYPE_POLY_AGENT_LEFT": typing.agent = false; break;
        case "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK":
          typing.agent = false;
          if (!chunks.has(p.message_id)) {
            chunks.set(p.message_id, []);
            messages.push(reply({ message_id: p.message_id }, "agent"));
          }
          chunks.get(p.message_id).push(p);
          break;
        case "EVENT_TYPE_LIVE_AGENT_MESSAGE": typing.live_agent = false; messages.push(reply(p, "live_agent")); break;
        case "EVENT_TYPE_POLY_AGENT_THINKING": typing.agent = true; break;
        case "EVENT_TYPE_LIVE_AGENT_TYPING": typing.live_agent = p.state !== "TYPING_STATE_STOPPED"; break;
        case "EVENT_TYPE_POLY_AGENT_JOINED": view.agent = { name: p.agent_name, avatar_url: p.agent_avatar_url }; break;
        case "EVENT_TYPE_LIVE_AGENT_JOINED": view.live_agent = p.agent; view.handoff = "live"; break;
        case "EVENT_TYPE_LIVE_AGENT_LEFT": typing.live_agent = false; view.live_agent = null; view.handoff = "ended"; break;
        case "EVENT_TYPE_POLY_AGENT_TRIGGERED_HANDOFF": typing.agent = false; view.handoff = "triggered"; break;
        case "EVENT_TYPE_HANDOFF_ACCEPTED": view.handoff = "accepted"; break;
        case "EVENT_TYPE_HANDOFF_QUEUE_STATUS":
          view.queue = { queue_name: p.queue_name, position_in_queue: p.position_in_queue, estimated_wait_seconds: p.estimated_wait_seconds };
          break;
        case "EVENT_TYPE_CLIENT_HANDOFF_REQUIRED":
          view.handoff = "client_required";
          view.client_handoff = { reason: p.reason, queue_name: p.queue_name };
          break;
        case "EVENT_TYPE_HANDOFF_FAILED": view.handoff = "failed"; break;
        case "EVENT_TYPE_HANDOFF_TIMEOUT": view.handoff = "timeout"; break;
        case "EVENT_TYPE_LANGUAGE_CHANGED": view.language = p.language_code; break;
        case "EVENT_TYPE_SYSTEM_MESSAGE": typing.agent = false; systemMessages.push({ level: p.level, message: p.message }); break;
        case "EVENT_TYPE_SESSION_END": typing.agent = false; typing.live_agent = false; view.ended = { reason: p.reason }; break;
        default: break; // unknown types are ignored (ERR-2)
      }
    }
    // Chunks in chunk_index order; complete once every chunk up to the final one is here (MSG-4).
    for (const m of messages) {
      const parts = chunks.get(m.message_id);
      if (!parts) continue;
      const byIndex = new Map(parts.map((c) => [c.chunk_index, c]));
      const ordered = [];
      for (let i = 1; byIndex.has(i); i += 1) ordered.push(byIndex.get(i));
      m.text = ordered.map((c) => c.text ?? "").join("");
      m.attachments = ordered.flatMap((c) => c.attachments ?? []);
      m.suggestions = ordered.flatMap((c) => (c.response_suggestions ?? []).map((s) => s.message_text));
      m.complete = ordered.some((c) => c.is_complete === true);
    }
    for (const p of this.pending) {
      messages.push({ message_id: null, from: "user", text: p.text, attachments: [], suggestions: [], complete: true, status: p.failed ? "failed" : "sending" });
    }
    return { ...view, typing, messages, system_messages: systemMessages };
  }

  stop() {
    this.stopped = true;
    clearInterval(this.ticker);
    clearInterval(this.heartbeat);
    this.socket?.close(1000);
  }
}
