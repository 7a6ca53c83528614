// The webhooks' matchConditions, rendered by `helm template` and evaluated by a CEL engine against
// requests as the API server builds them. What this proves: other drivers' PVs, PVCs, StorageClasses
// and pods never reach the webhook (so its outage cannot block them), objects being deleted are never
// judged, and an injected pod still reaches the mutating webhook on reinvocation.
//
// How the API server evaluates them (KEP-3716, admissionregistration.k8s.io/v1 MatchCondition): the
// variables are `object` (null for DELETE), `oldObject` (null for CREATE), `request` (the
// AdmissionRequest's attributes) and `authorizer`; objects are untyped (unstructured), so a missing
// field is an error unless guarded by has(); all conditions must be true for the webhook to be
// called; an evaluation error is a failure handled by failurePolicy (with Fail: the request is
// refused). So every sample below must evaluate without error, to true or false.
// Kubernetes 1.28 has matchConditions as beta (feature gate AdmissionWebhookMatchConditions, on by
// default), 1.30 GA; the chart needs >= 1.28. Optional syntax (`[?k]`) is not used: it is not in 1.28.
import { parse } from "@marcbachmann/cel-js";
import t from "tap";
import { driverName, labels } from "../../driver/juicefs/constants.ts";
import { globalConfigName } from "../../driver/juicefs/global-config.ts";
import { type K8sObject, ofKind, render, renderCi } from "./helpers.ts";

interface Webhook {
  name: string;
  matchConditions?: { name: string; expression: string }[];
}
const webhooks = (objs: K8sObject[]) =>
  [
    ...ofKind(objs, "MutatingWebhookConfiguration"),
    ...ofKind(objs, "ValidatingWebhookConfiguration"),
  ].flatMap((o) => (o as unknown as { webhooks: Webhook[] }).webhooks);

type Json = Record<string, unknown>;

/** Whether the API server would call the webhook; throws when a condition fails to evaluate. */
function calls(w: Webhook, operation: "CREATE" | "UPDATE", object: Json, oldObject: Json | null = null) {
  const request = { operation, name: (object.metadata as Json)?.name ?? "", dryRun: false };
  for (const c of w.matchConditions ?? []) {
    const r = parse(c.expression)({ object, oldObject, request });
    if (typeof r !== "boolean") throw new Error(`${w.name}/${c.name} gave ${String(r)}, not a bool`);
    if (!r) return false;
  }
  return true;
}

const pvc = (annotations?: Record<string, string>, extra: Json = {}) => ({
  apiVersion: "v1",
  kind: "PersistentVolumeClaim",
  metadata: { name: "data", namespace: "app", ...(annotations ? { annotations } : {}), ...extra },
  spec: {
    storageClassName: "gp3",
    accessModes: ["ReadWriteOnce"],
    resources: { requests: { storage: "1Gi" } },
  },
});
const pv = (spec: Json, metadata: Json = {}) => ({
  apiVersion: "v1",
  kind: "PersistentVolume",
  metadata: { name: "pv-1", ...metadata },
  spec: { capacity: { storage: "1Gi" }, accessModes: ["ReadWriteMany"], ...spec },
});
const pod = (volumes: Json[] | undefined, metadata: Json = {}) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { generateName: "web-", namespace: "app", ...metadata },
  spec: { containers: [{ name: "app", image: "nginx" }], ...(volumes ? { volumes } : {}) },
});
const deleting = { deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: ["kubernetes.io/pv-protection"] };

