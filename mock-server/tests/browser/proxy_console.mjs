// The proxy's console, driven like a user in headless Chromium against a running proxy in
// front of a mock, with a real WebSocket client (examples/chat.mjs) talking through the proxy.
// Run by mock-server/tests/external/console.rs:
//
//   CONSOLE_URL=… BASE_URL=… [SCREENSHOTS=dir] node --experimental-websocket proxy_console.mjs
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

run(async () => {
  const browser = await launch();
  let child = null;
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const problems = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      // The refusals this test provokes on purpose are logged by the browser as failed loads.
      const provoked = /status of (400|401)/.test(message.text());
      if (message.type() === "error" && !provoked) problems.push(`console error: ${message.text()}`);
    });
    await page.goto(consoleUrl);
    await until("the console loads, names its upstream and has no sessions yet", async () =>
      (await page.locator("#no-sessions").isVisible()) && (await page.locator("#health").textContent()).includes("forwarding to"));
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea, button")]
        .filter((c) => !(c.labels?.length || c.getAttribute("aria-label") || c.textContent.trim()))
        .map((c) => c.id || c.outerHTML.slice(0, 60)));
    check(unnamed.length === 0, `every control is labelled (unlabelled: ${unnamed.join(", ") || "none"})`);

    // A client talks to the service through the proxy: its session appears.
    child = spawn(process.execPath, ["--experimental-websocket", join(repo, "examples/chat.mjs"), baseUrl, "--json"], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const events = [];
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        events.push(JSON.parse(line));
      } catch {
        /* not JSON */
      }
    });
    await until("the client gets the greeting through the proxy", () => events.find((e) => e.type === "EVENT_TYPE_POLY_AGENT_MESSAGE"));
    const sessionId = await until("the session appears in the list", async () => {
      const ids = await page.locator("#sessions li").evaluateAll((items) => items.map((i) => i.dataset.session));
      return ids.length === 1 && ids[0] ? ids[0] : null;
    });
    await page.locator(`#sessions li[data-session="${sessionId}"] button`).click();
    await until("its journal shows the handshake and frames both ways", async () =>
      (await page.locator('#journal tr[data-kind="handshake"]').count()) === 1
      && (await page.locator('#journal tr[data-kind="client_frame"]').count()) >= 1
      && (await page.locator('#journal tr[data-kind="server_frame"]').count()) >= 2);

    // Inject a drop from the fault list: the client reconnects through the proxy.
    await page.locator("#fault-kind").selectOption({ label: "Drop every socket (no close frame)" });
    check((await page.locator("#fault-json").inputValue()).trim() === '"drop"', "choosing a fault fills in its JSON");
    await page.locator("#inject").click();
    await until("the injection is accepted", async () => (await page.locator("#answer").getAttribute("data-status")) === "200");
    await until("the journal shows the fault and the drop", async () =>
      (await page.locator('#journal tr[data-kind="fault"]').count()) === 1
      && (await page.locator('#journal tr[data-kind="close"]').allTextContents()).some((t) => t.includes("no close frame")));
    await until("the client reconnects through the proxy (a second handshake)", async () =>
      (await page.locator('#journal tr[data-kind="handshake"]').count()) === 2, 15_000);

    // A fault the mock would refuse is refused with its reason.
    await page.locator("#fault-json").fill('{"close": 99}');
    await page.locator("#inject").click();
    await until("a bad fault is refused with 400 and its reason", async () =>
      (await page.locator("#answer").getAttribute("data-status")) === "400"
      && (await page.locator("#answer").textContent()).startsWith("refused:"));

    // A call that breaks a rule shows in the violations: a token request without X-Host.
    await page.evaluate(async () => {
      await fetch("/api/v1/access-token", { method: "POST", headers: { "X-Token": "mock-connector-token", "Content-Type": "application/json" }, body: "{}" });
    });
    await until("the violations table lists AUTH-1", async () => (await page.locator('#violations tr[data-rule="AUTH-1"]').count()) >= 1);

    const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(wide <= 1, `no horizontal scrolling at 1280 px (overflow ${wide} px)`);
    await screenshot(page, shots && join(shots, "proxy-console.png"), { fullPage: true });
    check(problems.length === 0, `no script errors in the page (${problems.join("; ") || "none"})`);
  } finally {
    child?.kill();
    await browser.close();
  }
});
