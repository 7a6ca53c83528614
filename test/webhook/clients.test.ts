// How many JuiceFS clients a pod gets, and how they share its network: claims that need the same
// client share one (the same claim twice, volumes of one file system that differ only in directory or
// read-only), a cap refuses pods that would need more than webhook.maxClientsPerPod, the patch of a
// pod with 1000 volumes stays far below the API server's 3 MiB request limit, every client gets its own
// metrics port, and Istio's proxy is started before the client or bypassed. Over the real server.
import t from "tap";
import type { AdmissionReviewResponse } from "../../webhook/admission.ts";
import { defaultMaxClientsPerPod, injectedVolumesAnnotation, istioProxyGid } from "../../webhook/inject.ts";
import { cluster, pod } from "./fixtures.ts";
import { applyPatch, decodePatch, podReview, testServer, validatePod } from "./helpers.ts";

// biome-ignore lint/suspicious/noExplicitAny: pods are plain JSON here.
type Json = any;

/** The fixture cluster plus `n` PVs/PVCs of one file system, each with its own cache-size (distinct settings). */
function withDistinct(n: number): Json[] {
  const base = (cluster as Json[]).find(
    (o) => o.kind === "PersistentVolume" && o.metadata.name === "jfs-pv-1",
  );
  const out: Json[] = structuredClone(cluster) as Json[];
  for (let i = 0; i < n; i++) {
    const pv = structuredClone(base);
    pv.metadata.name = `jfs-d${i}`;
    pv.spec.csi.volumeHandle = `jfs-d${i}`;
    pv.spec.mountOptions = [`cache-size=${1000 + i}`];
    out.push(pv, {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: `d${i}`, namespace: "default" },
      spec: {
        accessModes: ["ReadWriteMany"],
        storageClassName: "",
        volumeName: `jfs-d${i}`,
        resources: { requests: { storage: "1Gi" } },
      },
    });
  }
  return out;
}

function podWith(claims: string[]): Json {
  return pod({
    containers: [
      {
        name: "app",
        image: "registry.example.com/app:1",
        volumeMounts: claims.map((_, i) => ({ name: `v${i}`, mountPath: `/v/${i}` })),
      },
    ],
    volumes: claims.map((c, i) => ({ name: `v${i}`, persistentVolumeClaim: { claimName: c } })),
  });
}

async function ask(app: Awaited<ReturnType<typeof testServer>>, obj: Json) {
  const res = await app.inject({ method: "POST", url: "/mutate-pod", payload: podReview(obj) });
  const r = res.json() as AdmissionReviewResponse;
  const ops = decodePatch(r);
  return { r: r.response, bytes: res.rawPayload.length, ops, pod: ops ? applyPatch(obj, ops) : obj };
}

const sidecarsOf = (p: Json): Json[] =>
  [...(p.spec.initContainers ?? []), ...p.spec.containers].filter((c: Json) =>
    /^jfs-mount(-\d+)?$/.test(c.name),
  );

t.test("1000 volumes of one claim: one client, a small patch", async (t) => {
  const app = await testServer(cluster, { native: true });
  const claims = Array.from({ length: 1000 }, () => "data-1");
  const { r, ops, pod: out, bytes } = await ask(app, podWith(claims));
  t.equal(r.allowed, true, r.status?.message ?? "allowed");
  t.ok(ops, "a patch");
  validatePod(out);
  t.equal(sidecarsOf(out).length, 1, "one client serves all 1000 volumes");
  t.equal(
    out.spec.volumes.filter((v: Json) => v.name.startsWith("v")).length,
    1,
    "one pod volume left for them",
  );
  t.ok(
    out.spec.containers.at(-1).volumeMounts.every((m: Json) => m.name === "v0" && m.subPath === "jfs-pv-1"),
  );
  // The API server refuses request bodies above 3 MiB (apiserver's MaxRequestBodyBytes); the
  // AdmissionReview response is what our patch adds to it.
  t.ok(bytes < 512 * 1024, `response ${bytes} bytes, far below 3 MiB`);
  const cpu = sidecarsOf(out).map((c: Json) => c.resources?.requests?.cpu);
  t.same(cpu, ["1"], "asks for one client's CPU");
  // Converges: the mutated pod gets no second patch.
  const again = await ask(app, out);
  t.equal(again.ops, undefined, "no patch on the mutated pod");
  await app.close();
});

