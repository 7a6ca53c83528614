// `juicefs-csi dashboard` usage errors: one line, exit code 2, like the other commands.
import t from "tap";
import { runCli } from "../helpers/cli.ts";

t.test("a bad --auth names the allowed values", async (t) => {
  const r = await runCli(["dashboard", "--auth", "basic"]);
  t.equal(r.code, 2);
  t.match(
    r.stderr,
    /^juicefs-csi: option '--auth <mode>' argument 'basic' is invalid\. Allowed choices are none, token\.\n$/,
  );
});

t.test("a bad port", async (t) => {
  const r = await runCli(["dashboard", "--port", "http"]);
  t.equal(r.code, 2);
  t.match(r.stderr, /--port.*not a port number/);
});

t.test("--tls-cert without --tls-key, and a missing file", async (t) => {
  const r = await runCli(["dashboard", "--tls-cert", "/nonexistent.crt"]);
  t.equal(r.code, 2);
  t.equal(r.stderr, "juicefs-csi: --tls-cert and --tls-key go together\n");
  const m = await runCli(["dashboard", "--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key"]);
  t.equal(m.code, 2);
  t.equal(m.stderr, "juicefs-csi: --tls-cert /nonexistent.crt: no such file\n");
});

t.test("a kubeconfig that does not load is a usage error", async (t) => {
  const r = await runCli(["dashboard", "--kubeconfig", "/nonexistent/kubeconfig", "--port", "0"]);
  t.equal(r.code, 2);
  t.match(r.stderr, /^juicefs-csi: cannot load kubeconfig \/nonexistent\/kubeconfig/);
});
