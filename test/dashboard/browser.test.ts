// The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core, against
// the stand-in cluster with a healthy and a broken volume. Asserts what the pages show (the verdict
// text, the graph's boxes, a log line streamed in, a live update) and that no response the browser
// received carried a credential. Screenshots of the main pages go to test/dashboard/screenshots/.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { findBrowser } from "../../scripts/setup-browser.ts";
import { driverNs } from "../doctor/fixtures.ts";
import { assertNoCredentials, dashboardCluster } from "./helpers.ts";

const browserPath = findBrowser();
if (!browserPath) {
  t.test(
    "browser tests",
    { skip: "no chromium on this machine (npm run setup installs the Debian package as root)" },
    () => {},
  );
} else {
  const { chromium } = await import("playwright-core");
  const shots = join(import.meta.dirname, "screenshots");
  mkdirSync(shots, { recursive: true });
  const c = await dashboardCluster();
  const browser = await chromium.launch({
    executablePath: browserPath,
    // Root in CI: chromium's sandbox needs an unprivileged user.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const responses: Promise<[string, string]>[] = [];
  page.on("response", (r) => {
    if (r.url().includes("/logs?") || r.url().endsWith("/api/updates")) return; // streams: read below
    responses.push(
      r.text().then(
        (b) => [r.url(), b] as [string, string],
        () => [r.url(), ""],
      ),
    );
  });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });

  t.test("overview: the broken pod first, with the doctor's verdict and fix", async (t) => {
    await page.goto(`${c.url}/`);
    // The page updates itself (SSE) until the cache has seen the crash loop.
    await page.locator("table.problems", { hasText: "client-crashloop" }).waitFor({ timeout: 30_000 });
    const first = page.locator("table.problems tr.problem").first();
    t.match(await first.textContent(), /broken[\s\S]*pod\/app -n billing[\s\S]*client-crashloop/);
    t.match(
      await first.locator("td.fix").textContent(),
      /kubectl logs pod\/\S+ -n kube-system -c jfs-mount --previous/,
    );
    t.match(await page.locator("p.counts").textContent(), /2 PVs/);
    await page.locator("#live", { hasText: /^live$/ }).waitFor();
    await page.screenshot({ path: join(shots, "overview.png"), fullPage: true });
  });

  t.test("volume graph: boxes for PV, PVC, pod, Mount Pod; broken ones red", async (t) => {
    await page.goto(`${c.url}/volumes/${c.broken.pv}`);
    const kinds = await page.$$eval("svg.graph g.node", (gs) =>
      gs.map((g) => `${g.getAttribute("data-kind")}:${g.getAttribute("data-verdict")}`),
    );
    t.ok(kinds.includes("pv:ok"), kinds.join(" "));
    t.ok(kinds.includes("pvc:ok"));
    t.ok(kinds.includes("pod:broken"));
    t.ok(kinds.includes("mount-pod:broken"));
    t.ok(kinds.includes("secret:ok"));
    t.ok(await page.locator("svg.graph").isVisible());
    await page.screenshot({ path: join(shots, "volume.png"), fullPage: true });
    // A click on the Mount Pod box opens its page.
    await page.locator('svg.graph g.node[data-kind="mount-pod"]').click();
    await page.waitForURL(/\/pods\/kube-system\//);
    t.match(await page.locator("h1").textContent(), /Mount Pod kube-system\//);
  });

  t.test("Mount Pod page: previous log with the crash, credentials blanked", async (t) => {
    await page.goto(`${c.url}/pods/${driverNs}/${c.broken.mountPod}`);
    await page.check('input[name="previous"]');
    await page.click('#log-form button[type="submit"]');
    await page.locator("#log", { hasText: /is not available/ }).waitFor();
    const log = (await page.locator("#log").textContent()) ?? "";
    t.match(log, /connection refused/);
    t.match(log, /\[REDACTED\]/, "the meta URL the client printed is blanked");
    assertNoCredentials(t, "the log viewer", log);
    await page.screenshot({ path: join(shots, "mount-pod.png"), fullPage: true });
  });

  t.test("follow mode: a line the container writes appears without a reload", async (t) => {
    // The healthy volume's app pod gets a container that logs a line every 300 ms.
    await c.f.c.core.createNamespacedPod({
      namespace: c.healthy.ns,
      body: {
        metadata: { name: "ticker" },
        spec: {
          nodeName: "node-1",
          containers: [
            {
              name: "app",
              image: "node",
              command: ["node", "-e", "let i=0;setInterval(()=>console.log('tick '+(i++)),300)"],
              volumeMounts: [{ name: "data", mountPath: "/data", mountPropagation: "HostToContainer" }],
            },
          ],
          volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data" } }],
        },
      },
    });
    await page.goto(`${c.url}/pods/${c.healthy.ns}/ticker`);
    await page.locator("#log", { hasText: /tick 0/ }).waitFor({ timeout: 20_000 });
    const seen = (await page.locator("#log").textContent()) ?? "";
    const last = Math.max(...[...seen.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
    await page.locator("#log", { hasText: new RegExp(`tick ${last + 2}\\b`) }).waitFor({ timeout: 10_000 });
    const after = (await page.locator("#log").textContent()) ?? "";
    t.equal(after.match(/tick 0\n/g)?.length, 1, "lines already shown are not sent again");
    t.pass("new lines streamed in");
  });

  t.test("live update: the overview follows the cluster", async (t) => {
    await page.goto(`${c.url}/`);
    await page.locator("#live", { hasText: /^live$/ }).waitFor();
    const before = await page.locator("p.counts").textContent();
    t.match(before, /3 app pods/);
    await c.f.c.core.deleteNamespacedPod({ namespace: c.healthy.ns, name: "ticker", gracePeriodSeconds: 0 });
    await page.locator("p.counts", { hasText: /2 app pods/ }).waitFor({ timeout: 15_000 });
    t.pass("the count changed without a reload");
  });

  t.test("driver health page", async (t) => {
    await page.goto(`${c.url}/health`);
    t.match((await page.locator("table.nodes").textContent()) ?? "", /node-1juicefs-csi-node-node-1yes/);
    await page.screenshot({ path: join(shots, "health.png"), fullPage: true });
  });

  t.test("no script error, no credential in any response", async (t) => {
    const all = await Promise.all(responses);
    t.ok(all.length >= 8, `${all.length} responses`);
    for (const [url, body] of all) assertNoCredentials(t, url, body);
    t.same(errors, []);
  });
}
