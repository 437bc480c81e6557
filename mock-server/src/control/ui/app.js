// The messaging-mock console. Plain browser JavaScript, no dependencies; it uses only the public
// control API under /_mock/ (the same one `messaging-mock ctl` and the typed MockServer methods
// use), so everything it does can be scripted too.

const API = "/_mock";
const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
};

// --- talking to the control API ---------------------------------------------------------------

let token = sessionStorage.getItem("mock-control-token");

async function api(method, path, body) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    return { status: 0, ok: false, body: { message: `the mock did not answer (${error.message})` } };
  }
  if (response.status === 401) $("token-form").hidden = false;
  const text = await response.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  return { status: response.status, ok: response.ok, body: parsed };
}

/** Runs a control action and shows the server's answer (or its error text). */
async function act(label, method, path, body) {
  const answer = await api(method, path, body);
  const detail = answer.ok
    ? JSON.stringify(answer.body)
    : (answer.body && answer.body.message) || JSON.stringify(answer.body);
  const line = `${label}: ${answer.status || "no answer"} ${answer.ok ? "OK" : "refused"} — ${detail}`;
  const shown = $("answer");
  shown.textContent = line;
  shown.className = answer.ok ? "answer" : "answer refused";
  shown.dataset.status = String(answer.status);
  const item = el("li", { class: answer.ok ? "" : "refused", text: `${new Date().toLocaleTimeString()} ${line}` });
  $("answers").prepend(item);
  while ($("answers").children.length > 50) $("answers").lastChild.remove();
  refreshSessions();
  return answer;
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token-input").value;
  sessionStorage.setItem("mock-control-token", token);
  $("token-form").hidden = true;
  boot();
});

// --- sessions, live ---------------------------------------------------------------------------

let sessions = [];
let selected = null;
/** The newest sessions the list shows; the count says how many there are in all. */
const LIST_LIMIT = 200;
let total = 0;

function stateClass(summary) {
  if (summary.phase === "ended") return "state-ended";
  if (summary.phase === "live_agent") return "state-live";
  if (summary.phase === "handoff_queued") return "state-queued";
  return "";
}

function describeState(summary) {
  if (summary.phase === "ended") return `ended (${summary.end_reason})`;
  if (summary.phase === "live_agent") return `live agent ${summary.live_agent_id}`;
  if (summary.phase === "handoff_queued") return "queued for a live agent";
  return summary.phase.replaceAll("_", " ");
}

function renderSessions() {
  const body = $("sessions").tBodies[0];
  const rows = sessions
    .slice()
    .sort((a, b) => b.created_at_ms - a.created_at_ms)
    .map((s) =>
      el(
        "tr",
        { class: s.session_id === selected ? "selected" : "", "data-session": s.session_id },
        el("td", {}, el("button", {
          type: "button",
          text: s.session_id.slice(0, 8),
          title: s.session_id,
          "aria-label": `Open session ${s.session_id}`,
          onclick: () => select(s.session_id),
        }), el("div", { class: "scenario", text: s.scenario })),
        el("td", { class: stateClass(s), text: describeState(s) }),
        el("td", { text: `${s.open_sockets} · ${s.last_sequence}` }),
      ),
    );
  body.replaceChildren(...rows);
  $("session-count").textContent = total > sessions.length ? `${sessions.length} newest of ${total}` : String(sessions.length);
  $("no-sessions").hidden = sessions.length > 0;
  const current = sessions.find((s) => s.session_id === selected);
  if (current) renderMeta(current);
}

function renderMeta(s) {
  $("session-meta").textContent =
    `${describeState(s)} · status ${s.status} · ${s.open_sockets} open socket(s) · last sequence ${s.last_sequence}` +
    ` · scenario ${s.scenario} · connector ${s.connector} · ${s.streaming ? "streaming" : "not streaming"}` +
    (s.recording_error ? ` · recording stopped: ${s.recording_error}` : "");
  $("session-meta").dataset.state = s.phase;
}

let refreshing = false;
async function refreshSessions() {
  if (refreshing) return;
  refreshing = true;
  try {
    const [list, health] = await Promise.all([api("GET", `/sessions?limit=${LIST_LIMIT}`), api("GET", "/health")]);
    if (health.ok) total = health.body.sessions;
    if (list.ok) {
      sessions = list.body;
      renderSessions();
    }
    if (health.ok) {
      const h = health.body;
      $("health").textContent = `${h.sessions} session(s) · mock clock ${(h.clock_ms / 1000).toFixed(1)} s × ${h.clock_scale}`;
      $("clock").textContent = `${(h.clock_ms / 1000).toFixed(1)} s since start, scale ${h.clock_scale}`;
    } else {
      $("health").textContent = list.status === 0 ? "the mock is not answering" : `health: ${health.status}`;
    }
  } finally {
    refreshing = false;
  }
}

