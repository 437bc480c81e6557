// report.html opened in headless Chromium, read like a user would: the verdict first, the failing
// case open before any passing one, its diff, its two-lane frame sequence, its view timeline,
// and the command that reproduces it. Run by the catalogue trial report::in_a_browser (conformance/tests/catalogue/helpers.rs):
//
//   REPORT=/path/report.html FAILING_CASE=delivery [SCREENSHOTS=dir] node report.mjs

import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { launch, check, until, screenshot, run } from "../../../tools/browser.mjs";

const report = process.env.REPORT;
const failing = process.env.FAILING_CASE;
const shots = process.env.SCREENSHOTS;

run(async () => {
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const problems = [];
    page.on("pageerror", (error) => problems.push(error.message));
    // Self-contained: any request but the file itself is a defect.
    page.on("request", (request) => {
      if (!request.url().startsWith("file:")) problems.push(`fetched ${request.url()}`);
    });
    await page.goto(pathToFileURL(report).href);

    const banner = page.locator("main .banner").first();
    check((await banner.textContent()).trim() === "Failed", "the verdict comes first: Failed");
    const bannerTop = (await banner.boundingBox()).y;
    check(bannerTop < 200, `the verdict is on the first screen (y = ${Math.round(bannerTop)})`);
    const tiles = await page.locator(".summary .tile").allTextContents();
    check(tiles.some((t) => /fail/.test(t)) && tiles.some((t) => /cases failed/.test(t)), "the summary tiles count the findings and failed cases");

    const cases = await page.locator("details.case").evaluateAll((nodes) =>
      nodes.map((n) => ({ id: n.id, open: n.open, status: n.querySelector("summary .badge").textContent })));
    check(cases.length >= 2, `the report lists every case (${cases.length})`);
    check(cases[0].id === failing && cases[0].status === "fail" && cases[0].open, `the failing case ${failing} comes first, expanded`);
    check(cases.filter((c) => c.status === "pass").every((c) => !c.open), "passing cases are collapsed");

    const first = page.locator(`details.case#${failing}`);
    const diff = first.locator("pre.diff");
    await until("the failing case shows its expected-vs-shown diff", () => diff.isVisible());
    const removed = await diff.locator(".diff-del").allTextContents();
    const added = await diff.locator(".diff-add").allTextContents();
    check(added.some((l) => l.startsWith("+") && !l.startsWith("+++")), `the diff marks what the app showed that was not expected (${added.length} line(s))`);
    check(removed.every((l) => l.startsWith("-")), "removed lines are the expected ones");

    const lanes = await first.locator("table.seq tr").evaluateAll((rows) => rows.map((r) => ({
      client: r.querySelector("td.client")?.textContent ?? null,
      mock: r.querySelector("td.mock")?.textContent ?? null,
      ms: r.querySelector("td.t")?.textContent ?? null,
    })));
    check(lanes.some((r) => r.client?.includes("USER_MESSAGE") || r.client?.includes("REQUEST_POLY_AGENT_JOIN")), "the sequence has the client's frames in the client lane");
    check(lanes.some((r) => r.mock && r.mock.length > 0), "and the mock's frames in the mock lane");
    const times = lanes.map((r) => Number(r.ms)).filter((n) => !Number.isNaN(n));
    check(times.length > 3 && times.every((t, i) => i === 0 || t >= times[i - 1]), "relative times run forward");

    const reproduce = await first.locator("h3:text('Reproduce') + pre").textContent();
    check(reproduce.includes("--mutant") && reproduce.includes(`--only ${failing}`), `the reproduce command names the mutant and the case: ${reproduce}`);
    check((await first.locator("h3:text('View timeline') + table tr").count()) > 1, "the view timeline has rows");
    check((await first.locator("h3:text('Drawn parameters') + pre").count()) === 1, "the drawn parameters are shown");

    // A view in the timeline opens to its JSON.
    const view = first.locator("h3:text('View timeline') + table details").first();
    await view.locator("summary").click();
    check((await view.locator("pre").textContent()).includes('"messages"'), "a view opens to its JSON");

    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, shots && join(shots, "report.png"));
    // The failing case: its diff, then the two-lane sequence below it.
    await first.locator("pre.diff").evaluate((node) => node.previousElementSibling.scrollIntoView());
    await screenshot(page, shots && join(shots, "report-case.png"));

    await page.setViewportSize({ width: 420, height: 900 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    const culprits = await page.evaluate(() => [...document.querySelectorAll("body *")]
      .filter((n) => n.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5)
      .map((n) => `${n.tagName}.${n.className}`));
    check(overflow <= 1, `no horizontal scrolling at 420 px (overflow ${overflow} px${overflow > 1 ? `: ${culprits.join(", ")}` : ""})`);
    check(problems.length === 0, `self-contained, no script errors (${problems.join("; ") || "none"})`);
  } finally {
    await browser.close();
  }
});
