// One stand-in cluster per doctor test file (fixtures.ts), with the StorageClasses the scenarios use
// and the doctor run in-process through its command (JSON output), as `juicefs-csi doctor -o json`.
import * as k8s from "@kubernetes/client-node";
import t from "tap";
import { doctorCommand } from "../../cli/doctor/command.ts";
import type { Diagnosis, Link } from "../../driver/doctor/engine.ts";
import { driverName } from "../../driver/juicefs/index.ts";
import { eventually } from "../kube/cluster.ts";
import { type Fixture, podStatus, startFixture } from "./fixtures.ts";

export async function doctorCluster() {
  const f: Fixture = await startFixture();
  t.teardown(() => f.stop());
  const storage = f.c.kc.makeApiClient(k8s.StorageV1Api);
  const admission = f.c.kc.makeApiClient(k8s.AdmissionregistrationV1Api);

  async function doctor(
    object: string,
    namespace?: string,
    extra: { mountMode?: "pod" | "sidecar" | "process" } = {},
  ): Promise<Diagnosis & { healthy: boolean }> {
    const r = await doctorCommand(object, {
      ...(namespace ? { namespace } : {}),
      kubeconfig: f.c.kubeconfig,
      output: "json",
      ...extra,
    });
    const d = JSON.parse(r.output) as Diagnosis;
    if (r.healthy !== d.healthy) throw new Error("healthy flag differs from the JSON");
    return d;
  }

  const link = (d: Diagnosis, id: Link["id"]): Link | undefined => d.links.find((l) => l.id === id);

  const ready = (ns: string, name: string) =>
    eventually(`${ns}/${name} ready`, async () => {
      const p = await podStatus(f, ns, name);
      return p?.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
    });

  await storage.createStorageClass({
    body: {
      metadata: { name: "juicefs-sc" },
      provisioner: driverName,
      parameters: {
        "csi.storage.k8s.io/node-publish-secret-name": "jfs-secret",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a StorageClass template, not JavaScript's
        "csi.storage.k8s.io/node-publish-secret-namespace": "${pvc.namespace}",
      },
    },
  });
  await storage.createStorageClass({
    body: {
      metadata: { name: "juicefs-wffc" },
      provisioner: driverName,
      volumeBindingMode: "WaitForFirstConsumer",
    },
  });

  return { f, doctor, link, ready, admission };
}
