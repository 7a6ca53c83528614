// Native vs classic sidecars decided from the nodes' kubelets (the API server can be newer during an
// upgrade), followed live through the Node informer of both client implementations, and a warning
// when nativeSidecar is forced on nodes that cannot run native sidecars.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import t, { type Test } from "tap";
import { createLogger } from "../../lib/log.ts";
import type { AdmissionReviewResponse } from "../../webhook/admission.ts";
import { defaultWebhookSettings } from "../../webhook/config.ts";
import { createKubeLookup } from "../../webhook/kube.ts";
import { accessFromKubeconfig, leanCluster } from "../../webhook/kubeclient.ts";
import { startWebhook } from "../../webhook/main.ts";
import { type NodeLike, NodePlacement, nodesWithoutNativeSidecars } from "../../webhook/placement.ts";
import { startApiServer } from "../kube/apiserver.ts";
import { eventually } from "../kube/cluster.ts";
import { cluster, fixtures } from "./fixtures.ts";
import { h1Request, serverCerts, writeCerts } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "webhook-placement-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const node = (name: string, kubeletVersion: string): NodeLike => ({
  metadata: { name },
  status: { nodeInfo: { kubeletVersion } },
});

t.test("the decision: every kubelet >= 1.29 for native; forced settings warn", async (t) => {
  let nodes = [node("a", "v1.30.2"), node("b", "v1.29.0-eks-1")];
  const decisions: boolean[] = [];
  const p = new NodePlacement({
    setting: "auto",
    nodes: () => nodes,
    fallback: false,
    onDecision: (n) => decisions.push(n),
  });
  t.equal(p.native(), true);
  nodes = [...nodes, node("c", "v1.28.9")];
  t.equal(p.native(), true, "unchanged until the informer says nodes changed");
  p.invalidate();
  t.equal(p.native(), false, "one old kubelet: classic");
  t.same(nodesWithoutNativeSidecars(nodes), ["c (kubelet v1.28.9)"]);
  nodes = nodes.map((n) => (n.metadata?.name === "c" ? node("c", "v1.29.4") : n));
  p.invalidate();
  t.equal(p.native(), true, "node upgraded: native again, no restart");
  t.same(decisions, [true, false, true]);
  t.same(p.warnings(), []);

  t.equal(
    new NodePlacement({ setting: "auto", nodes: () => [], fallback: true }).native(),
    true,
    "no node known: the API server's version",
  );
  t.equal(
    new NodePlacement({ setting: "auto", nodes: () => [node("x", "garbage")], fallback: true }).native(),
    false,
    "unreadable: classic",
  );

  const forced = new NodePlacement({
    setting: true,
    nodes: () => [node("old", "v1.27.3"), node("new", "v1.31.0")],
    fallback: false,
  });
  t.equal(forced.native(), true);
  t.match(forced.warnings(), [
    /webhook\.nativeSidecar is forced true, but 1 node\(s\) cannot run native sidecars: old \(kubelet v1\.27\.3\).*never starts/,
  ]);
  t.equal(
    new NodePlacement({ setting: false, nodes: () => [node("n", "v1.31.0")], fallback: true }).native(),
    false,
  );
});

async function apiWithNodes(t: Test, versions: Record<string, string>) {
  const api = await startApiServer();
  t.teardown(() => api.stop());
  const file = api.writeKubeconfig(join(dir, `kc-${Math.random()}`));
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(file);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const setVersion = async (name: string, v: string) => {
    const n = await core.readNode({ name });
    await core.replaceNodeStatus({
      name,
      body: {
        ...n,
        status: {
          ...n.status,
          nodeInfo: { ...(n.status?.nodeInfo as k8s.V1NodeSystemInfo), kubeletVersion: v },
        },
      },
    });
  };
  for (const [name, v] of Object.entries(versions)) {
    await core.createNode({ body: { metadata: { name } } });
    await setVersion(name, v);
  }
  return { api, file, kc, core, setVersion };
}

