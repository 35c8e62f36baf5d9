// End-to-end walk through the dashboard in Debian's Chromium at a phone viewport, against a running server.
// Driven by tests/e2e/test_dashboard.py, which starts the server and answers this script's requests:
// a line "@@ask <what>" on stdout is answered by one line on stdin once done (e.g. a crossing ingested).
// Prints "@@result <json>" with the measured figures; exits non-zero on the first failed check.
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const BASE = process.env.BASE_URL;
const ADMIN = process.env.ADMIN_TOKEN;
const VIEWER = process.env.VIEWER_TOKEN;
const OUT = process.env.OUT_DIR;
const YESTERDAY = process.env.YESTERDAY; // YYYY-MM-DD, the day with stored hours
const HOURS = JSON.parse(process.env.YESTERDAY_HOURS); // {"9": 3, ...}
const CAMERA = process.env.CAMERA_ID;
const DWELL = Number(process.env.DWELL_MINUTES);
mkdirSync(OUT, { recursive: true });

const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(what) {
  console.log(`@@ask ${what}`);
  const { value, done } = await answers.next();
  if (done || value.trim() !== "ok") throw new Error(`the test harness did not do "${what}": ${value}`);
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const result = {};
const profile = mkdtempSync(join(tmpdir(), "metrica-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  locale: "en-US",
});
const shot = (page, name) => page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
const text = async (page, testId) => (await page.getByTestId(testId).first().textContent())?.trim();

try {
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  // -- Live, signed in by the viewer's link; first render timed by the page itself ---------------------
  await page.goto(`${BASE}/?token=${encodeURIComponent(VIEWER)}`);
  await page.waitForSelector('[data-status="live"]', { timeout: 10_000 });
  result.first_render_ms = await page.evaluate(() => {
    const mark = performance.getEntriesByName("metrica-live-rendered")[0];
    return mark ? Math.round(mark.startTime) : null;
  });
  check(result.first_render_ms !== null && result.first_render_ms < 1500, `first render ${result.first_render_ms} ms`);
  check(!page.url().includes("token="), "the sign-in link's token is removed from the address bar");
  const before = Number(await text(page, "inside"));
  const inBefore = Number(await text(page, "visitors-in"));
  check(before === 2 && inBefore === 2, `today's stored visitors are counted (inside ${before}, in ${inBefore})`);
  await page.waitForSelector('[data-testid="curve"]');
  await shot(page, "live");

  // -- A crossing is ingested: the number moves within a second, over the WebSocket --------------------
  await ask("crossing-in");
  const t0 = Date.now();
  await page.waitForFunction((n) => document.querySelector('[data-testid="inside"]')?.textContent?.trim() === String(n), before + 1, { timeout: 1000 });
  result.crossing_to_screen_ms = Date.now() - t0;
  check(Number(await text(page, "visitors-in")) === inBefore + 1, "visitors in grows by one");
  check(Number(await text(page, "inflow")) >= 1, "the 15-minute inflow counts it");

  // -- The network drops: the number is shown as stale, then live again by itself ----------------------
  await context.setOffline(true);
  await page.waitForSelector('[data-status="reconnecting"]', { timeout: 5000 });
  await page.waitForSelector('[data-testid="stale-note"]');
  await shot(page, "live-reconnecting");
  await ask("alert-while-away"); // its push is missed: the app fetches open alerts when it reconnects
  await context.setOffline(false);
  await page.waitForSelector('[data-status="live"]', { timeout: 10_000 });
  await page.waitForSelector('[data-testid="alert"]', { timeout: 2000 });
  result.missed_alert_text = await page.getByTestId("alert").textContent();
  await ask("alert-while-away-resolved");
  await page.waitForSelector('[data-testid="alert"]', { state: "detached", timeout: 2000 });

  // -- The camera goes offline: said plainly ------------------------------------------------------------
  await ask("camera-failed");
  await page.waitForSelector('[data-status="camera-offline"]', { timeout: 2000 });
  check((await page.locator('[data-testid="live-page"].stale').count()) === 1, "the number is greyed while no camera counts");
  await page.waitForSelector('[data-testid="cameras-offline"]');
  await shot(page, "live-camera-offline");
  await ask("camera-running");
  await page.waitForSelector('[data-status="live"]', { timeout: 2000 });

  // -- An alert pushed on the store's channel shows as a banner --------------------------------------
  await ask("alert-fired");
  await page.waitForSelector('[data-testid="alert"]', { timeout: 2000 });
  result.alert_text = await page.getByTestId("alert").textContent();
  await shot(page, "live-alert");
  await ask("alert-resolved");
  await page.waitForSelector('[data-testid="alert"]', { state: "detached", timeout: 2000 });

  // -- History: yesterday's stored hours ---------------------------------------------------------------
  await page.getByTestId("tab-history").click();
  await page.getByTestId("day").fill(YESTERDAY);
  await page.waitForFunction(
    (want) => String([...document.querySelectorAll('[data-testid="hourly"] [data-testid="bar"]')].reduce((s, b) => s + Number(b.dataset.value), 0)) === want,
    String(Object.values(HOURS).reduce((a, b) => a + b, 0)),
    { timeout: 5000 },
  );
  const bars = await page.$$eval('[data-testid="hourly"] [data-testid="bar"]', (els) =>
    Object.fromEntries(els.map((e) => [Number(e.dataset.label), Number(e.dataset.value)])),
  );
  for (const [hour, count] of Object.entries(HOURS)) check(bars[hour] === count, `hour ${hour}: ${bars[hour]} ≠ ${count}`);
  check(Object.values(bars).filter((v) => v > 0).length === Object.keys(HOURS).length, "no other hour has visitors");
  check(Number(await text(page, "day-total")) === Object.values(HOURS).reduce((a, b) => a + b, 0), "day total");
  result.history_hours = bars;
  // Average visit of that day (everyone stayed DWELL minutes), and the heat map as the server has it.
  await page.waitForFunction((want) => document.querySelector('[data-testid="avg-dwell"]')?.textContent === want, `${DWELL} min`, { timeout: 5000 });
  await page.waitForSelector('[data-testid="heatmap"]', { timeout: 5000 });
  const served = await page.evaluate(async () => {
    const store = (await (await fetch("/api/stores", { headers: { Authorization: `Bearer ${localStorage.getItem("metrica.token")}` } })).json())[0];
    const r = await fetch(`/api/stores/${store.id}/heatmap?weeks=4`, { headers: { Authorization: `Bearer ${localStorage.getItem("metrica.token")}` } });
    return (await r.json()).weekdays;
  });
  const shown = await page.$$eval('[data-testid="heatmap"] .heat-cell', (els) => els.map((e) => [Number(e.dataset.day), Number(e.dataset.hour), Number(e.dataset.value)]));
  check(shown.length === 7 * 24, `heat map has ${shown.length} cells`);
  check(shown.every(([d, h, v]) => served[d][h] === v), "heat map shows the server's averages");
  check(shown.some(([, , v]) => v > 0), "last week's visitors are on the heat map");
  await page.waitForTimeout(300);
  await shot(page, "history");

  // -- Reports ------------------------------------------------------------------------------------------
  await page.getByTestId("tab-reports").click();
  await page.waitForSelector('[data-testid="report"], [data-testid="no-reports"], [data-testid="not-available"]');
  result.reports = await page.getByTestId("report").count();
  await shot(page, "reports");

  // -- The viewer cannot reach admin pages or endpoints ------------------------------------------------
  check((await page.getByTestId("tab-cameras").count()) === 0, "no Cameras tab for a viewer");
  await page.goto(`${BASE}/#/cameras`);
  await page.waitForSelector('[data-testid="admin-only"]');
  check((await page.getByTestId("restart").count()) === 0, "no restart button for a viewer");
  await shot(page, "cameras-viewer");
  result.viewer_admin_status = await page.evaluate(async (camera) => {
    const auth = { Authorization: `Bearer ${localStorage.getItem("metrica.token")}` };
    const restart = await fetch(`/api/admin/cameras/${camera}/restart`, { method: "POST", headers: auth });
    const snap = await fetch(`/api/admin/cameras/${camera}/snapshot`, { headers: auth });
    const line = await fetch(`/api/admin/lines/1`, { method: "PUT", headers: { ...auth, "Content-Type": "application/json" }, body: "{}" });
    return [restart.status, snap.status, line.status];
  }, CAMERA);
  check(result.viewer_admin_status.every((s) => s === 403), `viewer got ${result.viewer_admin_status} from admin endpoints`);

  // -- The admin restarts the camera, then moves its line and flips the inside side --------------------
  await page.goto(`${BASE}/?token=${encodeURIComponent(ADMIN)}#/cameras`);
  await page.waitForSelector('[data-testid="camera"]');
  check((await text(page, "camera-state")) === "running", "camera state shown");
  const restartsBefore = Number(await text(page, "camera-restarts"));
  await page.getByTestId("restart").click();
  await page.waitForSelector('[data-testid="notice"]');
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid="camera-restarts"]')?.textContent) === n, restartsBefore + 1);
  await shot(page, "cameras-admin");

  await page.getByTestId("snapshot").click();
  await page.waitForSelector('[data-testid="line-editor"]', { timeout: 15_000 });
  await page.waitForFunction(() => document.querySelector(".editor img")?.complete);
  const box = await page.getByTestId("line-editor").boundingBox();
  const handle = await page.getByTestId("handle-1").boundingBox();
  // Drag the second end to the middle of the bottom quarter of the frame.
  await page.mouse.move(handle.x + handle.width / 2, handle.y + handle.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.75, { steps: 5 });
  await page.mouse.up();
  await page.getByTestId("flip").click();
  result.segment_text = await text(page, "segment");
  await shot(page, "cameras-line-editor");
  await page.getByTestId("save-line").click();
  await page.waitForSelector('[data-testid="notice"]');
  await shot(page, "cameras-saved");

  // -- Disable, then enable the camera again -------------------------------------------------------------
  await page.getByTestId("toggle").click();
  await page.waitForFunction(() => document.querySelector('[data-testid="toggle"]')?.textContent === "Enable");
  check(await page.getByTestId("restart").isDisabled(), "a disabled camera cannot be restarted");
  check((await text(page, "camera-state")) === "Disabled", "disabled camera shown as such");
  await shot(page, "cameras-disabled");
  await page.getByTestId("toggle").click();
  await page.waitForFunction(() => document.querySelector('[data-testid="toggle"]')?.textContent === "Disable");
  await page.waitForFunction(() => document.querySelector('[data-testid="camera-state"]')?.textContent?.trim() === "running");

  // -- French, and Arabic right to left ---------------------------------------------------------------
  await page.goto(`${BASE}/#/live`);
  await page.getByTestId("language").selectOption("fr");
  await page.waitForSelector('[data-status="live"]');
  check((await text(page, "status")) === "En direct", "French status");
  await shot(page, "live-fr");
  await page.getByTestId("language").selectOption("ar");
  check((await page.evaluate(() => document.documentElement.dir)) === "rtl", "Arabic is right to left");
  await shot(page, "live-ar");
  await page.getByTestId("language").selectOption("en");

  // -- Installable: the manifest is served and names its icons ---------------------------------------
  result.manifest = await page.evaluate(async () => {
    const href = document.querySelector('link[rel="manifest"]').getAttribute("href");
    const m = await (await fetch(href)).json();
    const icons = await Promise.all(m.icons.map(async (i) => (await fetch(i.src)).status));
    return { name: m.name, display: m.display, icons };
  });
  check(result.manifest.display === "standalone" && result.manifest.icons.every((s) => s === 200), "manifest");

  // -- Sign out, a wrong token is refused with a sentence, the right one signs in -----------------------
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForSelector('input[name="token"]');
  check((await page.evaluate(() => localStorage.getItem("metrica.token"))) === null, "signing out forgets the token");
  await page.fill('input[name="token"]', "not-the-right-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForSelector('.signin [role="alert"]');
  check((await page.locator('.signin [role="alert"]').textContent()) === "This token is not valid.", "bad token message");
  await shot(page, "signin");
  await page.fill('input[name="token"]', VIEWER);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForSelector('[data-status="live"]');

  check(errors.length === 0, `no page errors: ${errors.join("; ")}`);
  console.log(`@@result ${JSON.stringify(result)}`);
} catch (err) {
  console.error(err?.stack ?? String(err));
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(process.exitCode ?? 0);