// --- one session: journal and conversation ----------------------------------------------------

let follow = null; // AbortController of the running journal follow
let entries = [];
let renderQueued = false;

function select(id) {
  if (selected === id) return;
  selected = id;
  if (location.hash !== `#session=${encodeURIComponent(id)}`) {
    history.replaceState(null, "", `#session=${encodeURIComponent(id)}`);
  }
  follow?.abort();
  entries = [];
  $("journal").tBodies[0].replaceChildren();
  $("transcript").replaceChildren();
  $("journal-filter").replaceChildren(el("option", { value: "", text: "everything" }));
  knownTypes.clear();
  $("session-h").textContent = `Session ${id}`;
  $("session-body").hidden = false;
  $("download").href = `${API}/sessions/${encodeURIComponent(id)}/journal?format=jsonl`;
  $("download").setAttribute("download", `${id}.jsonl`);
  renderSessions();
  followJournal(id);
}

async function followJournal(id) {
  const controller = new AbortController();
  follow = controller;
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  try {
    const response = await fetch(`${API}/sessions/${encodeURIComponent(id)}/journal?follow=true`, {
      headers,
      signal: controller.signal,
    });
    if (!response.ok) {
      $("session-meta").textContent = `journal: ${response.status} ${await response.text()}`;
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.trim()) addEntry(JSON.parse(line));
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") $("session-meta").textContent = `journal stopped: ${error.message}`;
  }
}

/** The events a server frame carries: itself, or a batch's events. */
function eventsOf(frame) {
  if (!frame || typeof frame !== "object") return [];
  if (frame.type === "EVENT_TYPE_EVENT_BATCH") {
    const inner = payloadOf(frame).events;
    return Array.isArray(inner) ? inner : [];
  }
  return [frame];
}

/** An event's payload, also under the alternate key of spec Appendix A. */
function payloadOf(event) {
  if (event.payload && typeof event.payload === "object") return event.payload;
  const key = String(event.type || "").replace(/^EVENT_TYPE_/, "").toLowerCase();
  return (event[key] && typeof event[key] === "object") ? event[key] : {};
}

const short = (type) => String(type || "?").replace(/^EVENT_TYPE_/, "");

const knownTypes = new Set();

function noteType(type) {
  if (knownTypes.has(type)) return;
  knownTypes.add(type);
  const filter = $("journal-filter");
  const options = [...filter.options].slice(1).map((o) => o.value).concat(type).sort();
  const current = filter.value;
  filter.replaceChildren(
    el("option", { value: "", text: "everything" }),
    ...options.map((value) => el("option", { value, text: value })),
  );
  filter.value = current;
}

function detailOf(entry, frame) {
  switch (entry.kind) {
    case "http":
      return `${entry.endpoint} → ${entry.status}${entry.error ? ` ${entry.error}` : ""}`;
    case "handshake": {
      const query = Object.entries(entry.query || {}).map(([k, v]) => `${k}=${v}`).join("&");
      return `→ ${entry.status}${entry.error ? ` ${entry.error}` : ""} ${query}`;
    }
    case "close":
      return `${entry.code ?? "no close frame (drop)"} by ${entry.by}`;
    case "timer":
      return entry.what;
    case "fault":
      return entry.fault;
    case "control":
      return entry.action;
    default:
      break;
  }
  if (entry.error) return `decode error: ${entry.error}${entry.text ? ` — ${entry.text}` : ""}`;
  if (!frame) return entry.text || "";
  const p = payloadOf(frame);
  if (frame.type === "EVENT_TYPE_EVENT_BATCH") return `${eventsOf(frame).length} event(s)`;
  const parts = [];
  if (typeof p.text === "string") parts.push(JSON.stringify(p.text));
  if (p.chunk_index !== undefined) parts.push(`chunk ${p.chunk_index}${p.is_complete ? " (last)" : ""}`);
  if (p.state) parts.push(p.state);
  if (p.reason) parts.push(p.reason);
  if (p.message) parts.push(p.message);
  if (frame.id) parts.push(`id ${frame.id}`);
  return parts.join(" · ");
}

