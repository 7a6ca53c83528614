// DeleteVolume of volumes the Go JuiceFS CSI Driver provisioned (issue 13): this controller has no
// record of them, so it reads the PV (through the API server stand-in, as its own user) for the
// directory, removes it, keeps one another PV shares, refuses a path outside the volume area, and leaves
// static PVs alone. As root, the file re-runs itself in a private mount namespace.
import "./mount-namespace.ts";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
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

const env = makeEnv("go-provisioned");
const secrets = secretFor("gofs");
const controllerUser = "juicefs-csi-controller";
let api: ApiServer | undefined;
let driver: RunningDriver | undefined;
let core: k8s.CoreV1Api;

/** A PV as the Go driver's provisioner writes it (pkg/driver/provisioner.go: volCtx subPath). */
function goPv(name: string, subPath: string, provisioned = true): k8s.V1PersistentVolume {
  return {
    metadata: {
      name,
      ...(provisioned ? { annotations: { "pv.kubernetes.io/provisioned-by": "csi.juicefs.com" } } : {}),
    },
    spec: {
      capacity: { storage: "10Gi" },
      accessModes: ["ReadWriteMany"],
      persistentVolumeReclaimPolicy: "Delete",
      storageClassName: "juicefs-sc",
      csi: {
        driver: "csi.juicefs.com",
        volumeHandle: name,
        volumeAttributes: {
          subPath,
          capacity: "10737418240",
          "juicefs/mount-image": "juicedata/mount:ce-v1.2.0",
        },
      },
    },
  };
}

t.before(async () => {
  if (skipUnlessRoot) return;
  api = await startApiServer();
  const kc = new k8s.KubeConfig();
  kc.loadFromString(api.kubeconfig());
  core = kc.makeApiClient(k8s.CoreV1Api);
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

t.test(
  "a Go-provisioned directory is deleted per its PV, never outside the volume",
  { skip: skipUnlessRoot },
  async (t) => {
    const c = csiClients(driver!.socketPath);
    t.teardown(() => c.close());
    // A volume of ours first, so the file system exists (the Go driver had formatted it).
    await c.call(c.controller, "CreateVolume", {
      name: "pvc-ours",
      volume_capabilities: [mountCap("MULTI_NODE_MULTI_WRITER")],
      secrets,
      parameters: {},
    });
    const root = fsDir(env, "gofs");
    const dirs = ["pvc-go1", "team-a-data", "shared/one", "pvc-static"];
    for (const d of dirs) {
      mkdirSync(join(root, d), { recursive: true });
      writeFileSync(join(root, d, "file"), d);
    }
    mkdirSync(join(env.dir, "outside"), { recursive: true });
    writeFileSync(join(env.dir, "outside", "keep"), "1");
    await core.createPersistentVolume({ body: goPv("pvc-go1", "pvc-go1") });
    await core.createPersistentVolume({ body: goPv("pvc-go2", "team-a-data") });
    await core.createPersistentVolume({ body: goPv("pvc-go3", "shared/one") });
    await core.createPersistentVolume({ body: goPv("pvc-go4", "shared/one") });
    await core.createPersistentVolume({ body: goPv("pvc-static", "pvc-static", false) });
    await core.createPersistentVolume({ body: goPv("pvc-evil", "../../outside") });

    await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-go1", secrets });
    t.notOk(existsSync(join(root, "pvc-go1")), "PV name directory deleted");
    await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-go2", secrets });
    t.notOk(existsSync(join(root, "team-a-data")), "pathPattern directory deleted");
    await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-go3", secrets });
    t.ok(existsSync(join(root, "shared/one/file")), "kept: PV pvc-go4 uses the same directory");
    await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-static", secrets });
    t.ok(existsSync(join(root, "pvc-static/file")), "a static PV's directory is never deleted");
    const evil = await c.code(c.controller, "DeleteVolume", { volume_id: "pvc-evil", secrets });
    t.equal(evil.code, codes.INVALID_ARGUMENT, evil.message);
    t.match(evil.message, /PersistentVolume pvc-evil subPath/);
    t.ok(existsSync(join(env.dir, "outside", "keep")), "nothing outside the file system is touched");
    await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-unknown", secrets });
    t.ok(existsSync(join(root, "pvc-ours")), "our own volume untouched");
    t.ok(existsSync(join(root, "shared/one/file")));

    const calls = [...(api!.accessLog.get(controllerUser) ?? [])];
    t.ok(
      calls.some((x) => x.startsWith("get /persistentvolumes")),
      JSON.stringify(calls),
    );
    for (const call of calls) {
      const [verb, resource] = call.split(" ");
      const granted = apiAccess.controller.some(
        (a) =>
          `${a.apiGroup}/${a.resource}` === resource && (a.verbs as readonly string[]).includes(verb ?? ""),
      );
      t.ok(granted, `${call} is granted to the controller (apiAccess.controller)`);
    }
    await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-ours", secrets });
  },
);
