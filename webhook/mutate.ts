// POST /mutate-pod: decide whether a new pod needs the JuiceFS client and answer with the patch.
// The order matters for speed: the cheap checks on the pod itself (no PVC → done) come before any
// lookup, so pods without JuiceFS volumes cost one pass over spec.volumes.
import type { V1Pod } from "@kubernetes/client-node";
import { buildSidecarContainer, type GlobalConfig, labels } from "../driver/juicefs/index.ts";
import {
  type AdmissionRequest,
  type AdmissionResult,
  allowed,
  denied,
  errored,
  type KubeObject,
  patched,
} from "./admission.ts";
import type { WebhookConfig } from "./config.ts";
import {
  type ClaimPlan,
  injectedVolumesAnnotation,
  memoizeBuilder,
  planPod,
  reinvokePod,
  type SidecarBuilder,
} from "./inject.ts";
import type { ClusterLookup } from "./lookup.ts";
import type { Placement } from "./placement.ts";
import type { Handler } from "./policy.ts";
import { claimVolumes, resolveVolume, SettingsMemo } from "./resolve.ts";

export interface MutateDeps {
  lookup: ClusterLookup;
  config: WebhookConfig;
  /** Native sidecars, decided at startup (config, or the cluster's version). */
  native: boolean | Placement;
  /** Default: the domain's buildSidecarContainer. */
  build?: SidecarBuilder;
  /** Settings parsed by earlier reviews (makeMutateHandler makes one). */
  memo?: SettingsMemo;
  /** The global config in force, read at each review (sidecar mode applies its patches). */
  globalConfig?: () => GlobalConfig | undefined;
}

export function makeMutateHandler(deps: MutateDeps): Handler {
  // Parsed settings and built sidecars are remembered for as long as the objects they come from.
  const memoized: MutateDeps = {
    ...deps,
    memo: deps.memo ?? new SettingsMemo(),
    build: memoizeBuilder(deps.build ?? buildSidecarContainer),
  };
  const handler: Handler = (req) => mutatePod(req, memoized);
  handler.quick = (req) => quickDecision(req, nativeOf(deps));
  return handler;
}

const allowedPlain: AdmissionResult = { allowed: true };

/** Native sidecars for this review: fixed, or as the nodes' kubelets allow now. */
const nativeOf = (deps: MutateDeps): boolean =>
  typeof deps.native === "boolean" ? deps.native : deps.native.native();

/**
 * Everything that can be decided from the request alone: operations and kinds that are not new pods,
 * pods without claims, pods opted out, and reinvocations of pods already injected that have no claim
 * left (their new containers' mounts are rewritten without any lookup). undefined: the pod needs the
 * full path.
 */
export function quickDecision(req: AdmissionRequest, native = true): AdmissionResult | undefined {
  // Only new pods are mutated; UPDATE/DELETE/CONNECT and subresources (binding, eviction, ...) pass.
  if (req.operation !== "CREATE" || req.subResource) return allowedPlain;
  if (req.kind.kind !== "Pod" || (req.kind.group ?? "") !== "")
    return errored(
      400,
      `request.kind is ${req.kind.group ? `${req.kind.group}/` : ""}${req.kind.kind}: /mutate-pod only handles core/v1 Pods`,
    );
  const pod = req.object;
  if (!pod) return errored(400, "request.object is missing: a CREATE review carries the new pod");
  if (pod.kind !== undefined && pod.kind !== "Pod")
    return errored(400, `request.object.kind is ${JSON.stringify(pod.kind)}: expected "Pod"`);
  const podLabels = pod.metadata?.labels;
  if (podLabels?.[labels.injectDisable] === "true") return allowedPlain;
  const claim = hasClaim(pod);
  if (podLabels?.[labels.injectDone] === "true") {
    // The reference driver's contract: the done label alone means "skip". Only a pod that carries
    // our record of the injection is looked at again (reinvocation).
    if (typeof pod.metadata?.annotations?.[injectedVolumesAnnotation] !== "string") return allowedPlain;
    if (!claim) return reinvocation(req, pod, native);
  }
  if (!claim) return allowedPlain;
  return undefined;
}

/**
 * An injected pod seen again (reinvocation after later webhooks, or a copy of an injected pod): no
 * lookup is needed, only the mounts of containers added since. No patch when there is nothing new.
 */
