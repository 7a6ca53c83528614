import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

t.test("webhook --port that is not a port number is a usage error naming the flag", async (t) => {
  for (const port of ["abc", "70000", "-1", "12a"]) {
    const r = await runCli(["webhook", "--port", port]);
    t.equal(r.code, 2, port);
    t.equal(
      r.stderr,
      `juicefs-csi: option '--port <port>' argument '${port}' is invalid. not a port number (0-65535).\n`,
    );
  }
});

t.test("inject -o with an unknown format is a usage error listing the formats", async (t) => {
  const r = await runCli(["inject", "-f", "examples/pod.yaml", "-o", "xml"]);
  t.equal(r.code, 2);
  t.equal(r.stdout, "");
  t.equal(
    r.stderr,
    "juicefs-csi: option '-o, --output <format>' argument 'xml' is invalid. Allowed choices are yaml, json.\n",
  );
});

t.test(
  "webhook without certificates names the missing flag, or the Secret at the chart's paths",
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "cli-certs-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const def = await runCli(["webhook"]);
    t.equal(def.code, 2);
    t.equal(
      def.stderr,
      "juicefs-csi: --tls-cert-file /etc/webhook/certs/tls.crt: no such file (the webhook's TLS Secret (keys tls.crt and tls.key) is not mounted at /etc/webhook/certs; in the chart it is <release>-webhook-tls (webhook.tls.source), elsewhere pass --tls-cert-file)\n",
    );
    const cert = join(dir, "tls.crt");
    writeFileSync(cert, "not checked here: only that the files exist");
    const key = await runCli(["webhook", "--tls-cert-file", cert, "--tls-key-file", join(dir, "tls.key")]);
    t.equal(key.code, 2);
    t.equal(
      key.stderr,
      `juicefs-csi: --tls-key-file ${join(dir, "tls.key")}: no such file (pass --tls-key-file with the PEM file)\n`,
    );
    const isDir = await runCli(["webhook", "--tls-cert-file", dir, "--tls-key-file", cert]);
    t.equal(isDir.code, 2);
    t.match(isDir.stderr, `--tls-cert-file ${dir}: not a file`);
  },
);
