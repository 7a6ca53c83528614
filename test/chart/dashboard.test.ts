// The chart's dashboard: off by default; when on, a Deployment running `juicefs-csi dashboard`, a
// ClusterRole of exactly dashboardAccess (reads only; TokenReview/SubjectAccessReview only in token
// mode), port-forward only without authentication (127.0.0.1, no Service, no Ingress), and the Go
// chart's dashboard keys mapped, without effect, or refused with the replacement named.
import t from "tap";
import { dashboardAccess, dashboardSecretAccess, dashboardTokenAccess } from "../../dashboard/access.ts";
import {
  container,
  has,
  installDryRun,
  namespace,
  ofKind,
  one,
  podSpec,
  release,
  render,
  renderCi,
  template,
} from "./helpers.ts";

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
}
const name = `${release}-dashboard`;
const grants = (rules: Rule[]) =>
  [
    ...new Set(
      rules.flatMap((r) =>
        (r.apiGroups ?? [""]).flatMap((g) =>
          (r.resources ?? []).flatMap((res) => r.verbs.map((v) => `${g} ${res} ${v}`)),
        ),
      ),
    ),
  ].sort();
const expected = (rules: readonly { apiGroup: string; resource: string; verbs: readonly string[] }[]) =>
  [...new Set(rules.flatMap((r) => r.verbs.map((v) => `${r.apiGroup} ${r.resource} ${v}`)))].sort();

t.test("off by default", async (t) => {
  const objs = await render();
  t.notOk(has(objs, "Deployment", name));
  t.notOk(has(objs, "ClusterRole", name));
});

t.test("port-forward mode: 127.0.0.1 in the pod, no Service, reads only", async (t) => {
  const objs = await render(["--set", "dashboard.enabled=true"]);
  const d = one(objs, "Deployment", name);
  const c = container(d, "dashboard");
  t.match(c.image, /^juicedata\/juicefs-csi:/);
  t.same(c.args?.slice(0, 4), ["dashboard", "--port=8088", "--address=127.0.0.1", "--auth=none"]);
  t.equal(podSpec(d).serviceAccountName, name);
  t.notOk(has(objs, "Service", name), "nothing but port-forward reaches it");
  t.notOk(has(objs, "Ingress", name));
  const probe = (c as unknown as { readinessProbe: { exec?: { command: string[] } } }).readinessProbe;
  t.match(probe.exec?.command.join(" "), /127\.0\.0\.1:8088\/readyz/, "probed from inside the pod");
  const role = one(objs, "ClusterRole", name) as unknown as { rules: Rule[] };
  t.same(grants(role.rules), expected([...dashboardAccess, dashboardSecretAccess]));
  t.ok(
    role.rules.every((r) => r.verbs.every((v) => ["get", "list", "watch"].includes(v))),
    "only get/list/watch",
  );
  const binding = one(objs, "ClusterRoleBinding", name) as unknown as { subjects: { name: string }[] };
  t.equal(binding.subjects[0]?.name, name);
  const noSecrets = await render(["--set", "dashboard.enabled=true", "--set", "dashboard.readSecrets=false"]);
  t.same(
    grants((one(noSecrets, "ClusterRole", name) as unknown as { rules: Rule[] }).rules),
    expected(dashboardAccess),
  );
});

t.test("token mode: Service, Ingress, TokenReview and SubjectAccessReview", async (t) => {
  const objs = await render([
    "--set",
    "dashboard.enabled=true",
    "--set",
    "dashboard.auth.mode=token",
    "--set",
    "dashboard.ingress.enabled=true",
    "--set",
    "dashboard.ingress.className=nginx",
    "--set",
    "dashboard.ingress.hosts[0].host=jfs.example.com",
  ]);
  const c = container(one(objs, "Deployment", name), "dashboard");
  t.ok(c.args?.includes("--auth=token"));
  t.ok(c.args?.includes("--address=0.0.0.0"));
  const svc = one(objs, "Service", name) as unknown as { spec: { type: string; ports: { port: number }[] } };
  t.equal(svc.spec.type, "ClusterIP");
  t.equal(svc.spec.ports[0]?.port, 8088);
  const ing = one(objs, "Ingress", name) as unknown as {
    spec: {
      ingressClassName: string;
      rules: { host: string; http: { paths: { backend: { service: { name: string } } }[] } }[];
    };
  };
  t.equal(ing.spec.ingressClassName, "nginx");
  t.equal(ing.spec.rules[0]?.host, "jfs.example.com");
  t.equal(ing.spec.rules[0]?.http.paths[0]?.backend.service.name, name);
  const role = one(objs, "ClusterRole", name) as unknown as { rules: Rule[] };
  t.same(grants(role.rules), expected([...dashboardAccess, dashboardSecretAccess, ...dashboardTokenAccess]));
});

t.test("refusals name the replacement", async (t) => {
  const noAuth = await template([
    "--set",
    "dashboard.enabled=true",
    "--set",
    "dashboard.ingress.enabled=true",
  ]);
  t.not(noAuth.code, 0);
  t.match(noAuth.stderr, /dashboard\.ingress\.enabled needs dashboard\.auth\.mode: token/);
  const basic = await template(["--set", "dashboard.auth.enabled=true"]);
  t.not(basic.code, 0);
  t.match(basic.stderr, /dashboard\.auth\.enabled: true .*use dashboard\.auth\.mode: token/);
  const typo = await template(["--set", "dashboard.enabeld=true"]);
  t.not(typo.code, 0, "the schema refuses unknown keys");
  const mode = await template(["--set", "dashboard.auth.mode=basic"]);
  t.not(mode.code, 0);
});

t.test("the Go chart's defaults (dashboard.enabled: true) give the read-only dashboard", async (t) => {
  const objs = await renderCi("go-chart-defaults-values.yaml");
  const d = one(objs, "Deployment", name);
  const c = container(d, "dashboard");
  t.ok(c.args?.includes("--auth=none"), "Go's auth.enabled: false is port-forward mode");
  t.same((c as unknown as { resources: unknown }).resources, {
    limits: { cpu: "1000m", memory: "1Gi" },
    requests: { cpu: "100m", memory: "200Mi" },
  });
  t.equal((podSpec(d) as { priorityClassName?: string }).priorityClassName, "system-node-critical");
  t.equal(ofKind(objs, "Ingress").length, 0);
});

t.test("NOTES.txt says how to reach it", async (t) => {
  const r = await installDryRun(["--set", "dashboard.enabled=true"]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, `kubectl port-forward -n ${namespace} deploy/${name} 8088:8088`);
});
