// The dashboard against the doctor's stand-in cluster (test/doctor/fixtures.ts): one healthy volume
// (Mount Pod serving, app pod running) and one broken one (its Mount Pod crash-loops and prints its
// meta URL, as a careless client may), started as `juicefs-csi dashboard` starts it.
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import t, { type Test } from "tap";
import { type DashboardHandle, startDashboard } from "../../dashboard/main.ts";
import {
  driverNs,
  type Fixture,
  markers,
  podStatus,
  type Scenario,
  scenario,
  startFixture,
} from "../doctor/fixtures.ts";
import { eventually } from "../kube/cluster.ts";

export interface DashboardCluster {
  f: Fixture;
  dash: DashboardHandle;
  url: string;
  healthy: Scenario;
  broken: Scenario;
  /** Starts another dashboard on the same cluster (e.g. token mode). */
  start(o?: { auth?: "none" | "token" }): Promise<{ dash: DashboardHandle; url: string }>;
}

/** The dashboard's identity in the stand-in's access log. */
export const dashboardUser = "system:serviceaccount:kube-system:juicefs-csi-dashboard";

/** Every credential of the stand-in Secrets: no response may contain one. */
export const credentials = [markers.metaurl, markers.accessKey, markers.secretKey, "MARKER-metaurl-pw"];

export async function dashboardCluster(): Promise<DashboardCluster> {
  const f = await startFixture();
  t.teardown(() => f.stop());
  const healthy = await scenario(f, "shop", { mountPod: "serve", pod: {} });
  const broken = await scenario(f, "billing", { mountPod: "crash", pod: {} });
  await eventually(
    "the broken Mount Pod crash-loops",
    async () => {
      const cs = (await podStatus(f, driverNs, broken.mountPod!))?.status?.containerStatuses?.[0];
      // Two restarts: from then on the doctor calls it a crash loop even while it briefly runs.
      return (cs?.restartCount ?? 0) >= 2;
    },
    30_000,
  );
  const start = async (o: { auth?: "none" | "token" } = {}) => {
    // As its own user, so the test can compare what it called with the chart's ClusterRole.
    const kc = new KubeConfig();
    kc.loadFromString(f.c.api.kubeconfig({ user: dashboardUser }));
    const dash = await startDashboard({
      kc,
      port: 0,
      log: pino({ level: "silent" }),
      followEveryMs: 200,
      updateEveryMs: 100,
      ...(o.auth ? { auth: o.auth } : {}),
    });
    t.teardown(() => dash.close());
    const url = `http://127.0.0.1:${dash.port}`;
    await eventually("dashboard ready", async () => (await fetch(`${url}/readyz`)).ok, 20_000);
    return { dash, url };
  };
  const { dash, url } = await start();
  return { f, dash, url, healthy, broken, start };
}

export function assertNoCredentials(tt: Test, what: string, body: string): void {
  for (const c of credentials)
    tt.notOk(body.includes(c), `${what} carries no credential (${c.slice(0, 12)}…)`);
}
