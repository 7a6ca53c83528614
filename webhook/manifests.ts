// Manifest files for the offline commands: YAML (multi-document) or JSON, `kind: List` flattened.
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "./admission.ts";

export class ManifestError extends Error {
  override name = "ManifestError";
}

/** Parses every document; empty documents are skipped. Throws ManifestError naming the document. */
export function parseManifests(text: string, source = "input"): KubeObject[] {
  const out: KubeObject[] = [];
  const docs = parseAllDocuments(text);
  for (const [i, doc] of docs.entries()) {
    if (doc.errors.length > 0)
      throw new ManifestError(`${source}: document ${i + 1}: ${doc.errors[0]!.message.split("\n")[0]}`);
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (value === null || value === undefined) continue;
    add(value, `${source}: document ${i + 1}`, out);
  }
  return out;
}

function add(value: unknown, where: string, out: KubeObject[]): void {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ManifestError(`${where}: not a Kubernetes object (a mapping with apiVersion and kind)`);
  const o = value as KubeObject;
  if (typeof o.kind === "string" && o.kind.endsWith("List") && Array.isArray(o.items)) {
    for (const [j, item] of (o.items as unknown[]).entries()) add(item, `${where} item ${j + 1}`, out);
    return;
  }
  if (typeof o.kind !== "string" || o.kind === "") throw new ManifestError(`${where}: has no kind`);
  out.push(o);
}

/**
 * Where a workload keeps its pod: the object itself (Pod), spec.template (Deployment, StatefulSet,
 * DaemonSet, ReplicaSet, Job, ReplicationController) or spec.jobTemplate.spec.template (CronJob).
 */
export function podTemplateOf(o: KubeObject): { pod: KubeObject; put: (p: KubeObject) => void } | undefined {
  if (o.kind === "Pod") return { pod: o, put: () => {} };
  const spec = o.spec as Record<string, unknown> | undefined;
  if (!spec || typeof spec !== "object") return undefined;
  if (o.kind === "CronJob") {
    const jt = spec.jobTemplate as { spec?: { template?: KubeObject } } | undefined;
    const t = jt?.spec?.template;
    if (!t || typeof t !== "object") return undefined;
    return { pod: t, put: (p) => (jt!.spec!.template = p) };
  }
  if (
    ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"].includes(
      o.kind ?? "",
    )
  ) {
    const t = spec.template as KubeObject | undefined;
    if (!t || typeof t !== "object") return undefined;
    return { pod: t, put: (p) => (spec.template = p) };
  }
  return undefined;
}