function copy(text) {
  const done = () => {
    $("answer").textContent = "Copied the frame to the clipboard.";
    $("answer").className = "answer";
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
  } else {
    fallbackCopy(text, done);
  }
}

function fallbackCopy(text, done) {
  const area = el("textarea", { class: "sr" });
  area.value = text;
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
  done();
}

function journalRow(entry, frame, t0, nested) {
  const client = entry.kind === "client_frame";
  const server = entry.kind === "server_frame";
  const type = frame?.type ? short(frame.type) : entry.kind;
  noteType(type);
  const classes = [client ? "in" : server ? "out" : "other"];
  if (entry.error || (entry.kind === "handshake" && entry.status >= 400)) classes.push("error");
  if (nested) classes.push("nested");
  const shown = nested ? frame : (frame ?? entry);
  return el(
    "tr",
    { class: classes.join(" "), "data-type": type, "data-kind": entry.kind },
    el("td", { text: nested ? "" : String(entry.at_ms - t0) }),
    el("td", { text: nested ? "" : client ? "→" : server ? "←" : "·", title: client ? "client to mock" : server ? "mock to client" : "" }),
    el("td", { text: nested ? "" : String(entry.conn ?? (server ? "all" : "")) }),
    el("td", { text: frame && frame.sequence != null ? String(frame.sequence) : "" }),
    el("td", { text: type }),
    el("td", { text: detailOf(entry, frame), title: detailOf(entry, frame) }),
    el("td", {}, el("button", {
      type: "button",
      text: "Copy",
      "aria-label": `Copy ${type} as JSON`,
      onclick: () => copy(JSON.stringify(shown, null, 2)),
    })),
  );
}

function applyFilter(row) {
  const wanted = $("journal-filter").value;
  row.hidden = wanted !== "" && row.dataset.type !== wanted;
}

function addEntry(entry) {
  entries.push(entry);
  const t0 = entries[0].at_ms;
  const body = $("journal").tBodies[0];
  const frame = entry.frame && typeof entry.frame === "object" ? entry.frame : null;
  const rows = [journalRow(entry, frame, t0, false)];
  if (entry.kind === "server_frame" && frame?.type === "EVENT_TYPE_EVENT_BATCH") {
    for (const inner of eventsOf(frame)) rows.push(journalRow(entry, inner, t0, true));
  }
  rows.forEach(applyFilter);
  body.append(...rows);
  $("journal-count").textContent = String(entries.length);
  if (!renderQueued) {
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      renderTranscript();
      if ($("follow").checked) {
        const scroll = $("journal-scroll");
        scroll.scrollTop = scroll.scrollHeight;
      }
    });
  }
}

$("journal-filter").addEventListener("change", () => {
  for (const row of $("journal").tBodies[0].rows) applyFilter(row);
});

/** The conversation as the server sent it: every event once (by id), in sequence order. */
function conversation() {
  const seen = new Set();
  const events = [];
  let thinking = false;
  let liveTyping = false;
  let arrival = 0;
  for (const entry of entries) {
    if (entry.kind !== "server_frame") continue;
    for (const event of eventsOf(entry.frame)) {
      const key = event.id ?? `${event.type}#${arrival}`;
      arrival += 1;
      if (seen.has(key)) continue;
      seen.add(key);
      // Indicators follow arrival order: on until the next message (or the end) arrives.
      if (event.type === "EVENT_TYPE_POLY_AGENT_THINKING") thinking = true;
      else if (event.type === "EVENT_TYPE_LIVE_AGENT_TYPING") liveTyping = payloadOf(event).state === "TYPING_STATE_STARTED";
      else if (event.sequence != null) {
        if (!["EVENT_TYPE_USER_MESSAGE", "EVENT_TYPE_HEARTBEAT"].includes(event.type)) thinking = false;
        if (["EVENT_TYPE_LIVE_AGENT_MESSAGE", "EVENT_TYPE_LIVE_AGENT_LEFT", "EVENT_TYPE_SESSION_END"].includes(event.type)) liveTyping = false;
      }
      if (event.sequence != null) events.push({ event, arrival, sequence: event.sequence });
    }
  }
  events.sort((a, b) => a.sequence - b.sequence || a.arrival - b.arrival);
  return { events: events.map((e) => e.event), thinking, liveTyping };
}

