// `npm test`: every check CI runs, in order, stopping at the first failing step. Always ends with
// the plain line "N passed, N failed, N skipped" (tap's assertion totals) so CI can tell that tests ran.
import { spawnSync } from "node:child_process";
import { existsSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../lib/paths.ts";
import { helmPath } from "../lib/tools.ts";
import { summarize } from "./test-summary.ts";

const bin = (n: string) => join(projectRoot, "node_modules", ".bin", n);
const chart = join(projectRoot, "charts", "juicefs-csi-driver");
// Extra arguments go to tap (e.g. `npm test -- test/cli`).
// A folder stands for the test files in it (tap's `include` setting does not match bare folders).
const tapArgs = process.argv
  .slice(2)
  .map((a) => (existsSync(a) && statSync(a).isDirectory() ? `${a.replace(/\/$/, "")}/**/*.test.ts` : a));

interface Step {
  name: string;
  cmd: string;
  args: string[];
  when?: () => boolean;
}

const steps: Step[] = [
  { name: "tools", cmd: process.execPath, args: [join(projectRoot, "scripts", "setup-tools.ts")] },
  { name: "typecheck", cmd: bin("tsc"), args: ["--noEmit", "-p", "tsconfig.json"] },
  { name: "lint", cmd: bin("biome"), args: ["check", "--error-on-warnings", "."] },
  {
    name: "helm lint",
    cmd: "helm",
    args: ["lint", "--strict", chart],
    when: () => existsSync(join(chart, "Chart.yaml")),
  },
  { name: "tap", cmd: bin("tap"), args: tapArgs },
];

if (!process.version.startsWith("v24.")) {
  console.error(`npm test must run under Node 24 (node_modules/.bin/node); this is ${process.version}.`);
  process.exit(1);
}

rmSync(join(projectRoot, ".tap", "test-results"), { recursive: true, force: true });
let failed: string | undefined;
for (const s of steps) {
  if (s.when && !s.when()) continue;
  const cmd = s.cmd === "helm" ? helmPath() : s.cmd;
  const started = Date.now();
  const r = spawnSync(cmd, s.args, {
    stdio: "inherit",
    cwd: projectRoot,
    env: { ...process.env, JUICEFS_CSI_SETUP_QUIET: "1" },
  });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (r.status !== 0) {
    failed = s.name;
    console.error(`\n✗ ${s.name} failed (${secs}s)`);
    break;
  }
  console.error(`✓ ${s.name} (${secs}s)`);
}
const t = summarize(join(projectRoot, ".tap", "test-results"));
if (failed === undefined && t.passed === 0) failed = "tap ran no test";
console.log(`${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
process.exit(failed === undefined && t.failed === 0 ? 0 : 1);
