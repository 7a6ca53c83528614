import t from "tap";
import { version } from "../../lib/version.ts";
import { runCli } from "../helpers/cli.ts";

t.test("version prints the package version and the Node runtime", async (t) => {
  const r = await runCli(["version"]);
  t.equal(r.code, 0);
  t.equal(r.stdout, `juicefs-csi ${version} (node ${process.version})\n`);
  const j = await runCli(["version", "--json"]);
  t.same(JSON.parse(j.stdout), { name: "juicefs-csi", version, node: process.version });
  t.match(process.version, /^v24\./, "tests run under the project's Node 24");
});

t.test("an unknown subcommand is a one-line usage error with exit code 2", async (t) => {
  const r = await runCli(["mount-everything"]);
  t.equal(r.code, 2);
  t.equal(r.stdout, "");
  t.equal(r.stderr, "juicefs-csi: unknown command 'mount-everything'\n");
});

t.test("an unknown flag is a one-line usage error with exit code 2", async (t) => {
  const r = await runCli(["version", "--frobnicate"]);
  t.equal(r.code, 2);
  t.equal(r.stderr, "juicefs-csi: unknown option '--frobnicate'\n");
});

t.test("a bad choice names the option and the allowed values", async (t) => {
  const r = await runCli(["driver", "--mount-mode", "fuse"]);
  t.equal(r.code, 2);
  t.match(
    r.stderr,
    /^juicefs-csi: option '--mount-mode <mode>' argument 'fuse' is invalid\. Allowed choices are pod, process, sidecar\.\n$/,
  );
});

for (const cmd of ["inject", "validate"]) {
  t.test(`${cmd} with a missing file names it and exits 2`, async (t) => {
    const r = await runCli([cmd, "-f", "/nonexistent/pod.yaml"]);
    t.equal(r.code, 2);
    t.equal(r.stderr, "juicefs-csi: -f /nonexistent/pod.yaml: no such file\n");
  });
  t.test(`${cmd} without -f is a usage error`, async (t) => {
    const r = await runCli([cmd]);
    t.equal(r.code, 2);
    t.match(r.stderr, /required option '-f, --file <file>' not specified/);
    t.equal(r.stderr.split("\n").length, 2, "one line");
  });
}

t.test("--help lists every subcommand", async (t) => {
  const r = await runCli(["--help"]);
  t.equal(r.code, 0);
  for (const c of ["driver", "webhook", "inject", "validate", "version"])
    t.match(r.stdout, new RegExp(`\\n  ${c} `));
});
