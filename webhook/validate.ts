// POST /validate: refuse Secrets, PVs, StorageClasses, PVCs, the global config ConfigMap and pods whose JuiceFS settings cannot
// work, with a message naming the field; warnings go into the review so kubectl shows them. Every rule
// is the domain's parseSettings: the webhook only decides which parts of an object to feed it.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from "@kubernetes/client-node";
import {
  type DriverConfig,
  driverName,
  globalConfigKey,
  globalConfigName,
  keys,
  labels,
  parseGlobalConfig,
  parseSettings,
  type SettingsInput,
} from "../driver/juicefs/index.ts";
import {
  type AdmissionRequest,
  type AdmissionResult,
  allowed,
  denied,
  type KubeObject,
} from "./admission.ts";
import type { MountMode } from "./config.ts";
import { sidecarResourceOverrides } from "./inject.ts";
import type { ClusterLookup } from "./lookup.ts";
import { formatErrors, secretData } from "./resolve.ts";

export interface ValidateDeps {
  /** Optional: to find a PV's Secret and a PVC's StorageClass (cache reads; failures are not fatal). */
  lookup?: ClusterLookup;
  driverConfig: DriverConfig;
  mountMode: MountMode;
}

export interface Verdict {
  /** "Secret ns/name", "PersistentVolume pv-1", ...; undefined when the object is not this driver's. */
  object?: string;
  errors: string[];
  warnings: string[];
}

/**
 * Used where the real Secret is not available (StorageClass, PVC, a PV whose Secret is elsewhere):
 * the volume settings are checked on their own and errors about the Secret are dropped.
 */
/** The external-provisioner template that resolves to the PVC's namespace. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a provisioner template, not a JS one
const pvcNamespaceTemplate = "${pvc.namespace}";

const standInSecret = { name: "validation", metaurl: "redis://validation" };

export function makeValidateHandler(deps: ValidateDeps): (req: AdmissionRequest) => Promise<AdmissionResult> {
  return async (req) => {
    // DELETE and CONNECT are never judged: a refusal there would only keep bad objects alive.
    if (req.operation !== "CREATE" && req.operation !== "UPDATE") return allowed();
    // Subresources (status, binding, ...) never carry JuiceFS settings.
    if (req.subResource) return allowed();
    const obj = req.object;
    if (!obj) return allowed();
    // dryRun is not looked at: a dry run must get the answer the real request would get.
    const v = await validateObject(obj, deps, req.namespace);
    if (v.errors.length === 0) return allowed(v.warnings);
    // An object being deleted only loses finalizers from here on (the pv-/pvc-protection controllers
    // remove theirs with an UPDATE): refusing it would leave it Terminating forever.
    if (isDeleting(obj))
      return allowed([
        ...v.warnings,
        `JuiceFS: ${v.object}: being deleted, so not refused; its settings are invalid: ${v.errors.join("; ")}`,
      ]);
    if (req.operation === "UPDATE" && req.oldObject) {
      // Ratcheting: an UPDATE is refused only for what it introduces or changes. The same object's
      // old problems (it was created before the webhook, or before a rule existed) stay warnings, so
      // finalizer removal, binding (claimRef, pv.kubernetes.io/bind-completed), labels and status
      // updates of such objects keep working.
      const old = await validateObject(req.oldObject, deps, req.namespace);
      const before = new Set(old.object === v.object ? old.errors : []);
      const introduced = v.errors.filter((e) => !before.has(e));
      const kept = v.errors.filter((e) => before.has(e));
      const warnings = [
        ...v.warnings,
        ...(kept.length > 0
          ? [
              `JuiceFS: ${v.object}: allowed because this update does not change these invalid settings; fix them: ${kept.join("; ")}`,
            ]
          : []),
      ];
      if (introduced.length === 0) return allowed(warnings);
      return denied(refusal(v.object, introduced), warnings);
    }
    return denied(refusal(v.object, v.errors), v.warnings);
  };
}

/** "JuiceFS: <object>: <errors>", without naming the object twice when every error already names it. */
function refusal(object: string | undefined, errors: string[]): string {
  const named = object !== undefined && errors.every((e) => e.includes(object));
  return `JuiceFS: ${named ? "" : `${object}: `}${errors.join("; ")}`;
}

function isDeleting(obj: KubeObject): boolean {
  const ts = obj.metadata?.deletionTimestamp;
  return typeof ts === "string" && ts !== "";
}

