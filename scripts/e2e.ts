// `npm run e2e -- --kubeconfig FILE`: the e2e suite (test/e2e/*.test.ts) against a real cluster; without
// --kubeconfig, against the stand-ins (as `npm test` runs it). Prints the figures test/e2e/figures.test.ts
// measured: first mount, publish latency, 50-way concurrent publish, recovery after the client dies.
//
// On a real cluster this process is the node plugin under test: run it on a node (privileged, root,
// in the host's mount namespace, e.g. a privileged pod with hostPID and /var/lib mounted
// Bidirectional), with the chart installed (its ServiceAccount and RBAC, which the plugin acts as),
// but without the chart's own node plugin on that node. Credentials of the test file system come from
// the environment only (never from arguments, which other users of the node can read):
//   E2E_METAURL, E2E_ACCESS_KEY, E2E_SECRET_KEY (and --storage / --bucket for the rest).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { projectRoot } from "../lib/paths.ts";

const e2eDir = join(projectRoot, "test", "e2e");

/** The suite's test files: *.test.ts only (harness.ts is a module the tests import, not a test). */
export function e2eTestFiles(): string[] {
  return readdirSync(e2eDir)
    .filter((f) => f.endsWith(".test.ts"))
    .sort()
    .map((f) => join("test", "e2e", f));
}

const flags = {
  kubeconfig: "kubeconfig of the cluster (default: the stand-ins)",
  node: "name of the node this process runs on (E2E_NODE_NAME; required with --kubeconfig)",
  "host-root": "host directory for targets and mount points, shared with the node (E2E_HOST_ROOT)",
  namespace: "namespace of the chart's release: Mount Pods go there (default kube-system)",
  "plugin-user": "identity the plugin acts as (default system:serviceaccount:<namespace>:juicefs-csi-node)",
  storage: "object storage type of the test file system (E2E_STORAGE)",
  bucket: "bucket of the test file system (E2E_BUCKET)",
  "app-image": "image of the app pods (default registry.k8s.io/pause:3.10)",
  "mount-cpu-request":
    "CPU request of the suite's Mount Pods (E2E_MOUNT_CPU_REQUEST; default 100m on a cluster)",
  "step-timeout": "milliseconds each wait may take (default 180000 on a cluster, 15000 on the stand-ins)",
  "run-id": "id of this run (default: random); names its namespace e2e-<id>",
} as const;

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      ...Object.fromEntries(Object.keys(flags).map((k) => [k, { type: "string" as const }])),
      help: { type: "boolean" as const },
    },
  });
  const v = values as Record<string, string | boolean | undefined>;
  if (v.help) {
    console.log("npm run e2e -- [--kubeconfig FILE --node NAME] [options] [test files]\n");
    for (const [k, d] of Object.entries(flags)) console.log(`  --${k.padEnd(18)} ${d}`);
    process.exit(0);
  }
  const env: NodeJS.ProcessEnv = { ...process.env };
  const str = (k: string) => (typeof v[k] === "string" ? (v[k] as string) : undefined);
  const kubeconfig = str("kubeconfig");
  if (kubeconfig) {
    if (!existsSync(kubeconfig)) {
      console.error(`e2e: --kubeconfig ${kubeconfig}: no such file`);
      process.exit(2);
    }
    if (!str("node") && !process.env.E2E_NODE_NAME) {
      console.error("e2e: --node NAME is required with --kubeconfig (the node this process runs on)");
      process.exit(2);
    }
    env.KUBECONFIG = kubeconfig;
    // The node plugin under test must see what Mount Pods mount on the host: no private namespace.
    env.E2E_HOST_MOUNTS = "1";
  } else {
    delete env.KUBECONFIG;
    delete env.E2E_HOST_MOUNTS;
  }
  const map: Record<string, string> = {
    node: "E2E_NODE_NAME",
    "host-root": "E2E_HOST_ROOT",
    namespace: "E2E_DRIVER_NAMESPACE",
    "plugin-user": "E2E_PLUGIN_USER",
    storage: "E2E_STORAGE",
    bucket: "E2E_BUCKET",
    "app-image": "E2E_APP_IMAGE",
    "mount-cpu-request": "E2E_MOUNT_CPU_REQUEST",
    "step-timeout": "E2E_STEP_TIMEOUT_MS",
    "run-id": "E2E_RUN_ID",
  };
  for (const [flag, name] of Object.entries(map)) if (str(flag)) env[name] = str(flag);
  const tmp = mkdtempSync(join(tmpdir(), "e2e-report-"));
  env.E2E_REPORT = join(tmp, "figures.json");
  // A real kubelet pulls images and starts pods in seconds to minutes: give each file room.
  const timeout = kubeconfig ? "1800" : "300";
  const files = positionals.length > 0 ? positionals : e2eTestFiles();
  // One node plugin per node: on a real node the files run one at a time, or each file's plugin would
  // take the others' Mount Pods (same node, same namespace, none of its targets) for leftovers.
  const jobs = kubeconfig ? ["--jobs", "1"] : [];
  const r = spawnSync(
    join(projectRoot, "node_modules", ".bin", "tap"),
    [...jobs, "--timeout", timeout, ...files],
    {
      cwd: projectRoot,
      stdio: "inherit",
      env,
    },
  );
  if (existsSync(env.E2E_REPORT)) {
    const { runId, figures } = JSON.parse(readFileSync(env.E2E_REPORT, "utf8")) as {
      runId: string;
      figures: Record<string, number>;
    };
    console.log(`\ne2e figures (run ${runId}, ${kubeconfig ? `cluster of ${kubeconfig}` : "stand-ins"}):`);
    const label: Record<string, string> = {
      firstMountMs: "time to first mount (new Mount Pod)",
      publishP50Ms: "publish latency, client running (p50)",
      publishMaxMs: "publish latency, client running (max)",
      publish50WallMs: "50 concurrent publishes, wall time",
      recoveryMs: "recovery after the client dies",
    };
    for (const [k, ms] of Object.entries(figures)) console.log(`  ${(label[k] ?? k).padEnd(40)} ${ms} ms`);
  }
  rmSync(tmp, { recursive: true, force: true });
  process.exit(r.status ?? 1);
}