function bubble(kind, who, text, extra) {
  const node = el("li", { class: `msg ${kind}` }, el("span", { class: "who", text: who }), text);
  if (extra?.suggestions?.length) {
    node.append(el("div", { class: "suggestions" }, ...extra.suggestions.map((s) => el("span", { text: s }))));
  }
  if (extra?.attachments?.length) {
    node.append(el("div", { class: "who", text: `${extra.attachments.length} attachment(s)` }));
  }
  return node;
}

function renderTranscript() {
  const items = [];
  const streams = new Map();
  let agentName = "Agent";
  const liveNames = new Map();
  const { events, thinking, liveTyping } = conversation();
  for (const event of events) {
    const p = payloadOf(event);
    const suggestions = (p.response_suggestions || []).map((s) => s.message_text);
    switch (event.type) {
      case "EVENT_TYPE_USER_MESSAGE":
        items.push(bubble("user", "User", p.text ?? ""));
        break;
      case "EVENT_TYPE_POLY_AGENT_JOINED":
        agentName = p.agent_name || agentName;
        items.push(el("li", { class: "event", text: `${agentName} joined` }));
        break;
      case "EVENT_TYPE_POLY_AGENT_MESSAGE":
        items.push(bubble("agent", agentName, p.text ?? "", { suggestions, attachments: p.attachments }));
        break;
      case "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK": {
        let stream = streams.get(p.message_id);
        if (!stream) {
          stream = { chunks: [], node: null };
          streams.set(p.message_id, stream);
          stream.node = bubble("agent streaming", agentName, "");
          items.push(stream.node);
        }
        stream.chunks.push(p);
        stream.chunks.sort((a, b) => (a.chunk_index ?? 0) - (b.chunk_index ?? 0));
        const text = stream.chunks.map((c) => c.text ?? "").join("");
        const complete = stream.chunks.some((c) => c.is_complete);
        const all = stream.chunks.flatMap((c) => (c.response_suggestions || []).map((s) => s.message_text));
        const fresh = bubble(complete ? "agent" : "agent streaming", agentName, text, { suggestions: all });
        items[items.indexOf(stream.node)] = fresh;
        stream.node = fresh;
        break;
      }
      case "EVENT_TYPE_LIVE_AGENT_JOINED":
        liveNames.set(p.agent?.id, p.agent?.name);
        items.push(el("li", { class: "event", text: `${p.agent?.name ?? "A live agent"} (live agent) joined` }));
        break;
      case "EVENT_TYPE_LIVE_AGENT_MESSAGE":
        items.push(bubble("live_agent", `${liveNames.get(p.agent_id) ?? p.agent_id ?? "Live agent"} (live agent)`, p.text ?? "", { suggestions, attachments: p.attachments }));
        break;
      case "EVENT_TYPE_LIVE_AGENT_LEFT":
        items.push(el("li", { class: "event", text: "The live agent left" }));
        break;
      case "EVENT_TYPE_POLY_AGENT_LEFT":
        items.push(el("li", { class: "event", text: `${agentName} left` }));
        break;
      case "EVENT_TYPE_POLY_AGENT_TRIGGERED_HANDOFF":
        items.push(el("li", { class: "event", text: "Handoff to a live agent triggered" }));
        break;
      case "EVENT_TYPE_HANDOFF_ACCEPTED":
        items.push(el("li", { class: "event", text: "Handoff accepted" }));
        break;
      case "EVENT_TYPE_HANDOFF_QUEUE_STATUS": {
        const parts = [p.queue_name, p.position_in_queue != null ? `#${p.position_in_queue}` : null,
          p.estimated_wait_seconds != null ? `about ${p.estimated_wait_seconds} s` : null].filter(Boolean);
        items.push(el("li", { class: "event", text: `In the queue: ${parts.join(", ") || "(no details)"}` }));
        break;
      }
      case "EVENT_TYPE_CLIENT_HANDOFF_REQUIRED":
        items.push(el("li", { class: "event", text: `The client must hand off: ${p.reason ?? "?"} → ${p.queue_name ?? "?"}` }));
        break;
      case "EVENT_TYPE_HANDOFF_FAILED":
        items.push(el("li", { class: "event", text: "Handoff failed" }));
        break;
      case "EVENT_TYPE_HANDOFF_TIMEOUT":
        items.push(el("li", { class: "event", text: "Handoff timed out" }));
        break;
      case "EVENT_TYPE_LANGUAGE_CHANGED":
        items.push(el("li", { class: "event", text: `Language changed to ${p.language ?? p.language_code ?? JSON.stringify(p)}` }));
        break;
      case "EVENT_TYPE_SYSTEM_MESSAGE":
        items.push(el("li", { class: `system ${p.level ?? ""}`, text: `${short(p.level).replace("SYSTEM_MESSAGE_LEVEL_", "")}: ${p.message ?? ""}` }));
        break;
      case "EVENT_TYPE_USER_END_SESSION":
        items.push(el("li", { class: "event", text: "The user left" }));
        break;
      case "EVENT_TYPE_SESSION_END":
        items.push(el("li", { class: "event", text: `Session ended (${p.reason ?? "no reason"})` }));
        break;
      default:
        break;
    }
  }
  $("transcript").replaceChildren(...items);
  $("transcript").scrollTop = $("transcript").scrollHeight;
  $("typing").textContent = [thinking ? `${agentName} is thinking…` : "", liveTyping ? "The live agent is typing…" : ""]
    .filter(Boolean).join(" ");
}