/** Validates one object (also used offline by `juicefs-csi validate`). */
export async function validateObject(
  obj: KubeObject,
  deps: ValidateDeps,
  namespace?: string,
): Promise<Verdict> {
  const md = obj.metadata ?? {};
  const ns = md.namespace || namespace || "default";
  const name = md.name || (md.generateName ? `${md.generateName}*` : "(unnamed)");
  switch (obj.kind) {
    case "Secret":
      if (md.labels?.[labels.validateSecret] !== "true") return { errors: [], warnings: [] };
      return validateSecret(obj, `Secret ${ns}/${name}`, { name, namespace: ns });
    case "PersistentVolume":
      return validatePV(obj as unknown as V1PersistentVolume, `PersistentVolume ${name}`, deps);
    case "StorageClass":
      return validateSC(obj as unknown as V1StorageClass, `StorageClass ${name}`, deps);
    case "PersistentVolumeClaim":
      return validatePVC(
        obj as unknown as V1PersistentVolumeClaim,
        `PersistentVolumeClaim ${ns}/${name}`,
        deps,
      );
    case "ConfigMap":
      if (md.name !== globalConfigName) return { errors: [], warnings: [] };
      return validateGlobalConfig(obj, `ConfigMap ${ns}/${name}`);
    case "Pod": {
      const r = sidecarResourceOverrides(isRecord(md.annotations) ? md.annotations : undefined);
      if (r.ok) return { errors: [], warnings: [] };
      return { object: `Pod ${ns}/${name}`, errors: [r.message], warnings: [] };
    }
    default:
      return { errors: [], warnings: [] };
  }
}

/** The global config: the node plugins and the webhook read its config.yaml; a bad one is refused. */
function validateGlobalConfig(obj: KubeObject, id: string): Verdict {
  const data = isRecord(obj.data) ? obj.data : {};
  const warnings = Object.keys(data)
    .filter((k) => k !== globalConfigKey)
    .map((k) => `${id}: data key "${k}" is not read; the driver reads only "${globalConfigKey}"`);
  if (isRecord(obj.binaryData) && Object.hasOwn(obj.binaryData, globalConfigKey))
    return { object: id, errors: [`${id}: ${globalConfigKey} must be in data, not binaryData`], warnings };
  const text = data[globalConfigKey];
  if (text === undefined) return { object: id, errors: [], warnings };
  if (typeof text !== "string")
    return { object: id, errors: [`${id}: data.${globalConfigKey} must be a string`], warnings };
  const r = parseGlobalConfig(text, id);
  return { object: id, errors: r.ok ? [] : r.errors, warnings: [...warnings, ...r.warnings] };
}

function validateSecret(obj: KubeObject, id: string, ref: { name: string; namespace: string }): Verdict {
  const r = parseSettings({
    volumeId: "validation",
    secret: secretData(obj as { data?: Record<string, string>; stringData?: Record<string, string> }),
    secretRef: ref,
    objectName: id,
  });
  return { object: id, errors: r.ok ? [] : r.errors.map((e) => formatErrors([e])), warnings: r.warnings };
}

/** Runs parseSettings; with the stand-in Secret, errors about the Secret are not this object's. */
function check(input: SettingsInput, realSecret: boolean, id: string, extra: string[] = []): Verdict {
  const r = parseSettings(input);
  const errs = r.ok ? [] : r.errors.filter((e) => realSecret || !e.field.startsWith("secret."));
  const errors = [...extra];
  // One entry per problem, so an UPDATE can be judged problem by problem (ratcheting).
  for (const e of errs) errors.push(formatErrors([e]));
  // Without a secretRef the domain names the Secret "Secret of <object>": those lines are about the stand-in.
  const standIn = `Secret of ${input.objectName}`;
  const warnings = realSecret ? r.warnings : r.warnings.filter((w) => !w.startsWith(standIn));
  return { object: id, errors, warnings };
}

