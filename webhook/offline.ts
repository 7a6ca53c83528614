// Offline injection and validation (no cluster): the webhook's own handlers, fed with an in-memory
// lookup built from the manifests given on the command line. `inject` answers a real AdmissionReview
// through mutatePod and applies the returned JSON Patch, so what it prints is exactly what the API
// server would store.
import fastJsonPatch from "fast-json-patch";
import { stringify } from "yaml";
import {
  type GlobalConfig,
  globalConfigKey,
  globalConfigName,
  parseGlobalConfig,
} from "../driver/juicefs/index.ts";
import { type AdmissionRequest, cloneJson, type KubeObject } from "./admission.ts";
import { defaultWebhookSettings, supportsNativeSidecars, type WebhookConfig } from "./config.ts";
import { MemoryLookup } from "./lookup.ts";
import { ManifestError, parseManifests, podTemplateOf } from "./manifests.ts";
import { mutatePod } from "./mutate.ts";
import { validateObject } from "./validate.ts";

export interface OfflineResult {
  ok: boolean;
  output: string;
  warnings: string[];
}

/** Offline runs behave like an opted-in namespace. */
const offlineConfig: WebhookConfig = {
  driver: {},
  webhook: { ...defaultWebhookSettings, mountMode: "sidecar", requireNamespaceLabel: false },
};

/** The target cluster `inject` assumes without --kubernetes-version: native sidecars on by default. */
export const defaultOfflineKubernetesVersion = "1.29";

/** "1.28", "v1.30.2", "1.29+" → { major, minor }; undefined when it is not a Kubernetes version. */
export function parseKubernetesVersion(v: string): { major: string; minor: string } | undefined {
  const m = /^v?(\d+)\.(\d+)(?:[.+-].*)?$/.exec(v.trim());
  return m ? { major: m[1]!, minor: m[2]! } : undefined;
}

function describe(o: KubeObject): string {
  const m = o.metadata ?? {};
  const name = m.name || (m.generateName ? `${m.generateName}*` : "(unnamed)");
  const clusterScoped = o.kind === "PersistentVolume" || o.kind === "StorageClass" || o.kind === "Namespace";
  return clusterScoped ? `${o.kind} ${name}` : `${o.kind} ${m.namespace || "default"}/${name}`;
}

let uidCounter = 0;

/** One CREATE review for a pod (or a workload's pod template), through the webhook's handler. */
async function injectOne(
  obj: KubeObject,
  lookup: MemoryLookup,
  native: boolean,
  config: WebhookConfig,
  globalConfig?: GlobalConfig,
): Promise<{ ok: true; obj: KubeObject; warnings: string[] } | { ok: false; message: string }> {
  const t = podTemplateOf(obj);
  if (!t) return { ok: true, obj, warnings: [] };
  const namespace = obj.metadata?.namespace || "default";
  const pod: KubeObject =
    obj.kind === "Pod"
      ? obj
      : {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { ...(t.pod.metadata ?? {}), namespace },
          spec: t.pod.spec,
        };
  const request: AdmissionRequest = {
    uid: `offline-${++uidCounter}`,
    kind: { group: "", version: "v1", kind: "Pod" },
    resource: { group: "", version: "v1", resource: "pods" },
    namespace,
    operation: "CREATE",
    object: pod,
    dryRun: true,
  };
  const r = await mutatePod(request, {
    lookup,
    config,
    native,
    ...(globalConfig ? { globalConfig: () => globalConfig } : {}),
  });
  if (!r.allowed) return { ok: false, message: `${describe(obj)}: ${r.message}` };
  const warnings = (r.warnings ?? []).map((w) => `${describe(obj)}: ${w}`);
  if (!r.patch) return { ok: true, obj, warnings };
  const mutated = fastJsonPatch.applyPatch(cloneJson(pod), r.patch, true, false).newDocument as KubeObject;
  if (obj.kind === "Pod") return { ok: true, obj: mutated, warnings };
  const copy = cloneJson(obj);
  const { namespace: _ns, ...metadata } = mutated.metadata ?? {};
  podTemplateOf(copy)!.put({
    ...(t.pod.metadata || Object.keys(metadata).length ? { metadata } : {}),
    spec: mutated.spec,
  });
  return { ok: true, obj: copy, warnings };
}

function render(objects: KubeObject[], format: string): string {
  if (format === "json") {
    const doc = objects.length === 1 ? objects[0] : { apiVersion: "v1", kind: "List", items: objects };
    return `${JSON.stringify(doc, null, 2)}\n`;
  }
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n");
}

