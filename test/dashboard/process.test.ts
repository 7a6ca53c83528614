// `juicefs-csi dashboard` as a process, as the chart runs it: JSON logs on stderr, serves once its
// caches are synced, 127.0.0.1 by default, and a clean exit on SIGTERM.
import { spawn } from "node:child_process";
import { join } from "node:path";
import t from "tap";
import { projectRoot } from "../../lib/paths.ts";
import { eventually, startCluster } from "../kube/cluster.ts";

t.test("serves, logs JSON, stops on SIGTERM", async (t) => {
  const c = await startCluster({ nodes: ["node-1"] });
  t.teardown(() => c.stop());
  const child = spawn(
    process.execPath,
    [join(projectRoot, "bin", "juicefs-csi.js"), "dashboard", "--kubeconfig", c.kubeconfig, "--port", "0"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  t.teardown(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  const serving = await eventually(
    "the serving log line",
    () =>
      stderr
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { msg: string; port?: number; host?: string; name?: string })
        .find((l) => l.msg === "dashboard serving"),
    20_000,
  );
  t.equal(serving.host, "127.0.0.1", "port-forward mode listens on loopback only");
  t.equal(serving.name, "juicefs-csi-dashboard");
  const url = `http://127.0.0.1:${serving.port}`;
  await eventually("ready", async () => (await fetch(`${url}/readyz`)).ok, 20_000);
  const page = await fetch(`${url}/`);
  t.equal(page.status, 200);
  t.match(await page.text(), /All 0 JuiceFS pods, claims and Mount Pods look healthy/);
  child.kill("SIGTERM");
  t.equal(await exited, 0);
  t.match(stderr, /"msg":"shutting down"/);
});
