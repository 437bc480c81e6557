// The web console, driven like a user in headless Chromium against a running mock, with a real
// WebSocket client (examples/chat.mjs) on the other side. Run by mock-server/tests/external/console.rs:
//
//   CONSOLE_URL=… BASE_URL=… [SCREENSHOTS=dir] node --experimental-websocket console.mjs
//
// Prints one `ok - …` line per check; exits 1 on the first failure.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { launch, check, until, screenshot, run } from "../../../tools/browser.mjs";

const consoleUrl = process.env.CONSOLE_URL;
const baseUrl = process.env.BASE_URL;
const shots = process.env.SCREENSHOTS;
const repo = fileURLToPath(new URL("../../../", import.meta.url));

/** The terminal chat client in --json mode: every event it receives, as parsed objects. */
function startClient() {
  const child = spawn(process.execPath, ["--experimental-websocket", join(repo, "examples/chat.mjs"), baseUrl, "--json"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const events = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    try {
      events.push(JSON.parse(line));
    } catch {
      /* a non-JSON line (none expected in --json mode) */
    }
  });
  return { child, events, say: (text) => child.stdin.write(`${text}\n`) };
}

const received = (client, type, text) =>
  client.events.find((e) => e.type === type && (text === undefined || e.payload?.text === text));

