// The injected client starts under the pod's security settings, and Pod Security namespaces that
// cannot admit it are refused at admission with a message that names the label and the way out.
import t from "tap";
import type { AdmissionReviewResponse } from "../../webhook/admission.ts";
import { MemoryLookup } from "../../webhook/lookup.ts";
import { runAsNonRootError } from "../kube/kubelet.ts";
import { cluster, pod } from "./fixtures.ts";
import { applyPatch, decodePatch, podReview, testServer, validatePod } from "./helpers.ts";

// biome-ignore lint/suspicious/noExplicitAny: pods are plain JSON here.
type Json = any;

const nsWith = (name: string, labels: Record<string, string>) => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, labels: { "juicefs.com/enable-injection": "true", ...labels } },
});
// The fixtures' default namespace, relabelled; the claim data-1 lives there.
const withDefault = (labels: Record<string, string>) =>
  cluster.map((o) =>
    (o as Json).kind === "Namespace" && (o as Json).metadata.name === "default"
      ? nsWith("default", labels)
      : o,
  );

const appPod = (securityContext?: Json) =>
  pod({
    ...(securityContext ? { securityContext } : {}),
    containers: [
      {
        name: "app",
        image: "registry.example.com/app:1",
        volumeMounts: [{ name: "data", mountPath: "/data" }],
      },
    ],
    volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data-1" } }],
  });

async function mutate(objects: unknown[], p: Json, native = true) {
  const lookup = new MemoryLookup(structuredClone(objects));
  const app = await testServer(objects, { native, lookup });
  try {
    const res = await app.inject({ method: "POST", url: "/mutate-pod", payload: podReview(p) });
    const r = res.json() as AdmissionReviewResponse;
    const ops = decodePatch(r);
    return { r: r.response, pod: ops ? applyPatch(p, ops) : p, lookup };
  } finally {
    await app.close();
  }
}

t.test("pod-level runAsNonRoot / runAsUser cannot break the sidecar", async (t) => {
  const strict = { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 2000 };
  for (const native of [true, false]) {
    const { r, pod: out } = await mutate(cluster, appPod(strict), native);
    t.equal(r.allowed, true);
    validatePod(out);
    const all: Json[] = [...(out.spec.initContainers ?? []), ...out.spec.containers];
    const sidecar = all.find((c) => c.name === "jfs-mount");
    t.same(sidecar.securityContext, {
      privileged: true,
      allowPrivilegeEscalation: true,
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      capabilities: { add: ["SYS_ADMIN"] },
    });
    // The kubelet's own check (modelled in the stand-in from verifyRunAsNonRoot) passes for the
    // sidecar and still applies to the app, which inherits the pod's settings.
    t.equal(runAsNonRootError(out, sidecar), undefined, `sidecar starts (native=${native})`);
    t.equal(
      runAsNonRootError(
        out,
        all.find((c) => c.name === "app"),
      ),
      undefined,
    );
    // Without the explicit fields (the builder's old {privileged, runAsUser: 0}) the kubelet refuses.
    t.match(
      runAsNonRootError(out, { ...sidecar, securityContext: { privileged: true, runAsUser: 0 } }),
      /runAsUser breaks non-root policy/,
    );
  }
});

t.test(
  "Pod Security enforce baseline/restricted: refused at admission, naming the label and Mount Pod mode",
  async (t) => {
    for (const level of ["baseline", "restricted"]) {
      const objs = withDefault({ "pod-security.kubernetes.io/enforce": level });
      const { r, lookup } = await mutate(objs, appPod());
      t.match(r, {
        allowed: false,
        status: {
          code: 403,
          message: new RegExp(
            `namespace "default" enforces Pod Security "${level}" \\(label pod-security\\.kubernetes\\.io/enforce\\).*Mount Pod mode \\(chart value mountMode: pod\\)`,
          ),
        },
      });
      t.equal(lookup.reads.namespace, 1, "one cache read of the namespace, no API call");
    }
    const warn = await mutate(
      withDefault({
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/warn": "restricted",
      }),
      appPod(),
    );
    t.equal(warn.r.allowed, true);
    t.match(warn.r.warnings, [/Pod Security warn="restricted"/]);
    t.ok(warn.pod.spec.initContainers?.length, "injected");
    // Pods without a JuiceFS claim in such a namespace are none of our business.
    const other = pod({
      containers: [{ name: "a", image: "a" }],
      volumes: [{ name: "e", persistentVolumeClaim: { claimName: "ebs" } }],
    });
    t.match((await mutate(withDefault({ "pod-security.kubernetes.io/enforce": "restricted" }), other)).r, {
      allowed: true,
    });
  },
);