export async function injectOffline(input: {
  pods: string;
  context: string[];
  output: string;
  /** The target cluster's (kubelets') version; default defaultOfflineKubernetesVersion. */
  kubernetesVersion?: string;
  /** As webhook.sidecar.allowClassic: inject classic sidecars where native ones cannot run. */
  allowClassic?: boolean;
}): Promise<OfflineResult> {
  if (input.output !== "yaml" && input.output !== "json")
    return { ok: false, output: `error: -o ${input.output}: expected yaml or json\n`, warnings: [] };
  const kv = input.kubernetesVersion ?? defaultOfflineKubernetesVersion;
  const version = parseKubernetesVersion(kv);
  if (!version)
    return {
      ok: false,
      output: `error: --kubernetes-version ${JSON.stringify(kv)}: expected a version such as 1.29 or v1.30.2\n`,
      warnings: [],
    };
  const native = supportsNativeSidecars(version);
  const config: WebhookConfig = {
    ...offlineConfig,
    webhook: { ...offlineConfig.webhook, allowClassicSidecar: input.allowClassic === true },
  };
  let objects: KubeObject[];
  const lookup = new MemoryLookup();
  const contextObjects: KubeObject[] = [];
  try {
    objects = parseManifests(input.pods, "-f");
    for (const [i, text] of input.context.entries())
      contextObjects.push(...parseManifests(text, `--manifests #${i + 1}`));
    for (const o of contextObjects) lookup.add(o);
  } catch (err) {
    if (err instanceof ManifestError) return { ok: false, output: `error: ${err.message}\n`, warnings: [] };
    throw err;
  }
  // Objects next to the pods (PVC, PV, Secret, ...) count as context too.
  for (const o of objects) lookup.add(o);
  // The global config, when given among the manifests, applies as the webhook would apply it.
  const gcMaps = [...contextObjects, ...objects].filter(
    (o) => o.kind === "ConfigMap" && o.metadata?.name === globalConfigName,
  );
  let globalConfig: GlobalConfig | undefined;
  if (gcMaps.length > 1)
    return {
      ok: false,
      output: `error: ConfigMap ${globalConfigName} is given more than once\n`,
      warnings: [],
    };
  if (gcMaps[0]) {
    const text = (gcMaps[0] as { data?: Record<string, unknown> }).data?.[globalConfigKey];
    const r = parseGlobalConfig(typeof text === "string" ? text : "", describe(gcMaps[0]));
    if (!r.ok) return { ok: false, output: `error: ${r.errors.join("\nerror: ")}\n`, warnings: r.warnings };
    if (r.config.mountPodPatch.length > 0) globalConfig = r.config;
  }
  const out: KubeObject[] = [];
  const warnings: string[] = [];
  const errors: string[] = [];
  for (const o of objects) {
    const r = await injectOne(o, lookup, native, config, globalConfig);
    if (!r.ok) errors.push(r.message);
    else {
      out.push(r.obj);
      warnings.push(...r.warnings);
    }
  }
  if (errors.length > 0) return { ok: false, output: errors.map((e) => `error: ${e}\n`).join(""), warnings };
  return { ok: true, output: render(out, input.output), warnings };
}

export async function validateOffline(input: { manifests: string }): Promise<OfflineResult> {
  let objects: KubeObject[];
  try {
    objects = parseManifests(input.manifests, "-f");
  } catch (err) {
    if (err instanceof ManifestError) return { ok: false, output: `error: ${err.message}\n`, warnings: [] };
    throw err;
  }
  const lookup = new MemoryLookup(objects);
  const lines: string[] = [];
  const allWarnings: string[] = [];
  let ok = true;
  for (const o of objects) {
    const v = await validateObject(o, { lookup, driverConfig: offlineConfig.driver, mountMode: "sidecar" });
    const errors = [...v.errors];
    const warnings = [...v.warnings];
    // Pods and workloads: would the webhook admit them (Secret namespace, settings, annotations)?
    if (podTemplateOf(o)) {
      const r = await injectOne(o, lookup, true, offlineConfig);
      const strip = (s: string) => s.slice(describe(o).length + 2);
      if (!r.ok) {
        const message = strip(r.message);
        if (!errors.some((e) => message.includes(e))) errors.push(message);
      } else warnings.push(...r.warnings.map(strip));
    }
    const id = describe(o);
    if (errors.length > 0) {
      ok = false;
      for (const e of errors) lines.push(`invalid  ${id}: ${e}`);
    } else lines.push(`valid    ${id}`);
    // Warnings that already start with the object's name (the webhook's) are not prefixed twice.
    for (const w of warnings)
      lines.push(`warning  ${id}: ${w.startsWith(`${id}: `) ? w.slice(id.length + 2) : w}`);
    allWarnings.push(...warnings);
  }
  if (objects.length === 0) lines.push("no objects found");
  lines.push(
    ok ? `${objects.length} object(s) valid` : "invalid objects found: the webhook would refuse them",
  );
  return { ok, output: `${lines.join("\n")}\n`, warnings: allWarnings };
}