t.test("rendered matchConditions scope every webhook to what it can judge", async (t) => {
  const byName = Object.fromEntries(webhooks(await renderCi("default")).map((w) => [w.name, w]));
  const w = (n: string) => {
    const x = byName[`${n}.csi.juicefs.com`];
    if (!x) throw new Error(`webhook ${n} is not rendered`);
    return x;
  };

  t.test("PVCs: only claims with juicefs/ annotations", async (t) => {
    const v = w("validate-pvc");
    t.notOk(calls(v, "CREATE", pvc()), "a claim without annotations (any driver) stays in the API server");
    t.notOk(calls(v, "CREATE", pvc({ "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com" })));
    t.ok(calls(v, "CREATE", pvc({ "juicefs/mount-memory-limit": "2Gi" })));
    const bound = pvc({ "juicefs/mount-memory-limit": "2Gi", "pv.kubernetes.io/bind-completed": "yes" });
    t.ok(
      calls(v, "UPDATE", bound, pvc({ "juicefs/mount-memory-limit": "2Gi" })),
      "binding is judged (ratcheted)",
    );
    t.notOk(
      calls(
        v,
        "UPDATE",
        pvc({ "juicefs/mount-memory-limit": "x" }, deleting),
        pvc({ "juicefs/mount-memory-limit": "x" }),
      ),
      "a claim being deleted is not judged",
    );
  });

  t.test("PVs: only this driver's CSI volumes, never one being deleted", async (t) => {
    const v = w("validate-pv");
    const ours = { csi: { driver: driverName, volumeHandle: "pv-1" } };
    t.ok(calls(v, "CREATE", pv(ours)));
    t.notOk(calls(v, "CREATE", pv({ csi: { driver: "ebs.csi.aws.com", volumeHandle: "vol-1" } })));
    t.notOk(calls(v, "CREATE", pv({ hostPath: { path: "/data" } })), "no csi: false, not an error");
    t.notOk(calls(v, "UPDATE", pv(ours, deleting), pv(ours, deleting)), "finalizer removal is not judged");
  });

  t.test("StorageClasses and Secrets", async (t) => {
    const sc = (provisioner: string, metadata: Json = {}) => ({
      apiVersion: "storage.k8s.io/v1",
      kind: "StorageClass",
      metadata: { name: "c", ...metadata },
      provisioner,
    });
    t.ok(calls(w("validate-storageclass"), "CREATE", sc(driverName)));
    t.notOk(calls(w("validate-storageclass"), "CREATE", sc("ebs.csi.aws.com")));
    t.notOk(calls(w("validate-storageclass"), "UPDATE", sc(driverName, deleting), sc(driverName)));
    const secret = (metadata: Json = {}) => ({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s", ...metadata },
    });
    t.ok(calls(w("validate-secret"), "CREATE", secret()));
    t.notOk(calls(w("validate-secret"), "UPDATE", secret(deleting), secret()));
  });

  t.test("ConfigMaps: only the global config, never one being deleted", async (t) => {
    const v = w("validate-global-config");
    const cm = (name: string, metadata: Json = {}) => ({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name, namespace: "kube-system", ...metadata },
      data: { "config.yaml": "mountPodPatch: []" },
    });
    t.ok(calls(v, "CREATE", cm(globalConfigName)));
    t.ok(calls(v, "UPDATE", cm(globalConfigName), cm(globalConfigName)));
    t.notOk(calls(v, "CREATE", cm("kube-root-ca.crt")), "every other ConfigMap stays in the API server");
    t.notOk(calls(v, "UPDATE", cm(globalConfigName, deleting), cm(globalConfigName)));
  });

  t.test(
    "pods: mutation for claims and for injected pods (reinvocation); validation for our annotations",
    async (t) => {
      const m = w("mutate-pod");
      const claim = [{ name: "data", persistentVolumeClaim: { claimName: "data" } }];
      t.notOk(calls(m, "CREATE", pod(undefined)), "no volumes");
      t.notOk(calls(m, "CREATE", pod([{ name: "tmp", emptyDir: {} }])), "no claim");
      t.ok(calls(m, "CREATE", pod(claim)));
      t.ok(
        calls(m, "CREATE", pod([{ name: "e", ephemeral: { volumeClaimTemplate: {} } }])),
        "generic ephemeral",
      );
      const injected = pod([{ name: "data", emptyDir: {} }], { labels: { [labels.injectDone]: "true" } });
      t.ok(calls(m, "CREATE", injected), "an injected pod comes back on reinvocation");
      t.notOk(calls(m, "CREATE", pod([{ name: "x", emptyDir: {} }], { labels: { app: "web" } })));
      const v = w("validate-pod");
      t.notOk(calls(v, "CREATE", pod(claim)), "no sidecar annotation: nothing to validate");
      t.ok(calls(v, "CREATE", pod(claim, { annotations: { "juicefs.com/sidecar-cpu-limit": "2" } })));
      t.notOk(calls(v, "CREATE", pod(undefined, { annotations: { "juicefs.com/sidecar-cpu-limit": "2" } })));
    },
  );

  t.test("every webhook has conditions, and each one can fail", async (t) => {
    for (const x of Object.values(byName)) t.ok((x.matchConditions ?? []).length > 0, `${x.name} is scoped`);
  });
});

t.test(
  "sidecar mode: a WaitForFirstConsumer StorageClass of ours reaches the webhook (to be warned about)",
  async (t) => {
    const v = webhooks(await renderCi("sidecar-mode-values.yaml")).find(
      (w) => w.name === "validate-storageclass.csi.juicefs.com",
    );
    if (!v) throw new Error("validate-storageclass is not rendered in sidecar mode");
    const rules = (v as unknown as { rules: { resources: string[]; operations: string[] }[] }).rules;
    t.same(rules[0]?.resources, ["storageclasses"]);
    t.same(rules[0]?.operations, ["CREATE", "UPDATE"]);
    const sc = {
      apiVersion: "storage.k8s.io/v1",
      kind: "StorageClass",
      metadata: { name: "juicefs-wffc" },
      provisioner: driverName,
      parameters: { "csi.storage.k8s.io/node-publish-secret-name": "s" },
      reclaimPolicy: "Delete",
      volumeBindingMode: "WaitForFirstConsumer",
    };
    t.ok(calls(v, "CREATE", sc), "CREATE is sent");
    t.ok(
      calls(v, "UPDATE", { ...sc, metadata: { ...sc.metadata, labels: { a: "b" } } }, sc),
      "UPDATE is sent",
    );
  },
);

t.test("the objectSelector no longer hides injected pods from reinvocation", async (t) => {
  const [m] = ofKind(await render([]), "MutatingWebhookConfiguration").flatMap(
    (o) => (o as unknown as { webhooks: (Webhook & { objectSelector: unknown })[] }).webhooks,
  );
  t.same(m?.objectSelector, {
    matchExpressions: [{ key: labels.injectDisable, operator: "NotIn", values: ["true"] }],
  });
});