t.test("more distinct clients than the cap: refused with the claims named", async (t) => {
  const objs = withDistinct(1000);
  const app = await testServer(objs, { native: true });
  const n = defaultMaxClientsPerPod;
  const ok = await ask(app, podWith(Array.from({ length: n }, (_, i) => `d${i}`)));
  t.equal(ok.r.allowed, true, `${n} distinct clients are allowed`);
  t.equal(sidecarsOf(ok.pod).length, n);
  const over = await ask(app, podWith(Array.from({ length: 1000 }, (_, i) => `d${i}`)));
  t.equal(over.r.allowed, false);
  t.match(
    over.r.status?.message,
    new RegExp(
      `pod default/app: needs 1000 JuiceFS clients \\(volumes with different file systems or settings: PVC default/d0, PVC default/d1, PVC default/d2, PVC default/d3, PVC default/d4 and 995 more\\); at most ${n} per pod \\(chart value webhook\\.sidecar\\.maxClientsPerPod\\).*Mount Pod mode`,
    ),
  );
  t.ok(over.bytes < 4096, `refusal of ${over.bytes} bytes`);
  await app.close();
  const wider = await testServer(objs, { native: true, maxClientsPerPod: 8 });
  const eight = await ask(wider, podWith(Array.from({ length: 8 }, (_, i) => `d${i}`)));
  t.equal(eight.r.allowed, true, "the cap is configurable");
  t.equal(sidecarsOf(eight.pod).length, 8);
  await wider.close();
});

t.test("a read-only and a read-write use of one claim share the read-write client", async (t) => {
  const app = await testServer(cluster, { native: true });
  const p = pod({
    containers: [
      {
        name: "app",
        image: "registry.example.com/app:1",
        volumeMounts: [
          { name: "ro", mountPath: "/ro" },
          { name: "rw", mountPath: "/rw" },
        ],
      },
    ],
    volumes: [
      { name: "ro", persistentVolumeClaim: { claimName: "data-1", readOnly: true } },
      { name: "rw", persistentVolumeClaim: { claimName: "data-1" } },
    ],
  });
  const { r, pod: out } = await ask(app, p);
  t.equal(r.allowed, true);
  const [s] = sidecarsOf(out);
  t.equal(sidecarsOf(out).length, 1);
  t.notOk(s.args.includes("--read-only"), "the shared client is read-write");
  const mounts = out.spec.containers.at(-1).volumeMounts;
  t.same(
    mounts.map((m: Json) => [m.mountPath, m.name, m.readOnly ?? false]),
    [
      ["/ro", "rw", true],
      ["/rw", "rw", false],
    ],
    "the read-only claim's mount is a read-only bind of the shared volume",
  );
  t.same(Object.keys(JSON.parse(out.metadata.annotations[injectedVolumesAnnotation])), ["rw"]);
  await app.close();
});

t.test("metrics ports: one per client, none an app port", async (t) => {
  const app = await testServer(withDistinct(3), { native: true });
  const p = podWith(["d0", "d1", "d2"]);
  p.spec.containers[0].ports = [{ name: "http", containerPort: 9567 }];
  const { r, pod: out } = await ask(app, p);
  t.equal(r.allowed, true);
  const got = sidecarsOf(out).map((c: Json) => [
    c.ports?.[0]?.containerPort,
    c.args.find((a: string) => a.startsWith("--metrics=")),
  ]);
  t.same(got, [
    [9568, "--metrics=0.0.0.0:9568"],
    [9569, "--metrics=0.0.0.0:9569"],
    [9570, "--metrics=0.0.0.0:9570"],
  ]);
  await app.close();
});