function reinvocation(req: AdmissionRequest, pod: KubeObject, native: boolean): AdmissionResult {
  const shapeError = checkPodShape(pod);
  if (shapeError) return errored(400, `request.object is not a valid Pod: ${shapeError}`);
  const r = reinvokePod(pod as unknown as V1Pod, native);
  if (!r.ok)
    return denied(
      `JuiceFS: pod ${podName(pod, req.namespace || pod.metadata?.namespace || "")}: ${r.message}`,
    );
  if (r.pod === (pod as unknown)) return allowedPlain;
  return patched(pod, r.pod, r.warnings);
}

/** Any persistentVolumeClaim or ephemeral volume (no allocation: this runs for every pod). */
function hasClaim(pod: Record<string, unknown>): boolean {
  const volumes = (pod.spec as { volumes?: unknown } | undefined)?.volumes;
  if (!Array.isArray(volumes)) return false;
  for (const v of volumes) {
    const o = v as { persistentVolumeClaim?: unknown; ephemeral?: unknown } | null;
    if (o && (o.persistentVolumeClaim || o.ephemeral)) return true;
  }
  return false;
}

export async function mutatePod(req: AdmissionRequest, deps: MutateDeps): Promise<AdmissionResult> {
  const native = nativeOf(deps);
  const quick = quickDecision(req, native);
  if (quick) return quick;
  const original = req.object!;
  const refs = claimVolumes(original);
  if (refs.length === 0) return allowed();

  const shapeError = checkPodShape(original);
  if (shapeError) return errored(400, `request.object is not a valid Pod: ${shapeError}`);
  // An injected pod that still has claims (a later webhook added one, or other drivers' claims):
  // first the containers added since injection, then the new claims on top.
  let pod = original;
  const again = original.metadata?.labels?.[labels.injectDone] === "true";
  if (again) {
    const r = reinvokePod(original as unknown as V1Pod, native);
    if (!r.ok) return denied(`JuiceFS: pod ${podName(original, req.namespace || "")}: ${r.message}`);
    pod = r.pod as unknown as KubeObject;
  }
  const namespace = req.namespace || pod.metadata?.namespace;
  if (!namespace) return errored(400, "request.namespace is missing: pods are namespaced");

  const { webhook } = deps.config;
  const sidecar = webhook.mountMode === "sidecar";
  // Sidecar mode reads the namespace (from the informer) for the injection label and Pod Security.
  const nsLabels = sidecar ? (await deps.lookup.namespace(namespace))?.metadata?.labels : undefined;
  if (sidecar && webhook.requireNamespaceLabel && nsLabels?.[labels.enableInjection] !== "true")
    return patched(original, pod);

  const gc = deps.globalConfig?.();
  const resolutions = await Promise.all(
    refs.map((ref) =>
      resolveVolume(deps.lookup, namespace, ref, {
        settings: sidecar,
        driverConfig: deps.config.driver,
        ...(deps.memo ? { memo: deps.memo } : {}),
        ...(sidecar && gc ? { globalConfig: gc } : {}),
      }),
    ),
  );
  const warnings: string[] = [];
  const problems: string[] = [];
  const claims: ClaimPlan[] = [];
  for (const r of resolutions) {
    if (r.kind === "unknown") warnings.push(r.warning);
    else if (r.kind === "invalid") problems.push(r.message);
    else if (r.kind === "juicefs") {
      warnings.push(...r.warnings);
      claims.push({
        ref: r.ref,
        claimId: `PVC ${namespace}/${r.ref.claimName}`,
        ...(r.settings ? { settings: r.settings } : {}),
        ...(r.secretName ? { secretName: r.secretName } : {}),
        ...(r.secretKeys ? { secretKeys: r.secretKeys } : {}),
      });
    }
  }
  const who = podName(pod, namespace);
  if (problems.length > 0) return denied(`JuiceFS: pod ${who}: ${problems.join("; ")}`, warnings);
  if (claims.length === 0) return patched(original, pod, warnings);
  if (sidecar) {
    const ps = podSecurity(namespace, nsLabels);
    if (ps.refusal) return denied(`JuiceFS: pod ${who}: ${ps.refusal}`, warnings);
    warnings.push(...ps.warnings);
  }

  const plan = planPod(pod as unknown as V1Pod, claims, {
    mode: webhook.mountMode,
    native,
    allowClassic: webhook.allowClassicSidecar,
    maxClients: webhook.maxClientsPerPod,
    ...(deps.build ? { build: deps.build } : {}),
    productImage: webhook.productImage,
  });
  if (!plan.ok) return denied(`JuiceFS: pod ${who}: ${plan.message}`, warnings);
  if (sidecar && typeof deps.native !== "boolean") warnings.push(...deps.native.warnings());
  return patched(original, plan.pod, [...warnings, ...plan.warnings]);
}