// --- acting on the session --------------------------------------------------------------------

const sessionPath = (suffix) => `/sessions/${encodeURIComponent(selected)}${suffix}`;

function needSession() {
  if (selected) return true;
  $("answer").textContent = "Pick a session first.";
  return false;
}

const slug = (name) => `agent_${name.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_|_$/g, "") || "live"}`;

function liveAgent() {
  const name = $("la-name").value.trim() || "Live agent";
  return { id: slug(name), name, avatar_url: `https://example.com/avatars/${slug(name)}.png` };
}

function playSteps(label, steps) {
  if (!needSession()) return undefined;
  return act(label, "POST", sessionPath("/steps"), steps);
}

$("la-handoff").addEventListener("click", () =>
  playSteps("Hand off to me", ["trigger_handoff", "agent_left", "handoff_accepted", { live_agent_join: liveAgent() }]));
$("la-join").addEventListener("click", () => playSteps("Join as live agent", [{ live_agent_join: liveAgent() }]));
$("la-leave").addEventListener("click", () => playSteps("Leave", ["live_agent_left"]));
$("la-typing-on").addEventListener("click", () => playSteps("Typing", [{ live_agent_typing: "TYPING_STATE_STARTED" }]));
$("la-typing-off").addEventListener("click", () => playSteps("Stop typing", [{ live_agent_typing: "TYPING_STATE_STOPPED" }]));

async function sendLive() {
  const text = $("la-text").value;
  if (!text.trim()) {
    $("answer").textContent = "Type a message first.";
    return;
  }
  const answer = await playSteps("Send as live agent", [{ live_agent_message: { text } }]);
  if (answer?.ok) $("la-text").value = "";
}
$("la-send").addEventListener("click", sendLive);
$("la-text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    sendLive();
  }
});

function parseJson(textarea) {
  try {
    return { value: JSON.parse($(textarea).value) };
  } catch (error) {
    $("answer").textContent = `Not JSON: ${error.message}`;
    $("answer").className = "answer refused";
    return null;
  }
}

$("step-play").addEventListener("click", () => {
  const parsed = parseJson("step-json");
  if (parsed) playSteps("Play step", parsed.value);
});
$("fault-inject").addEventListener("click", () => {
  const parsed = parseJson("fault-json");
  if (parsed && needSession()) act("Inject fault", "POST", sessionPath("/faults"), parsed.value);
});
$("end-session").addEventListener("click", () => {
  if (needSession()) act("End session", "POST", sessionPath("/end"), { reason: $("end-reason").value });
});

// --- acting on the server ---------------------------------------------------------------------

$("clock-advance-go").addEventListener("click", () =>
  act("Advance the clock", "POST", "/clock", { advance_ms: Number($("clock-advance").value) }));
$("clock-scale-go").addEventListener("click", () =>
  act("Scale the clock", "POST", "/clock", { scale: Number($("clock-scale").value) }));
$("next-scenario").addEventListener("click", () =>
  act("Next session's scenario", "PUT", "/next-scenario", { scenario: $("scenario").value }));
$("connector-scenario").addEventListener("click", () =>
  act("Connector's scenario", "PUT", `/connectors/${encodeURIComponent($("connector").value)}/scenario`, { scenario: $("scenario").value }));