run(async () => {
  const browser = await launch();
  const client = { child: null };
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const problems = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      // The refusals this test provokes on purpose are logged by the browser as failed loads.
      const provoked = /status of (400|401|409)/.test(message.text());
      if (message.type() === "error" && !provoked) problems.push(`console error: ${message.text()}`);
    });
    page.on("response", (response) => {
      if (response.status() === 404) problems.push(`404 for ${response.url()}`);
    });
    await page.goto(consoleUrl);
    await until("the console loads and says there are no sessions yet", () => page.locator("#no-sessions").isVisible());

    // Every control has an accessible name (labels, aria-label or text).
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea, button")]
        .filter((c) => !(c.labels?.length || c.getAttribute("aria-label") || c.textContent.trim()))
        .map((c) => c.id || c.outerHTML.slice(0, 60)));
    check(unnamed.length === 0, `every control is labelled (unlabelled: ${unnamed.join(", ") || "none"})`);

    // A client connects: its session appears without a reload.
    Object.assign(client, startClient());
    await until("the client gets the greeting", () => received(client, "EVENT_TYPE_POLY_AGENT_MESSAGE"));
    const sessionId = await until("the session appears in the list, live", async () => {
      const ids = await page.locator("#sessions tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.session));
      return ids.length === 1 ? ids[0] : null;
    });

    // Open it with the keyboard alone: Tab to the session's button, Enter.
    await page.locator(`#sessions tr[data-session="${sessionId}"] button`).focus();
    await page.keyboard.press("Enter");
    await until("the session opens and its conversation shows the greeting", async () =>
      (await page.locator("#transcript .msg.agent").allTextContents()).some((t) => t.includes("How can I help")));
    await until("the journal shows the handshake and frames both ways", async () =>
      (await page.locator('#journal tr[data-kind="handshake"]').count()) === 1
      && (await page.locator('#journal tr[data-kind="client_frame"]').count()) >= 1
      && (await page.locator('#journal tr[data-kind="server_frame"]').count()) >= 2);

    // The request log shows the client's REST calls and its handshake, as they happen.
    await until("the request log shows the client's session and its WebSocket upgrade", async () => {
      const rows = await page.locator("#requests li").evaluateAll((items) => items.map((i) => `${i.dataset.endpoint} ${i.dataset.status}`));
      return rows.includes("/api/v1/access-token 200") && rows.includes("/api/v1/sessions 200") && rows.includes("/ws 101");
    });

    // The user writes; the console shows it.
    client.say("I need a human, please");
    await until("the user's message shows in the conversation", async () =>
      (await page.locator("#transcript .msg.user").allTextContents()).some((t) => t.includes("I need a human")));

    // Be the live agent: hand off, type, send a message the client receives.
    await page.locator("#la-name").fill("Grace");
    await page.locator("#la-handoff").click();
    await until("the hand-off is answered OK", async () => (await page.locator("#answer").getAttribute("data-status")) === "200");
    await until("the client sees Grace join", () =>
      client.events.find((e) => e.type === "EVENT_TYPE_LIVE_AGENT_JOINED" && e.payload?.agent?.name === "Grace"));
    await page.locator("#la-typing-on").click();
    await until("the client sees the live agent typing", () =>
      client.events.find((e) => e.type === "EVENT_TYPE_LIVE_AGENT_TYPING" && e.payload?.state === "TYPING_STATE_STARTED"));
    await page.locator("#la-text").fill("Hello, this is Grace from the console.");
    await page.locator("#la-text").press("Control+Enter");
    await until("the client receives the live agent's message", () =>
      received(client, "EVENT_TYPE_LIVE_AGENT_MESSAGE", "Hello, this is Grace from the console."));
    await until("the conversation shows it as the live agent's", async () =>
      (await page.locator("#transcript .msg.live_agent").allTextContents()).some((t) => t.includes("Grace (live agent)") && t.includes("this is Grace")));
    check((await page.locator("#la-text").inputValue()) === "", "the message box empties once the server accepted it");
    await until("the session list shows the live agent", async () =>
      (await page.locator(`#sessions tr[data-session="${sessionId}"]`).textContent()).includes("live agent"));
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    const culprits = await page.evaluate(() => [...document.querySelectorAll("body *")]
      .filter((n) => n.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5)
      .map((n) => n.id || n.className || n.tagName));
    check(wide <= 1, `no horizontal scrolling at 1280 px (overflow ${wide} px${wide > 1 ? `: ${culprits.join(", ")}` : ""})`);
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, shots && join(shots, "console.png"), { fullPage: true });

    // Filter the journal by event type.
    await page.locator("#journal-filter").selectOption("LIVE_AGENT_MESSAGE");
    const visible = await page.locator("#journal tbody tr:not([hidden])").evaluateAll((rows) => rows.map((r) => r.dataset.type));
    check(visible.length >= 1 && visible.every((t) => t === "LIVE_AGENT_MESSAGE"), `the filter shows only LIVE_AGENT_MESSAGE rows (${visible.length})`);
    await page.locator("#journal-filter").selectOption("");

    // Copy a frame: the clipboard holds the frame's JSON.
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"]);
    await page.locator('#journal tr[data-type="LIVE_AGENT_MESSAGE"] button').first().click();
    const copied = JSON.parse(await page.evaluate(() => navigator.clipboard.readText()));
    check(copied.type === "EVENT_TYPE_LIVE_AGENT_MESSAGE" && copied.payload.text.includes("Grace"), "Copy puts the frame's JSON on the clipboard");

    // Inject a drop: the client reconnects and the journal follows.
    await page.locator("#fault-kind").selectOption({ label: "Drop every socket (no close frame)" });
    check((await page.locator("#fault-json").inputValue()).trim() === '"drop"', "choosing a fault fills in its JSON");
    await page.locator("#fault-inject").click();
    await until("the journal shows the drop (a close without a code)", async () =>
      (await page.locator('#journal tr[data-kind="close"]').allTextContents()).some((t) => t.includes("no close frame")));
    await until("the journal shows the client's reconnect (a second handshake, with a cursor)", async () => {
      const handshakes = await page.locator('#journal tr[data-kind="handshake"]').allTextContents();
      return handshakes.length === 2 && handshakes[1].includes("cursor=");
    }, 15_000);

    // A refused action shows the server's own error text.
    await page.locator("#step-json").fill('{"live_agent_message": {"txt": "typo"}}');
    await page.locator("#step-play").click();
    await until("a malformed step is refused with 400", async () => (await page.locator("#answer").getAttribute("data-status")) === "400");
    const direct = await page.evaluate(async (id) => {
      const r = await fetch(`/_mock/sessions/${id}/steps`, { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"live_agent_message": {"txt": "typo"}}' });
      return (await r.json()).message;
    }, sessionId);
    const shown = await page.locator("#answer").textContent();
    check(direct.length > 0 && shown.includes(direct), `the refusal shows the server's text (${direct})`);

    // Download the recording: JSON Lines, one per journal entry.
    const download = await page.evaluate(async () => {
      const href = document.getElementById("download").getAttribute("href");
      const r = await fetch(href);
      return { type: r.headers.get("content-type"), disposition: r.headers.get("content-disposition"), text: await r.text() };
    });
    const lines = download.text.trim().split("\n").map((l) => JSON.parse(l));
    const journalCount = Number(await page.locator("#journal-count").textContent());
    check(download.disposition.includes(`${sessionId}.jsonl`) && lines.length >= journalCount && lines.every((l) => l.kind && l.at_ms !== undefined),
      `the recording downloads as JSONL (${lines.length} lines, journal shows ${journalCount})`);

    // End the session from the console; the client sees SESSION_END.
    await page.locator("#end-reason").selectOption("REASON_NATURAL_END");
    await page.locator("#end-session").click();
    await until("the client receives SESSION_END", () =>
      client.events.find((e) => e.type === "EVENT_TYPE_SESSION_END" && e.payload?.reason === "REASON_NATURAL_END"));
    await until("the session list shows it ended with its reason", async () =>
      (await page.locator(`#sessions tr[data-session="${sessionId}"]`).textContent()).includes("ended (REASON_NATURAL_END)"));
    // An action that does not fit the state any more is refused with the server's 409 text.
    await page.locator("#la-send").focus();
    await page.locator("#la-text").fill("Anyone there?");
    await page.locator("#la-send").press("Enter");
    await until("a message to an ended session is refused with 409", async () => (await page.locator("#answer").getAttribute("data-status")) === "409");

    // A refused REST call shows in the request log, and the refused-only filter keeps it alone.
    await page.evaluate(() => fetch("/api/v1/access-token", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }));
    await until("the request log shows the refused call with its error", async () =>
      (await page.locator('#requests li[data-endpoint="/api/v1/access-token"][data-status="401"]').count()) === 1);
    await page.locator("#requests-refused").check();
    const refusedRows = await page.locator("#requests li").evaluateAll((items) => items.map((i) => Number(i.dataset.status)));
    check(refusedRows.length >= 1 && refusedRows.every((s) => s >= 400), `"Refused only" shows only refusals (${refusedRows.join(", ")})`);
    await page.locator("#requests-refused").uncheck();

    // The clock, from the server pane.
    await page.locator("#clock-advance").fill("5000");
    await page.locator("#clock-advance-go").click();
    await until("advancing the clock answers with the new clock", async () =>
      (await page.locator("#answer").textContent()).includes("clock_ms"));

    // Readable on a narrow window: nothing overflows sideways.
    await page.setViewportSize({ width: 420, height: 900 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `no horizontal scrolling at 420 px (overflow ${overflow} px)`);
    await screenshot(page, shots && join(shots, "console-narrow.png"));

    check(problems.length === 0, `no script errors in the page (${problems.join("; ") || "none"})`);
  } finally {
    client.child?.kill();
    await browser.close();
  }
});
