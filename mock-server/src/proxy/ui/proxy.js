// The proxy's console. Plain browser JavaScript, no dependencies; it uses only the proxy's
// control API under /_mock/ (sessions, their journals, faults, violations), so everything it
// does can be scripted with curl too.

const API = "/_mock";
const $ = (id) => document.getElementById(id);
const cell = (text, cls) => {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
};

let selected = null;

async function api(method, path, body) {
  try {
    const response = await fetch(API + path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON: keep the text */
    }
    return { ok: response.ok, status: response.status, body: parsed };
  } catch (error) {
    return { ok: false, status: 0, body: { message: `the proxy did not answer (${error.message})` } };
  }
}

/** One journal entry as a row: what happened and its detail. */
function journalRow(entry) {
  const event = entry; // the journal entry: `at_ms`, `unix_ms` and the event's fields, flattened
  let detail = "";
  switch (event.kind) {
    case "server_frame":
      detail = JSON.stringify(event.frame);
      break;
    case "client_frame":
      detail = event.frame ? JSON.stringify(event.frame) : event.text || "";
      break;
    case "handshake":
      detail = `${event.status} ${new URLSearchParams(event.query).toString()}${event.error ? ` ${event.error}` : ""}`;
      break;
    case "close":
      detail = `${event.code ?? "no close frame"} by ${event.by}`;
      break;
    case "fault":
      detail = event.fault;
      break;
    default:
      detail = JSON.stringify(event);
  }
  const tr = document.createElement("tr");
  tr.dataset.kind = event.kind;
  tr.append(cell(String(entry.at_ms)), cell(event.kind + (event.conn ? ` #${event.conn}` : "")), cell(detail, "frame"));
  if (event.kind === "fault") tr.className = "refused";
  return tr;
}

async function refresh() {
  const [health, sessions, violations] = await Promise.all([
    api("GET", "/health"),
    api("GET", "/sessions"),
    api("GET", "/violations"),
  ]);
  $("health").textContent = health.ok ? `forwarding to ${health.body.upstream}` : "the proxy does not answer";
  if (sessions.ok) {
    $("no-sessions").hidden = sessions.body.length > 0;
    $("sessions").replaceChildren(
      ...sessions.body.map((s) => {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = `${s.session_id || "(no id)"} · ${s.live.length} open`;
        button.setAttribute("aria-current", String(s.session_id === selected));
        button.addEventListener("click", () => {
          selected = s.session_id;
          refresh();
        });
        const li = document.createElement("li");
        li.dataset.session = s.session_id;
        li.append(button);
        return li;
      }),
    );
  }
  if (violations.ok) {
    $("violation-count").textContent = String(violations.body.length);
    $("violations").replaceChildren(
      ...violations.body
        .slice(-200)
        .reverse()
        .map((v) => {
          const tr = document.createElement("tr");
          tr.dataset.rule = v.rule;
          tr.append(cell(String(v.at_ms)), cell(v.direction), cell(v.rule), cell(v.detail), cell(v.frame || "", "frame"));
          return tr;
        }),
    );
  }
  $("selected").textContent = selected ?? "none";
  $("inject").disabled = selected === null;
  if (selected !== null) {
    const journal = await api("GET", `/sessions/${encodeURIComponent(selected)}/journal`);
    if (journal.ok) $("journal").replaceChildren(...journal.body.slice(-300).map(journalRow));
  }
}

async function start() {
  const templates = await api("GET", "/ui/templates.json");
  const faults = templates.ok ? templates.body.faults : [];
  for (const { label, fault } of faults) {
    const option = document.createElement("option");
    option.textContent = label;
    option.value = JSON.stringify(fault);
    $("fault-kind").append(option);
  }
  const pick = () => {
    $("fault-json").value = $("fault-kind").value;
  };
  $("fault-kind").addEventListener("change", pick);
  pick();
  $("fault-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    let fault;
    try {
      fault = JSON.parse($("fault-json").value);
    } catch (error) {
      $("answer").textContent = `not JSON: ${error.message}`;
      $("answer").className = "small refused";
      return;
    }
    const answer = await api("POST", `/sessions/${encodeURIComponent(selected)}/faults`, fault);
    $("answer").dataset.status = String(answer.status);
    $("answer").textContent = answer.ok ? `injected: ${JSON.stringify(fault)}` : `refused: ${answer.body.message}`;
    $("answer").className = answer.ok ? "small muted" : "small refused";
    refresh();
  });
  refresh();
  setInterval(refresh, 1000);
}

start();