$("fail-arm").addEventListener("click", () => {
  const body = { access_token: Number($("fail-token").value), sessions: Number($("fail-sessions").value) };
  const limited = Number($("fail-429").value);
  if (limited > 0) body.access_token_429 = { count: limited };
  act("Arm REST failures", "POST", "/http-failures", body);
});
$("reset").addEventListener("click", () => {
  $("reset-confirm").hidden = false;
  $("reset-confirm").focus();
});
$("reset-confirm").addEventListener("click", async () => {
  $("reset-confirm").hidden = true;
  await act("Reset", "POST", "/reset", {});
  selected = null;
  follow?.abort();
  $("session-body").hidden = true;
  $("session-h").textContent = "No session selected";
  history.replaceState(null, "", "#");
});

// --- the request log: every REST call and handshake, refused ones included --------------------

const REQUESTS_KEPT = 200;
let requests = []; // oldest first, the newest REQUESTS_KEPT
let requestCount = 0;
let requestsSince = 0; // mock-clock ms of the newest call shown
let requestsAtSince = 0; // how many calls at exactly that ms are already shown

function requestLine(call) {
  const what = call.endpoint === "/ws" && !call.request.upgrade ? "/ws (no upgrade)" : call.endpoint;
  const detail = [call.error, call.retry_after != null ? `Retry-After ${call.retry_after}` : null,
    call.session_id ? `session ${call.session_id.slice(0, 8)}…` : null].filter(Boolean).join(" · ");
  return `${(call.at_ms / 1000).toFixed(1)} s ${what} ${call.status}${detail ? ` — ${detail}` : ""}`;
}

function renderRequests() {
  const refusedOnly = $("requests-refused").checked;
  const shown = requests.filter((c) => !refusedOnly || c.status >= 400).slice(-50).reverse();
  $("requests").replaceChildren(...shown.map((call) => el("li", {
    class: call.status >= 400 ? "refused" : "",
    "data-endpoint": call.endpoint,
    "data-status": String(call.status),
    text: requestLine(call),
  })));
  $("request-count").textContent = String(requestCount);
}

let fetchingRequests = false;
async function refreshRequests() {
  if (fetchingRequests) return;
  fetchingRequests = true;
  try {
    // Only what is new: the log is oldest first, so the calls at `requestsSince` already shown
    // come first in the answer.
    const answer = await api("GET", `/requests?since_ms=${requestsSince}`);
    if (!answer.ok || !Array.isArray(answer.body)) return;
    const fresh = answer.body.slice(requestsAtSince);
    if (fresh.length === 0) return;
    const newest = fresh[fresh.length - 1].at_ms;
    requestsAtSince = answer.body.filter((c) => c.at_ms === newest).length;
    requestsSince = newest;
    requestCount += fresh.length;
    requests = requests.concat(fresh).slice(-REQUESTS_KEPT);
    renderRequests();
  } finally {
    fetchingRequests = false;
  }
}

$("requests-refused").addEventListener("change", renderRequests);

// --- start ------------------------------------------------------------------------------------

function fillSelect(select, options) {
  select.replaceChildren(...options.map(([value, label]) => el("option", { value, text: label })));
}

async function boot() {
  $("base-url").textContent = location.origin;
  const templates = await api("GET", "/ui/templates.json");
  if (templates.ok) {
    const { steps, faults, end_reasons: reasons } = templates.body;
    fillSelect($("step-kind"), steps.map((t, i) => [String(i), t.label]));
    fillSelect($("fault-kind"), faults.map((t, i) => [String(i), t.label]));
    fillSelect($("end-reason"), reasons.map((r) => [r, r]));
    const showStep = () => { $("step-json").value = JSON.stringify(steps[Number($("step-kind").value)].step, null, 1); };
    const showFault = () => { $("fault-json").value = JSON.stringify(faults[Number($("fault-kind").value)].fault, null, 1); };
    $("step-kind").addEventListener("change", showStep);
    $("fault-kind").addEventListener("change", showFault);
    showStep();
    showFault();
  }
  const names = await api("GET", "/scenarios");
  if (names.ok) fillSelect($("scenario"), names.body.map((n) => [n, n]));
  await refreshSessions();
  const wanted = decodeURIComponent((location.hash.match(/^#session=(.+)$/) || [])[1] || "");
  if (wanted) select(wanted);
}

boot();
refreshRequests();
setInterval(() => {
  refreshSessions();
  refreshRequests();
}, 1000);
