// Import FIRST in test files and benchmarks that mount: as root, the test file re-runs itself in a private mount
// namespace (unshare -m), so whatever a failing test leaves mounted disappears with the namespace
// instead of leaking into the host (teardown still unmounts everything). Synchronous on purpose:
// nothing else (tap included) is evaluated in the parent process.
import { spawnSync } from "node:child_process";

export const isRoot = process.getuid?.() === 0;

const nsVar = "JUICEFS_CSI_TEST_MOUNT_NS";
/**
 * Set by `npm run e2e -- --kubeconfig` (scripts/e2e.ts): on a real node the test process is the node
 * plugin and must see the mounts Mount Pods make on the host, which a private namespace made before
 * them never would (they propagate to the host's namespace only).
 */
export const hostMountsVar = "E2E_HOST_MOUNTS";

if (
  isRoot &&
  process.env[nsVar] !== "1" &&
  process.env[hostMountsVar] !== "1" &&
  spawnSync("unshare", ["--mount", "true"]).status === 0
) {
  const r = spawnSync(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      process.execPath,
      ...process.execArgv,
      process.argv[1] as string,
      ...process.argv.slice(2),
    ],
    {
      stdio: "inherit",
      env: { ...process.env, [nsVar]: "1" },
      // Under tap a hung test file must not outlive tap's own timeout; benchmarks run as long as they need.
      ...(process.env.TAP === "1" ? { timeout: 170_000, killSignal: "SIGKILL" as const } : {}),
    },
  );
  process.exit(r.status ?? 1);
}

/** This process runs in a private mount namespace made for the test. */
export const inPrivateMountNamespace = process.env[nsVar] === "1";
