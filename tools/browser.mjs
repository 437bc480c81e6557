// Shared by the browser tests: launch the system Chromium headless through playwright-core
// (installed into tools/node_modules by .ci/run), with no network but loopback, plus small
// helpers to fail with a clear message and to bound every wait.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    timeout: 30_000,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Throws with `what` when `condition` is false. */
export function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

/** Polls `probe` (sync or async) until it returns a truthy value, or fails after `ms`. */
export async function until(what, probe, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) {
      console.log(`ok - ${what}`);
      return value;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Saves a PNG screenshot to `path` when a path is given (creating its folder). */
export async function screenshot(page, path, options = {}) {
  if (!path) return;
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path, ...options });
  console.log(`screenshot - ${path}`);
}

/** Runs `main`, printing the failure and exiting 1 on any error; bounded by `ms`. */
export function run(main, ms = 90_000) {
  const timer = setTimeout(() => {
    console.error(`browser test exceeded its ${ms} ms bound`);
    process.exit(1);
  }, ms);
  main().then(
    () => {
      clearTimeout(timer);
      process.exit(0);
    },
    (error) => {
      console.error(error?.stack ?? String(error));
      process.exit(1);
    },
  );
}