for (const impl of ["builtin", "client-node"] as const)
  t.test(`${impl}: the Node informer feeds the decision and follows upgrades`, async (t) => {
    const { kc, file, setVersion, core } = await apiWithNodes(t, {
      "node-a": "v1.31.0",
      "node-b": "v1.28.7",
    });
    let placement: NodePlacement | undefined;
    const opts = {
      liveReadTimeoutMs: 500,
      secretRefreshMs: 60_000,
      secretEvictMs: 600_000,
      watchNamespaces: false,
      watchNodes: true,
      onNodesChange: () => placement?.invalidate(),
    };
    const kube =
      impl === "builtin" ? leanCluster(await accessFromKubeconfig(file), opts) : createKubeLookup(kc, opts);
    t.teardown(() => kube.stop());
    placement = new NodePlacement({ setting: "auto", nodes: kube.nodes!, fallback: true });
    await kube.start();
    await eventually("both nodes listed", () => kube.nodes!().length === 2);
    t.equal(placement.native(), false, "node-b runs kubelet 1.28: classic");
    await setVersion("node-b", "v1.29.1");
    await eventually("upgrade seen", () => placement!.native() === true);
    await core.createNode({ body: { metadata: { name: "node-c" } } });
    await setVersion("node-c", "v1.27.0");
    await eventually("an old node joins: classic", () => placement!.native() === false);
    await core.deleteNode({ name: "node-c" });
    await eventually("it leaves: native", () => placement!.native() === true);
  });

t.test(
  "the webhook process: an old kubelet means classic (refused by default) until it is upgraded",
  async (t) => {
    const { file, setVersion, core } = await apiWithNodes(t, { "node-a": "v1.28.3" });
    // The fixture cluster's objects the review needs.
    for (const o of structuredClone(cluster) as Record<string, unknown>[]) {
      const md = o.metadata as { name: string; namespace?: string };
      if (o.kind === "Namespace")
        await core
          .createNamespace({ body: o as k8s.V1Namespace })
          .catch(() => core.replaceNamespace({ name: md.name, body: o as k8s.V1Namespace }));
      else if (o.kind === "Secret") {
        await core.createNamespace({ body: { metadata: { name: md.namespace! } } }).catch(() => {});
        await core.createNamespacedSecret({ namespace: md.namespace!, body: o as k8s.V1Secret });
      } else if (o.kind === "PersistentVolume")
        await core.createPersistentVolume({ body: o as k8s.V1PersistentVolume });
      else if (o.kind === "PersistentVolumeClaim")
        await core.createNamespacedPersistentVolumeClaim({
          namespace: md.namespace!,
          body: o as k8s.V1PersistentVolumeClaim,
        });
    }
    const certs = await serverCerts();
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = file;
    t.teardown(() => {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    });
    const handle = await startWebhook({
      port: 0,
      host: "127.0.0.1",
      ...writeCerts(certs),
      config: { driver: {}, webhook: { ...defaultWebhookSettings } },
      log: createLogger({ level: "silent" }),
    });
    t.teardown(() => handle.close());
    await eventually(
      "ready",
      async () => (await h1Request(handle.port, certs.ca, "GET", "/readyz")).status === 200,
    );
    const review = JSON.stringify(fixtures.find((f) => f.name === "one-pvc-native")!.review);
    const ask = async () =>
      (
        (await h1Request(handle.port, certs.ca, "POST", "/mutate-pod", review))
          .json as AdmissionReviewResponse
      ).response;
    // The stand-in API server says 1.31; the only kubelet is 1.28.
    await eventually("classic decided from the node", async () => (await ask()).allowed === false);
    t.match((await ask()).status?.message, /no native sidecar support.*webhook\.sidecar\.allowClassic/);
    await setVersion("node-a", "v1.29.0");
    const r = await eventually("native after the upgrade", async () => {
      const x = await ask();
      return x.allowed && x.patch ? x : undefined;
    });
    const ops = JSON.parse(Buffer.from(r.patch!, "base64").toString()) as { path: string; value: unknown }[];
    t.ok(
      ops.some((o) => o.path.startsWith("/spec/initContainers")),
      "a native sidecar",
    );
  },
);
