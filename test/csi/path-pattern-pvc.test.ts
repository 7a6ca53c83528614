// pathPattern with the PVC's labels and annotations: the controller reads the claim through the
// Kubernetes API (the API server stand-in, through @kubernetes/client-node and a kubeconfig), and
// only for patterns that need it. As root, the file re-runs itself in a private mount namespace.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pathPattern syntax is ${...} in plain strings
import "./mount-namespace.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import t from "tap";
import { apiAccess } from "../../driver/juicefs/constants.ts";
import type { RunningDriver } from "../../driver/main.ts";
import { type ApiServer, startApiServer } from "../kube/apiserver.ts";
import {
  cleanup,
  codes,
  csiClients,
  fsDir,
  makeEnv,
  mountCap,
  secretFor,
  skipUnlessRoot,
  startTestDriver,
} from "./helpers.ts";

const env = makeEnv("pvc-pattern");
const secrets = secretFor("patternfs");
const controllerUser = "juicefs-csi-controller";
let api: ApiServer | undefined;
let driver: RunningDriver | undefined;

t.before(async () => {
  if (skipUnlessRoot) return;
  api = await startApiServer();
  const kc = new k8s.KubeConfig();
  kc.loadFromString(api.kubeconfig());
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: "team-a" } } });
  await core.createNamespacedPersistentVolumeClaim({
    namespace: "team-a",
    body: {
      metadata: { name: "data", labels: { team: "analytics" }, annotations: { project: "p42" } },
      spec: { accessModes: ["ReadWriteMany"], resources: { requests: { storage: "1Gi" } } },
    },
  });
  driver = await startTestDriver(env, {
    services: "controller",
    env: {
      ...env.env,
      KUBECONFIG: api.writeKubeconfig(join(env.dir, "kubeconfig"), { user: controllerUser }),
    },
  });
});

t.teardown(async () => {
  await driver?.stop();
  await api?.stop();
  cleanup(env);
});

const createReq = (name: string, pathPattern: string, pvcName = "data") => ({
  name,
  volume_capabilities: [mountCap("MULTI_NODE_MULTI_WRITER")],
  secrets,
  parameters: {
    pathPattern,
    "csi.storage.k8s.io/pvc/name": pvcName,
    "csi.storage.k8s.io/pvc/namespace": "team-a",
    "csi.storage.k8s.io/pv/name": name,
  },
});

t.test(
  "labels and annotations of the claim are read from the API server",
  { skip: skipUnlessRoot },
  async (t) => {
    const c = csiClients(driver!.socketPath);
    t.teardown(() => c.close());
    const r = await c.call<{ volume: { volume_context: Record<string, string> } }>(
      c.controller,
      "CreateVolume",
      createReq("pvc-l1", "${.pvc.labels.team}/${.pvc.annotations.project}-${.pvc.name}"),
    );
    t.equal(r.volume.volume_context.subPath, "analytics/p42-data");
    t.ok(
      existsSync(join(fsDir(env, "patternfs"), "analytics", "p42-data")),
      "the directory exists in the file system",
    );
    const calls = [...(api!.accessLog.get(controllerUser) ?? [])];
    t.ok(calls.length > 0, "the controller read the claim as its own user");
    for (const call of calls) {
      const [verb, resource] = call.split(" ");
      const granted = apiAccess.controller.some(
        (a) =>
          `${a.apiGroup}/${a.resource}` === resource && (a.verbs as readonly string[]).includes(verb ?? ""),
      );
      t.ok(granted, `${call} is granted to the controller (apiAccess.controller)`);
    }
    await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-l1", secrets });
  },
);

t.test("a pattern of name and namespace only makes no API call", { skip: skipUnlessRoot }, async (t) => {
  const c = csiClients(driver!.socketPath);
  t.teardown(() => c.close());
  const before = api!.accessLog.get(controllerUser)?.size ?? 0;
  const reads = () => [...api!.requestCounts.entries()].filter(([k]) => k.includes("persistentvolumeclaims"));
  const countBefore = reads().reduce((n, [, v]) => n + v, 0);
  await c.call(c.controller, "CreateVolume", createReq("pvc-n1", "${.pvc.namespace}-${.pvc.name}"));
  t.equal(
    reads().reduce((n, [, v]) => n + v, 0),
    countBefore,
    "no PVC read",
  );
  t.equal(api!.accessLog.get(controllerUser)?.size ?? 0, before);
  await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-n1", secrets });
});

t.test(
  "a claim that cannot be read is a FailedPrecondition naming it",
  { skip: skipUnlessRoot },
  async (t) => {
    const c = csiClients(driver!.socketPath);
    t.teardown(() => c.close());
    const r = await c.code(
      c.controller,
      "CreateVolume",
      createReq("pvc-x1", "${.pvc.labels.team}", "missing"),
    );
    t.equal(r.code, codes.FAILED_PRECONDITION);
    t.match(r.message, /pathPattern uses the labels or annotations of PersistentVolumeClaim team-a\/missing/);
  },
);
