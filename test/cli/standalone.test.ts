// `npm run build:cli`: the single-file CLI (Node single executable application) and the kubectl
// plugin. Built once for this file (about 6 s), copied outside the checkout and run with an
// environment that has no node on PATH and no project files to lean on.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import t from "tap";
import { projectRoot } from "../../lib/paths.ts";
import { helmPath, kubectlPath } from "../../lib/tools.ts";
import { version } from "../../lib/version.ts";
import { buildCli } from "../../scripts/build-cli.ts";
import { ciDir } from "../chart/helpers.ts";
import { runCli } from "../helpers/cli.ts";

// Builds are CPU-bound: on a machine shared with other work they can take several times longer.
t.setTimeout(300_000);
const dir = mkdtempSync(join(tmpdir(), "standalone-cli-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const bin = join(dir, "bin");
const exe = join(bin, "juicefs-csi");
const examples = join(projectRoot, "examples");

t.before(async () => {
  const built = await buildCli(join(dir, "build"));
  spawnSync("mkdir", ["-p", bin]);
  copyFileSync(built.executable, exe);
  symlinkSync("juicefs-csi", join(bin, "kubectl-jfs"));
});

/** Runs a command with nothing but `bin` (and the given extra directories) on PATH, from `/`. */
function run(
  cmd: string,
  args: string[],
  extraPath: string[] = [],
  env: Record<string, string> = {},
  input = "",
) {
  const PATH = [bin, ...extraPath].join(":");
  return spawnSync(cmd, args, { cwd: "/", encoding: "utf8", input, env: { PATH, HOME: dir, ...env } });
}

t.test("no Node.js needed: nothing on PATH but the file itself", async (t) => {
  const which = run("/usr/bin/which", ["node"]);
  t.not(which.status, 0, "no node on PATH");
  const r = run(exe, ["version", "--json"]);
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout), { name: "juicefs-csi", version, node: "v24.21.0" });
  t.equal(r.stderr, "", "no experimental warning");
});

t.test("validate and inject on the sample manifests: the same output as the checkout's CLI", async (t) => {
  const bad = join(examples, "bad-writeback.yaml");
  const v = run(exe, ["validate", "-f", bad]);
  t.equal(v.status, 1);
  t.match(v.stdout, /invalid {2}StorageClass juicefs-fast: .*"writeback" is refused/);
  t.equal(v.stdout, (await runCli(["validate", "-f", bad])).stdout);
  const args = ["inject", "-f", join(examples, "pod.yaml"), "--manifests"];
  for (const f of ["secret.yaml", "pv.yaml", "pvc.yaml", "storageclass.yaml"]) args.push(join(examples, f));
  const i = run(exe, [...args, "-o", "json"]);
  t.equal(i.status, 0, i.stderr);
  t.match(JSON.parse(i.stdout), { metadata: { labels: { "done.sidecar.juicefs.com/inject": "true" } } });
  t.equal(i.stdout, (await runCli([...args, "-o", "json"])).stdout);
});

t.test("usage errors exit 2; the servers are not in the single file", async (t) => {
  const r = run(exe, ["inject", "-f", "/nonexistent.yaml"]);
  t.equal(r.status, 2);
  t.equal(r.stderr, "juicefs-csi: -f /nonexistent.yaml: no such file\n");
  const d = run(exe, ["driver"]);
  t.equal(d.status, 2);
  t.match(
    d.stderr,
    /^juicefs-csi: driver: not part of the single-file CLI; run it from the juicefs-csi image/,
  );
  const dash = run(exe, ["dashboard"]);
  t.equal(dash.status, 2);
  t.match(dash.stderr, /^juicefs-csi: dashboard: not part of the single-file CLI/);
});

t.test("lint-values uses the chart built into the file (helm from $HELM)", async (t) => {
  const env = { HELM: helmPath() };
  const ok = run(exe, ["lint-values", "-f", join(ciDir, "storage-classes-values.yaml")], [], env);
  t.equal(ok.status, 0, ok.stdout + ok.stderr);
  t.match(ok.stdout, /30 objects rendered/);
  t.equal(ok.stderr, "", "no warnings (e.g. the deprecated punycode built-in)");
  const bad = run(exe, ["lint-values", "-f", "-"], [], env, "mountMode: fuse\n");
  t.equal(bad.status, 1);
  t.match(
    bad.stdout,
    /^\(stdin\): at '\/mountMode': value must be one of 'pod', 'sidecar', 'process'.*\n1 problem\(s\)\n$/,
  );
});

t.test("kubectl jfs: kubectl finds the plugin on PATH and runs it", async (t) => {
  const kubectlDir = dirname(kubectlPath());
  const list = run(kubectlPath(), ["plugin", "list"], [kubectlDir]);
  t.match(list.stdout, join(bin, "kubectl-jfs"));
  const v = run(kubectlPath(), ["jfs", "version"], [kubectlDir]);
  t.equal(v.status, 0, v.stderr);
  t.equal(v.stdout, `juicefs-csi ${version} (node v24.21.0)\n`);
  const u = run(kubectlPath(), ["jfs", "frobnicate"], [kubectlDir]);
  t.equal(u.status, 2);
  t.equal(
    u.stderr,
    "kubectl jfs: unknown command 'frobnicate'\n",
    "errors name the command as the user typed it",
  );
  const h = run(kubectlPath(), ["jfs", "--help"], [kubectlDir]);
  t.match(h.stdout, /^Usage: kubectl jfs /);
});