const podSecurityLabel = "pod-security.kubernetes.io/";

/**
 * Pod Security admission runs after mutating webhooks and rejects a privileged container in a
 * namespace that enforces "baseline" or "restricted" (privileged, hostPath and SYS_ADMIN are all
 * outside baseline), with a generic message about a container the user never wrote. Refusing here
 * says why and what to do instead. Namespace exemptions in the API server's AdmissionConfiguration
 * cannot be seen from here; a namespace exempted there should not carry the enforce label.
 */
export function podSecurity(
  namespace: string,
  nsLabels: Record<string, string> | undefined,
): { refusal?: string; warnings: string[] } {
  const warnings: string[] = [];
  if (!nsLabels) return { warnings };
  const enforce = nsLabels[`${podSecurityLabel}enforce`];
  if (enforce === "baseline" || enforce === "restricted")
    return {
      refusal: `namespace "${namespace}" enforces Pod Security "${enforce}" (label ${podSecurityLabel}enforce), which forbids the privileged JuiceFS client container that sidecar mode injects; use Mount Pod mode (chart value mountMode: pod), where the client runs in its own pod in the driver's namespace, or set ${podSecurityLabel}enforce=privileged on the namespace`,
      warnings,
    };
  for (const mode of ["warn", "audit"] as const) {
    const level = nsLabels[`${podSecurityLabel}${mode}`];
    if (level === "baseline" || level === "restricted")
      warnings.push(
        `namespace "${namespace}" has Pod Security ${mode}="${level}" (label ${podSecurityLabel}${mode}): the injected JuiceFS client is privileged and will be reported`,
      );
  }
  return { warnings };
}

function podName(pod: { metadata?: { name?: string; generateName?: string } }, ns: string): string {
  const m = pod.metadata;
  return `${ns}/${m?.name || (m?.generateName ? `${m.generateName}*` : "(unnamed)")}`;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The parts of a pod the planner walks, checked before it walks them. A real API server only sends
 * decoded pods, so this only guards against hand-made or corrupt reviews.
 */
export function checkPodShape(pod: Record<string, unknown>): string | undefined {
  const spec = pod.spec;
  if (!isObject(spec)) return "spec is missing or not an object";
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) return "spec.containers is empty";
  if (spec.initContainers !== undefined && !Array.isArray(spec.initContainers))
    return "spec.initContainers is not a list";
  for (const field of ["initContainers", "containers"] as const) {
    const list = (spec[field] ?? []) as unknown[];
    for (const [i, c] of list.entries()) {
      if (!isObject(c)) return `spec.${field}[${i}] is not an object`;
      if (typeof c.name !== "string" || c.name === "") return `spec.${field}[${i}].name is missing`;
      if (c.volumeMounts === undefined) continue;
      if (!Array.isArray(c.volumeMounts)) return `spec.${field}[${i}].volumeMounts is not a list`;
      for (const [j, m] of c.volumeMounts.entries()) {
        if (!isObject(m) || typeof m.name !== "string")
          return `spec.${field}[${i}].volumeMounts[${j}] has no volume name`;
        for (const k of ["subPath", "subPathExpr", "mountPropagation", "mountPath"])
          if (m[k] !== undefined && typeof m[k] !== "string")
            return `spec.${field}[${i}].volumeMounts[${j}].${k} is not a string`;
      }
      if (c.lifecycle !== undefined && !isObject(c.lifecycle))
        return `spec.${field}[${i}].lifecycle is not an object`;
    }
  }
  if (!Array.isArray(spec.volumes)) return "spec.volumes is not a list";
  for (const [i, v] of spec.volumes.entries())
    if (!isObject(v) || typeof v.name !== "string") return `spec.volumes[${i}] has no name`;
  const meta = pod.metadata;
  if (meta !== undefined && !isObject(meta)) return "metadata is not an object";
  if (isObject(meta) && meta.labels !== undefined && !isObject(meta.labels))
    return "metadata.labels is not an object";
  if (isObject(meta) && meta.annotations !== undefined && !isObject(meta.annotations))
    return "metadata.annotations is not an object";
  return undefined;
}
