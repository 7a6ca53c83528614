// Every fixture through the real server (fastify inject: JSON in, AdmissionReview out): the answer,
// the full decoded patch applied to the original (compared with its golden file), the Pod schema of
// the result, idempotency on reinvocation, and the invariants every injected pod must satisfy.
// Regenerate goldens after an intended change (and review the diff):
//   UPDATE_GOLDEN=1 tap test/webhook/fixtures.test.ts && biome check --write test/webhook/golden
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t, { type Test } from "tap";
import { labels } from "../../driver/juicefs/index.ts";
import { sidecarClientContainers } from "../../driver/juicefs/injected.ts";
import { projectRoot } from "../../lib/paths.ts";
import type { AdmissionReviewResponse } from "../../webhook/admission.ts";
import type { MountMode } from "../../webhook/config.ts";
import { injectedVolumesAnnotation } from "../../webhook/inject.ts";
import type { WebhookServer } from "../../webhook/server.ts";
import { cluster, type Fixture, fixtures } from "./fixtures.ts";
import { applyPatch, decodePatch, podReview, serverCerts, testServer, validatePod } from "./helpers.ts";

const goldenDir = join(projectRoot, "test", "webhook", "golden");
const update = process.env.UPDATE_GOLDEN === "1";

// biome-ignore lint/suspicious/noExplicitAny: test code walks decoded JSON freely
type Obj = Record<string, any>;

const servers = new Map<string, WebhookServer>();
const certs = await serverCerts();

async function serverFor(mode: MountMode, native: boolean): Promise<WebhookServer> {
  const k = `${mode}/${native}`;
  const existing = servers.get(k);
  if (existing) return existing;
  const app = await testServer(cluster, {
    mode,
    native,
    certs,
    onFailure: (_k, err) => t.fail(`failure policy used: ${String(err)}`),
  });
  servers.set(k, app);
  return app;
}
t.teardown(async () => {
  for (const s of servers.values()) await s.close();
});

async function review(fx: { mode?: MountMode; native?: boolean }, body: unknown) {
  const app = await serverFor(fx.mode ?? "sidecar", fx.native ?? true);
  const res = await app.inject({ method: "POST", url: "/mutate-pod", payload: body as object });
  return { status: res.statusCode, json: res.json() as AdmissionReviewResponse };
}

function checkInvariants(t: Tap, fx: Fixture, original: Obj, mutated: Obj) {
  const spec = mutated.spec;
  const originalClaims = new Set<string>(
    (original.spec.volumes ?? []).filter((v: Obj) => v.persistentVolumeClaim).map((v: Obj) => v.name),
  );
  const mode = fx.mode ?? "sidecar";
  const all: Obj[] = [...(spec.initContainers ?? []), ...spec.containers];
  const names = all.map((c) => c.name);
  t.equal(new Set(names).size, names.length, "container names are unique");
  const vnames = (spec.volumes ?? []).map((v: Obj) => v.name);
  t.equal(new Set(vnames).size, vnames.length, "volume names are unique");
  // No mutation touches anything but spec, metadata.labels and our record of the injection.
  t.same(
    { ...mutated, spec: undefined, metadata: undefined },
    { ...original, spec: undefined, metadata: undefined },
    "only spec and metadata change",
  );
  const { [injectedVolumesAnnotation]: record, ...otherAnnotations } = mutated.metadata.annotations ?? {};
  t.same(
    { ...mutated.metadata, labels: undefined, annotations: undefined },
    { ...original.metadata, labels: undefined, annotations: undefined },
    "metadata other than labels and annotations unchanged",
  );
  t.same(otherAnnotations, original.metadata.annotations ?? {}, "the pod's own annotations unchanged");
  if (mode === "sidecar")
    t.same(
      Object.keys(JSON.parse(record)).sort(),
      [
        ...new Set(
          all
            .filter((c) => /^jfs-mount(-\d+)?$/.test(c.name))
            .flatMap((c) =>
              (c.volumeMounts ?? []).filter((m: Obj) => m.mountPath === "/jfs").map((m: Obj) => m.name),
            ),
        ),
      ].sort(),
      "the injection record names every injected volume",
    );
  else t.equal(record, undefined, "no injection record in Mount Pod mode");
  if (mode !== "sidecar") {
    t.notOk(mutated.metadata.labels?.[labels.injectDone], "no injection label in Mount Pod mode");
    t.same(spec.volumes, original.spec.volumes, "volumes unchanged in Mount Pod mode");
    return;
  }
  t.equal(mutated.metadata.labels?.[labels.injectDone], "true", "labelled as injected");
  const sidecars = all.filter(
    (c) => /^jfs-mount(-\d+)?$/.test(c.name) && c.image?.startsWith("juicedata/mount"),
  );
  t.ok(sidecars.length > 0, "at least one sidecar");
  // The operator's tools (doctor, the support bundle) find the same clients the webhook made.
  t.same(
    sidecarClientContainers(mutated).sort(),
    sidecars.map((c) => c.name).sort(),
    "doctor's sidecarClientContainers finds exactly these",
  );
  const native = fx.native ?? true;
  if (native) {
    // First, or right after a native istio-proxy (the client needs the mesh up).
    const proxy = (original.spec.initContainers ?? []).findIndex(
      (c: Obj) => c.name === "istio-proxy" && c.restartPolicy === "Always",
    );
    t.same(
      spec.initContainers.slice(proxy + 1, proxy + 1 + sidecars.length),
      sidecars,
      proxy >= 0
        ? "native sidecars right after the native istio-proxy"
        : "native sidecars come first in initContainers",
    );
    for (const s of sidecars) t.equal(s.restartPolicy, "Always", `${s.name}: restartPolicy Always`);
    for (const s of sidecars) t.ok(s.startupProbe, `${s.name}: startup probe holds what follows`);
  } else {
    t.same(spec.containers.slice(0, sidecars.length), sidecars, "classic sidecars come first in containers");
    for (const s of sidecars)
      t.match(s.lifecycle?.postStart?.exec?.command, ["/bin/sh", "-c", String], `${s.name}: postStart gate`);
  }
  for (const s of sidecars) {
    for (const e of s.env ?? [])
      if (e.valueFrom?.secretKeyRef)
        t.notOk(e.valueFrom.secretKeyRef.namespace, "secretKeyRef is namespace-local");
    t.notOk(JSON.stringify(s).includes("s3cr3t"), "no secret value inlined");
  }
  for (const v of spec.volumes ?? []) {
    if (originalClaims.has(v.name)) {
      const before = original.spec.volumes.find((x: Obj) => x.name === v.name);
      if (v.persistentVolumeClaim)
        t.equal(v.persistentVolumeClaim.claimName, "ebs", `${v.name}: only non-JuiceFS claims remain`);
      else
        t.same(
          v,
          { name: v.name, emptyDir: {} },
          `${v.name}: replaced by the shared emptyDir (was ${before.persistentVolumeClaim.claimName})`,
        );
    }
  }
  const replaced = new Set(
    (spec.volumes ?? []).filter((v: Obj) => v.emptyDir && originalClaims.has(v.name)).map((v: Obj) => v.name),
  );
  for (const c of all) {
    if (sidecars.includes(c)) continue;
    for (const m of c.volumeMounts ?? [])
      if (replaced.has(m.name)) {
        t.ok(m.mountPropagation, `${c.name}:${m.mountPath} has a propagation`);
        t.ok(m.subPath || m.subPathExpr, `${c.name}:${m.mountPath} points into the mount point`);
      }
  }
}

