// The optional read-only ClusterRole for people who run `juicefs-csi doctor`: exactly doctorAccess
// (plus the Secret read when readSecrets), nothing by default, bound only to the subjects given.
import t from "tap";
import { doctorAccess, doctorSecretAccess, doctorWarmupAccess } from "../../driver/doctor/access.ts";
import { has, ofKind, one, release, render } from "./helpers.ts";

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}
const name = `${release}-doctor`;

function grants(rules: Rule[]): string[] {
  const out = new Set<string>();
  for (const r of rules)
    for (const g of r.apiGroups ?? [""])
      for (const res of r.resources ?? []) for (const v of r.verbs) out.add(`${g} ${res} ${v}`);
  return [...out].sort();
}
const expected = (rules: readonly { apiGroup: string; resource: string; verbs: readonly string[] }[]) =>
  [...new Set(rules.flatMap((r) => r.verbs.map((v) => `${r.apiGroup} ${r.resource} ${v}`)))].sort();

t.test("off by default", async (t) => {
  const objs = await render();
  t.notOk(has(objs, "ClusterRole", name));
});

t.test("doctor.rbac.create: exactly what the doctor reads, read-only", async (t) => {
  const objs = await render(["--set", "doctor.rbac.create=true"]);
  const role = one(objs, "ClusterRole", name) as unknown as { rules: Rule[] };
  t.same(grants(role.rules), expected([...doctorAccess, doctorSecretAccess]));
  // Rules the code narrows to named objects (the global config ConfigMap) are as narrow in the chart.
  for (const a of doctorAccess.filter((x) => x.resourceNames))
    t.same(
      role.rules.find((r) => r.resources?.includes(a.resource))?.resourceNames,
      [...a.resourceNames!],
      `${a.resource}: only ${a.resourceNames!.join(", ")}`,
    );
  for (const r of role.rules)
    t.ok(
      r.verbs.every((v) => v === "get" || v === "list"),
      "only get/list",
    );
  t.notOk(
    ofKind(objs, "ClusterRoleBinding").some((b) => b.metadata.name === name),
    "no binding without subjects",
  );
});

t.test("readSecrets=false keeps Secrets out; subjects get a binding", async (t) => {
  const objs = await render([
    "--set",
    "doctor.rbac.create=true",
    "--set",
    "doctor.rbac.readSecrets=false",
    "--set",
    "doctor.rbac.subjects[0].kind=Group",
    "--set",
    "doctor.rbac.subjects[0].name=sre",
    "--set",
    "doctor.rbac.subjects[0].apiGroup=rbac.authorization.k8s.io",
  ]);
  const role = one(objs, "ClusterRole", name) as unknown as { rules: Rule[] };
  t.same(grants(role.rules), expected(doctorAccess));
  const binding = one(objs, "ClusterRoleBinding", name) as unknown as {
    subjects: unknown[];
    roleRef: { kind: string; name: string };
  };
  t.same(binding.subjects, [{ kind: "Group", name: "sre", apiGroup: "rbac.authorization.k8s.io" }]);
  t.same(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name });
});

t.test(
  "doctor.rbac.warmup adds create on pods/exec and create/get/delete on jobs, and nothing else",
  async (t) => {
    const objs = await render(["--set", "doctor.rbac.create=true", "--set", "doctor.rbac.warmup=true"]);
    const role = one(objs, "ClusterRole", name) as unknown as { rules: Rule[] };
    t.same(grants(role.rules), expected([...doctorAccess, doctorSecretAccess, ...doctorWarmupAccess]));
    t.same(
      role.rules.filter((r) => !r.verbs.every((v) => v === "get" || v === "list")),
      [
        { apiGroups: [""], resources: ["pods/exec"], verbs: ["create"] },
        { apiGroups: ["batch"], resources: ["jobs"], verbs: ["create", "get", "delete"] },
      ],
      "the only verbs beyond reading: no list/watch/update on jobs, no create on pods",
    );
    await t.rejects(
      render(["--set", "doctor.rbac.create=true", "--set", "doctor.rbac.warmup=yes"]),
      "a boolean (values schema)",
    );
  },
);