async function validatePV(pv: V1PersistentVolume, id: string, deps: ValidateDeps): Promise<Verdict> {
  const csi = pv.spec?.csi;
  if (csi?.driver !== driverName) return { errors: [], warnings: [] };
  const extra: string[] = [];
  const warnings: string[] = [];
  const ref = csi.nodePublishSecretRef;
  let secret: Record<string, string> | undefined;
  let secretRef: { name: string; namespace: string } | undefined;
  if (!ref?.name)
    extra.push("spec.csi.nodePublishSecretRef is missing: the JuiceFS client needs the file system's Secret");
  else {
    secretRef = { name: ref.name, namespace: ref.namespace || "default" };
    const s = await quietly(() => deps.lookup?.secret(secretRef!.namespace, secretRef!.name));
    if (s) secret = secretData(s as { data?: Record<string, string> });
    else if (s === null)
      warnings.push(
        `Secret ${secretRef.namespace}/${secretRef.name} (spec.csi.nodePublishSecretRef) does not exist yet`,
      );
  }
  let sc: V1StorageClass | undefined;
  const scName = pv.spec?.storageClassName;
  if (scName) sc = (await quietly(() => deps.lookup?.storageClass(scName))) ?? undefined;
  const v = check(
    {
      volumeId: csi.volumeHandle,
      secret: secret ?? standInSecret,
      ...(secret && secretRef ? { secretRef } : {}),
      volumeContext: csi.volumeAttributes ?? {},
      pvMountOptions: pv.spec?.mountOptions ?? [],
      ...(sc ? { storageClass: scInput(sc) } : {}),
      driverConfig: deps.driverConfig,
      readOnly: csi.readOnly === true,
      objectName: id,
    },
    secret !== undefined,
    id,
    extra,
  );
  v.warnings.unshift(...warnings);
  return v;
}

function scInput(sc: V1StorageClass) {
  return {
    ...(sc.metadata?.name ? { name: sc.metadata.name } : {}),
    parameters: sc.parameters ?? {},
    mountOptions: sc.mountOptions ?? [],
  };
}

function validateSC(sc: V1StorageClass, id: string, deps: ValidateDeps): Verdict {
  if (sc.provisioner !== driverName) return { errors: [], warnings: [] };
  const p = sc.parameters ?? {};
  const extra: string[] = [];
  const warnings: string[] = [];
  const secretNs = p[keys.nodePublishSecretNamespace];
  if (!p[keys.nodePublishSecretName] || !secretNs)
    extra.push(
      `parameters ${keys.nodePublishSecretName} and ${keys.nodePublishSecretNamespace} are required: the JuiceFS client needs the file system's Secret`,
    );
  else if (deps.mountMode === "sidecar" && !secretNs.includes(pvcNamespaceTemplate))
    warnings.push(
      `${id}: in sidecar mode the Secret must be in each pod's namespace; only pods in "${secretNs}" can use this class (set ${keys.nodePublishSecretNamespace}: "\${pvc.namespace}")`,
    );
  // Allowed (the class is right for Mount Pod mode), but in sidecar mode its claims can never bind:
  // resolve.ts refuses pods of unbound claims. Kept short: the API server truncates long warnings.
  if (deps.mountMode === "sidecar" && sc.volumeBindingMode === "WaitForFirstConsumer")
    warnings.push(
      `${id}: volumeBindingMode WaitForFirstConsumer never works in sidecar mode (pods are refused until their claim is bound; its claims wait for a scheduled pod); use Immediate (recreate the class) or mountMode: pod`,
    );
  if (!p[keys.provisionerSecretName] || !p[keys.provisionerSecretNamespace])
    warnings.push(
      `${id}: parameters ${keys.provisionerSecretName}/${keys.provisionerSecretNamespace} are not set: dynamic provisioning cannot create the volume's directory`,
    );
  const v = check(
    {
      volumeId: "validation",
      secret: standInSecret,
      storageClass: scInput(sc),
      driverConfig: deps.driverConfig,
      objectName: id,
    },
    false,
    id,
    extra,
  );
  v.warnings.unshift(...warnings);
  return v;
}

async function validatePVC(pvc: V1PersistentVolumeClaim, id: string, deps: ValidateDeps): Promise<Verdict> {
  const annotations = pvc.metadata?.annotations ?? {};
  const hasOurs = Object.keys(annotations).some((k) => k.startsWith("juicefs/"));
  let ours = hasOurs;
  if (!ours && pvc.spec?.storageClassName) {
    const sc = await quietly(() => deps.lookup?.storageClass(pvc.spec!.storageClassName!));
    ours = sc?.provisioner === driverName;
  }
  if (!ours) return { errors: [], warnings: [] };
  return check(
    {
      volumeId: "validation",
      secret: standInSecret,
      pvcAnnotations: annotations,
      driverConfig: deps.driverConfig,
      objectName: id,
    },
    false,
    id,
  );
}

/** A lookup that never fails validation: undefined when unknown (no lookup, or an error), null when absent. */
async function quietly<T>(fn: () => Promise<T | undefined> | undefined): Promise<T | null | undefined> {
  try {
    const p = fn();
    if (p === undefined) return undefined;
    const v = await p;
    return v === undefined ? null : v;
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, string> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