type Tap = Test;

t.test("the library has at least 60 AdmissionReviews", async (t) => {
  t.ok(fixtures.length >= 60, `${fixtures.length} fixtures`);
  const names = fixtures.map((f) => f.name);
  t.equal(new Set(names).size, names.length, "fixture names are unique");
});

for (const fx of fixtures) {
  t.test(`${fx.name}: ${fx.about}`, async (t) => {
    const body = JSON.parse(JSON.stringify(fx.review)) as { request: Obj };
    const { status, json } = await review(fx, body);
    t.equal(status, fx.expect.status ?? 200);
    t.equal(json.apiVersion, "admission.k8s.io/v1");
    t.equal(json.kind, "AdmissionReview");
    t.equal(json.response.uid, body.request.uid, "same uid");
    t.equal(json.response.allowed, fx.expect.allowed, json.response.status?.message ?? "allowed");
    if (fx.expect.code !== undefined) t.equal(json.response.status?.code, fx.expect.code);
    if (fx.expect.message) t.match(json.response.status?.message, fx.expect.message);
    const warnings = json.response.warnings ?? [];
    if (fx.expect.warnings)
      for (const w of fx.expect.warnings)
        t.ok(
          warnings.some((x) => w.test(x)),
          `warning ${w}`,
        );
    else t.same(warnings, [], "no warnings");

    const ops = decodePatch(json);
    const golden = join(goldenDir, `${fx.name}.json`);
    if (!fx.expect.patched) {
      t.equal(ops, undefined, "no patch");
      t.notOk(existsSync(golden), "no golden file for an unpatched fixture");
      return;
    }
    t.ok(ops && ops.length > 0, "a patch");
    const original = body.request.object as Obj;
    const mutated = applyPatch(original, ops!);
    if (update) {
      mkdirSync(goldenDir, { recursive: true });
      writeFileSync(golden, `${JSON.stringify(mutated, null, 2)}\n`);
    }
    t.same(mutated, JSON.parse(readFileSync(golden, "utf8")), "patched pod matches the golden file");
    t.doesNotThrow(() => validatePod(mutated), "the result validates against the Pod schema");
    checkInvariants(t, fx, original, mutated);

    // Reinvocation (reinvocationPolicy: IfNeeded) on the mutated pod changes nothing.
    const again = await review(fx, podReview(mutated, { namespace: body.request.namespace }));
    t.equal(again.json.response.allowed, true);
    t.equal(again.json.response.patch, undefined, "idempotent: no patch on the mutated pod");
  });
}

t.test("every golden file belongs to a fixture", async (t) => {
  const names = new Set(fixtures.filter((f) => f.expect.patched).map((f) => `${f.name}.json`));
  for (const file of readdirSync(goldenDir)) t.ok(names.has(file), `${file} is used`);
});