/**
 * What Istio's injector adds: istio-init first, and istio-proxy either as a regular container or as a
 * native sidecar (in front, where Istio puts it; `proxyLast` puts it after ours, the unkind case).
 */
function istioAfter(p: Json, native: boolean, proxyLast = false): Json {
  const q = structuredClone(p);
  const init = { name: "istio-init", image: "docker.io/istio/proxyv2:1.22.0", args: ["istio-iptables"] };
  const proxy = { name: "istio-proxy", image: "docker.io/istio/proxyv2:1.22.0", args: ["proxy", "sidecar"] };
  q.metadata.annotations = { ...q.metadata.annotations, "sidecar.istio.io/status": "{}" };
  const rest = q.spec.initContainers ?? [];
  if (native)
    q.spec.initContainers = proxyLast
      ? [init, ...rest, { ...proxy, restartPolicy: "Always" }]
      : [init, { ...proxy, restartPolicy: "Always" }, ...rest];
  else {
    q.spec.initContainers = [init, ...rest];
    q.spec.containers = [...q.spec.containers, proxy];
  }
  return q;
}

t.test("Istio injecting after us: the client starts after a native proxy", async (t) => {
  const app = await testServer(cluster, { native: true });
  const first = await ask(app, podWith(["data-1"]));
  // Istio put its proxy in front of ours: already right, no patch.
  const front = await ask(app, istioAfter(first.pod, true));
  t.equal(front.r.allowed, true);
  t.equal(front.ops, undefined, "proxy in front of the client: nothing to change");
  // The proxy after ours: the reinvocation moves the client behind it.
  const second = await ask(app, istioAfter(first.pod, true, true));
  t.equal(second.r.allowed, true);
  t.same(
    second.pod.spec.initContainers.map((c: Json) => c.name),
    ["istio-init", "istio-proxy", "jfs-mount"],
  );
  t.match(second.r.warnings, [/Istio: jfs-mount placed after istio-proxy/]);
  validatePod(second.pod);
  const third = await ask(app, second.pod);
  t.equal(third.ops, undefined, "a third pass gives no patch");
  await app.close();
});

t.test(
  "Istio with a regular proxy container: the client bypasses the redirect with the proxy's group",
  async (t) => {
    const app = await testServer(cluster, { native: true });
    const first = await ask(app, podWith(["data-1"]));
    const second = await ask(app, istioAfter(first.pod, false));
    const [s] = sidecarsOf(second.pod);
    t.equal(s.securityContext.runAsGroup, istioProxyGid);
    t.equal(s.securityContext.runAsUser, 0, "still root (FUSE)");
    t.match(second.r.warnings, [/group 1337 \(Istio's proxy group\).*bypasses the mesh/]);
    const third = await ask(app, second.pod);
    t.equal(third.ops, undefined, "a third pass gives no patch");
    // Already there at the first pass (Istio ran before us): the same result in one pass.
    const once = await ask(app, istioAfter(podWith(["data-1"]), false));
    t.equal(sidecarsOf(once.pod)[0].securityContext.runAsGroup, istioProxyGid);
    t.equal(
      once.pod.spec.initContainers[0].name,
      "jfs-mount",
      "the client starts first; the proxy comes later",
    );
    // A native proxy present at the first pass: ours right after it, no group change.
    const nat = await ask(app, istioAfter(podWith(["data-1"]), true));
    t.same(
      nat.pod.spec.initContainers.map((c: Json) => c.name),
      ["istio-init", "istio-proxy", "jfs-mount"],
    );
    t.equal(sidecarsOf(nat.pod)[0].securityContext.runAsGroup, 0);
    await app.close();
  },
);
