// Pure planning: a pod plus its resolved JuiceFS volumes → the mutated pod (or a refusal). No I/O.
// The client container and its volumes come from the domain builder (buildSidecarContainer: one source
// of truth with Mount Pods). What lives here is only what makes it a sidecar in someone else's pod:
// the PVC volume becomes the emptyDir the client mounts into, app mounts point at the mount point inside
// it, the app waits for the mount (native sidecar startup probe / classic postStart gate), placement,
// and names that do not clash with the pod's own.
import type { V1Container, V1Pod, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import {
  buildSidecarContainer,
  escapeEnvRefs,
  type JuiceFSSettings,
  keys,
  labels,
  mountReadyScript,
  parseQuantity,
  type Sidecar,
  type SidecarOptions,
} from "../driver/juicefs/index.ts";
import { cloneJson } from "./admission.ts";
import type { MountMode } from "./config.ts";
import type { PodVolumeRef } from "./resolve.ts";

/** Folder of the shared emptyDir inside each sidecar; the FUSE mount point is a directory in it. */
export const sidecarMountRoot = "/jfs";

export type SidecarBuilder = (settings: JuiceFSSettings, opts: SidecarOptions) => Sidecar;

export interface ClaimPlan {
  ref: PodVolumeRef;
  /** "PVC ns/name", for messages. */
  claimId: string;
  /** Needed in sidecar mode. */
  settings?: JuiceFSSettings;
  /** The node-publish Secret (in the pod's namespace) and the keys it holds. */
  secretName?: string;
  secretKeys?: string[];
}

export interface PlanOptions {
  mode: MountMode;
  /** Native sidecar (init container with restartPolicy Always) rather than a first app container. */
  native: boolean;
  /** Default: the domain's buildSidecarContainer. */
  build?: SidecarBuilder;
  /** Classic sidecars (not native) are refused unless the operator accepted their risk. */
  allowClassic?: boolean;
  /** This product's image, for the init container that delivers a Secret's `envs` (see Sidecar.envsInit). */
  productImage?: string;
}

/**
 * Why classic sidecars are unsafe, from the kubelet's source (pkg/kubelet/kuberuntime): SyncPod starts
 * regular containers one by one and ignores each start's error (kuberuntime_manager.go, the loop over
 * ContainersToStart); startContainer runs postStart synchronously, and when it fails kills that
 * container and returns ErrPostStartHook (kuberuntime_container.go). So the postStart gate holds the
 * app only while the mount comes up; if the client fails, the app starts anyway, on the bare emptyDir,
 * and its writes go to the node's disk and are lost with the pod. Nothing in a pod spec makes the
 * kubelet skip the next container: only native sidecars (startup probe of a restartable init
 * container) hold the app for real.
 */
const classicRisk =
  "classic sidecar: if the JuiceFS client fails to start, the kubelet still starts the app containers, on an empty directory of the node's disk (their writes are lost with the pod); on deletion the client keeps the mount for most of the grace period, then unmounts even if the app is still writing";
const classicRefusal = `no native sidecar support (kubelet < 1.29, or webhook.nativeSidecar false): ${classicRisk}. Use Mount Pod mode (mountMode: pod), upgrade the kubelets, or accept the risk with the chart value webhook.sidecar.allowClassic: true`;

export type PlanResult = { ok: true; pod: V1Pod; warnings: string[] } | { ok: false; message: string };

/**
 * The builder with its sidecars remembered per settings object and options. The settings of a claim
 * are the same object for as long as its PVC, PV, StorageClass and Secret do not change (SettingsMemo),
 * so a steady stream of pods builds each sidecar once. The results are shared: planPod copies what it
 * changes (a shallow copy of the container, new arrays) and the patch (compare) copies what it adds.
 * They are not frozen because V8 serializes frozen objects on a slower path (measured about 1.5x for
 * a sidecar), and compare serializes each added sidecar; test/webhook/memo.test.ts checks that no
 * review writes to them.
 */
export function memoizeBuilder(build: SidecarBuilder): SidecarBuilder {
  const cache = new WeakMap<JuiceFSSettings, Map<string, Sidecar>>();
  return (settings, opts) => {
    const key = `${opts.secretName}\0${opts.name ?? ""}\0${opts.mountRoot ?? ""}\0${opts.volumeName ?? ""}\0${opts.productImage ?? ""}`;
    let bySettings = cache.get(settings);
    if (!bySettings) {
      bySettings = new Map();
      cache.set(settings, bySettings);
    }
    let sidecar = bySettings.get(key);
    if (!sidecar) {
      // Keys vary only with container and volume names; a pod template has a handful.
      if (bySettings.size >= 32) bySettings.clear();
      sidecar = build(settings, opts);
      bySettings.set(key, sidecar);
    }
    return sidecar;
  };
}

const sidecarAnnotations = {
  requests: { cpu: keys.sidecarCpuRequest, memory: keys.sidecarMemoryRequest },
  limits: { cpu: keys.sidecarCpuLimit, memory: keys.sidecarMemoryLimit },
} as const;

type ResourceOverrides = {
  requests: { cpu?: string; memory?: string };
  limits: { cpu?: string | null; memory?: string | null };
};

/**
 * Reads the juicefs.com/sidecar-{cpu,memory}-{request,limit} annotations. A limit <= 0 removes the
 * limit (the Mount Pod rule); anything that is not a quantity is refused with the annotation named.
 */
export function sidecarResourceOverrides(
  annotations: Record<string, string> | undefined,
): { ok: true; overrides: ResourceOverrides } | { ok: false; message: string } {
  const overrides: ResourceOverrides = { requests: {}, limits: {} };
  if (!annotations) return { ok: true, overrides };
  for (const kind of ["requests", "limits"] as const) {
    for (const res of ["cpu", "memory"] as const) {
      const key = sidecarAnnotations[kind][res];
      const raw = annotations[key];
      if (raw === undefined) continue;
      const value = typeof raw === "string" ? raw.trim() : "";
      const n = value === "" ? undefined : parseQuantity(value);
      if (n === undefined)
        return {
          ok: false,
          message: `annotation ${key}: ${JSON.stringify(raw)} is not a Kubernetes quantity (e.g. ${res === "cpu" ? '"500m" or "2"' : '"512Mi" or "4Gi"'})`,
        };
      if (kind === "limits") overrides.limits[res] = n <= 0 ? null : value;
      else if (n < 0) return { ok: false, message: `annotation ${key}: ${JSON.stringify(raw)} is negative` };
      else overrides.requests[res] = value;
    }
  }
  return { ok: true, overrides };
}

function applyOverrides(settings: JuiceFSSettings, o: ResourceOverrides): JuiceFSSettings | string {
  // Most pods set no annotation: the same settings object, so a memoized builder recognises it.
  if (Object.keys(o.requests).length === 0 && Object.keys(o.limits).length === 0) return settings;
  const requests = { ...settings.resources.requests, ...o.requests };
  const limits: { cpu?: string; memory?: string } = { ...settings.resources.limits };
  for (const res of ["cpu", "memory"] as const) {
    const l = o.limits[res];
    if (l === null) delete limits[res];
    else if (l !== undefined) limits[res] = l;
  }
  for (const res of ["cpu", "memory"] as const) {
    const r = requests[res];
    const l = limits[res];
    if (r === undefined || l === undefined) continue;
    const rn = parseQuantity(r);
    const ln = parseQuantity(l);
    if (rn !== undefined && ln !== undefined && rn > ln)
      return `sidecar ${res} request ${r} is above its limit ${l} (annotations ${sidecarAnnotations.requests[res]} / ${sidecarAnnotations.limits[res]}, or the volume's juicefs/mount-${res}-* settings)`;
  }
  return { ...settings, resources: { requests, limits } };
}

/**
 * The sidecar's own security context, complete: the pod's securityContext (runAsNonRoot, runAsUser,
 * runAsGroup) applies to every container that does not override it, and the kubelet refuses a
 * container whose effective runAsNonRoot is true while it runs as uid 0 ("container's runAsUser
 * breaks non-root policy", kuberuntime_container_linux.go verifyRunAsNonRoot). FUSE needs root,
 * /dev/fuse and CAP_SYS_ADMIN: privileged covers them; the explicit fields keep pod defaults out.
 */
export const sidecarSecurityContext = {
  privileged: true,
  allowPrivilegeEscalation: true,
  runAsUser: 0,
  runAsGroup: 0,
  runAsNonRoot: false,
  capabilities: { add: ["SYS_ADMIN"] },
} as const satisfies V1Container["securityContext"];

/**
 * Classic mode: postStart of the sidecar holds the kubelet from starting the next containers until the
 * mount is served ($1 mount point, $2 seconds). Built on the domain's readiness check; no "$(" or "$$"
 * so kubelet variable expansion cannot change it.
 */
const waitForMount = `i=0; until ${mountReadyScript}; do if [ "$i" -ge "$2" ]; then echo "JuiceFS mount at $1 not served after $2 s" >&2; exit 1; fi; sleep 1; i=\`expr "$i" + 1\`; done`;

/**
 * Classic preStop: hold the mount $2 seconds ($1, the mount point, is informational). When the hook
 * ends the kubelet sends SIGTERM, on which juicefs unmounts and exits. Unmounting in the hook instead
 * ends the client — the container's PID 1 — while the hook still runs: FailedPreStopHook every time.
 */
const classicPreStop = 'sleep "$2"';

/** Seconds the classic client keeps serving after deletion: the grace period less time to flush. */
export function holdSeconds(grace: number | undefined): number {
  const g = grace ?? 30;
  return Math.max(0, Math.min(g - 10, Math.floor(g * 0.75)));
}

/** Same patience as the builder's startup probe (format/auth plus the first mount). */
function startupSeconds(c: V1Container): number {
  const p = c.startupProbe;
  return p ? (p.periodSeconds ?? 10) * (p.failureThreshold ?? 3) : 300;
}

const joinPath = (...parts: (string | undefined)[]): string =>
  parts
    .flatMap((p) => (p ?? "").split("/"))
    .filter((p) => p !== "" && p !== ".")
    .join("/");

/** DNS-1123 label: container names are at most 63 characters. */
function containerName(volumeName: string, taken: Set<string>): string {
  let base = `juicefs-mount-${volumeName}`;
  if (base.length > 63) base = `juicefs-mount-${volumeName.slice(0, 40)}-${shortHash(volumeName)}`;
  base = base.replace(/-+$/, "");
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base.slice(0, 60)}-${i}`;
  taken.add(name);
  return name;
}

function shortHash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(16).padStart(8, "0");
}

const isJuiceMount = (m: V1VolumeMount, names: Set<string>) => names.has(m.name);

/**
 * Pod annotation written at injection: for each JuiceFS volume, the sub-path of the FUSE mount inside
 * the shared emptyDir and the sidecar serving it. A reinvocation (another webhook added containers
 * after us) reads it to rewrite the mounts of the new containers the same way.
 */
export const injectedVolumesAnnotation = "juicefs.com/injected-volumes";

export interface InjectedVolume {
  /** subPath prefix of every app mount of the volume (mount point, then the volume's directory). */
  subPath: string;
  /** The sidecar container that mounts it. */
  container: string;
}

/** One app mount pointed at the volume's directory inside the emptyDir; unchanged if it already is. */
function intoMount(m: V1VolumeMount, prefix: string): V1VolumeMount {
  if (m.subPathExpr !== undefined) {
    const p = escapeEnvRefs(prefix);
    if (m.subPathExpr === p || m.subPathExpr.startsWith(`${p}/`)) return m;
    return { ...m, subPathExpr: `${p}/${m.subPathExpr}` };
  }
  const sp = m.subPath ?? "";
  if (sp === prefix || sp.startsWith(`${prefix}/`)) return m;
  return { ...m, subPath: joinPath(prefix, sp) };
}

const withPropagation = (m: V1VolumeMount): V1VolumeMount =>
  m.mountPropagation === undefined ? { ...m, mountPropagation: "HostToContainer" } : m;

/** The injected volumes recorded on the pod that are still what we made (emptyDir + its sidecar). */
export function injectedVolumes(pod: V1Pod): Map<string, InjectedVolume> {
  const out = new Map<string, InjectedVolume>();
  const raw = pod.metadata?.annotations?.[injectedVolumesAnnotation];
  if (typeof raw !== "string") return out;
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch {
    return out;
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return out;
  const spec = pod.spec;
  const all = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])];
  for (const [name, v] of Object.entries(doc as Record<string, unknown>)) {
    const iv = v as Partial<InjectedVolume> | null;
    if (typeof iv?.subPath !== "string" || iv.subPath === "" || typeof iv.container !== "string") continue;
    const vol = spec?.volumes?.find((x) => x.name === name);
    // Only what this webhook made counts: an emptyDir that the recorded sidecar mounts at its root.
    const sidecar = all.find((c) => c.name === iv.container);
    if (
      !vol?.emptyDir ||
      !sidecar?.volumeMounts?.some((m) => m.name === name && !m.subPath && !m.subPathExpr)
    )
      continue;
    out.set(name, { subPath: iv.subPath, container: iv.container });
  }
  return out;
}

export type ReinvokeResult = { ok: true; pod: V1Pod; warnings: string[] } | { ok: false; message: string };

/**
 * A later pass over a pod this webhook injected already (reinvocationPolicy IfNeeded: the API server
 * calls again after later webhooks changed the pod). Containers those webhooks added get the same
 * mounts as the first pass gave the others: the volume's sub-path and HostToContainer. Nothing is
 * added twice; when nothing changed the same pod object is returned (no patch), so the pass
 * converges. Native sidecars are moved back in front of init containers put before them.
 */
export function reinvokePod(pod: V1Pod, native: boolean): ReinvokeResult {
  const injected = injectedVolumes(pod);
  if (injected.size === 0) return { ok: true, pod, warnings: [] };
  const sidecarNames = new Set([...injected.values()].map((v) => v.container));
  const spec = pod.spec!;
  const edit = (c: V1Container) =>
    sidecarNames.has(c.name)
      ? c
      : editMounts(c, (m) => {
          const iv = injected.get(m.name);
          return iv ? withPropagation(intoMount(m, iv.subPath)) : m;
        });
  const init = spec.initContainers?.map(edit);
  const containers = spec.containers.map(edit);
  let changed =
    containers.some((c, i) => c !== spec.containers[i]) ||
    !!init?.some((c, i) => c !== spec.initContainers![i]);
  let initOut = init;
  if (init) {
    const usesJfs = (c: V1Container) =>
      !sidecarNames.has(c.name) && (c.volumeMounts ?? []).some((m) => injected.has(m.name));
    const firstUser = init.findIndex(usesJfs);
    if (firstUser >= 0) {
      if (!native) {
        const c = init[firstUser]!;
        const used = c.volumeMounts!.find((m) => injected.has(m.name))!;
        return {
          ok: false,
          message: `init container "${c.name}" (added after injection) uses JuiceFS volume "${used.name}", which a classic sidecar cannot serve to init containers; it would see an empty directory`,
        };
      }
      const lastSidecar = init.reduce((acc, c, i) => (sidecarNames.has(c.name) ? i : acc), -1);
      if (lastSidecar > firstUser) {
        // An init container put in front of our sidecars would start before the mount is there.
        // Each sidecar's envs writer (see Sidecar.envsInit) stays right before it.
        const ours = (c: V1Container) => sidecarNames.has(c.name) || c.args?.[0] === "write-envs";
        initOut = [...init.filter(ours), ...init.filter((c) => !ours(c))];
        changed = true;
      }
    }
  }
  if (!changed) return { ok: true, pod, warnings: [] };
  return {
    ok: true,
    pod: { ...pod, spec: { ...spec, containers, ...(initOut ? { initContainers: initOut } : {}) } },
    warnings: [],
  };
}

/** The container with `edit` applied to each mount; the same object when nothing changed. */
function editMounts(c: V1Container, edit: (m: V1VolumeMount) => V1VolumeMount): V1Container {
  if (!c.volumeMounts) return c;
  let changed = false;
  const mounts = c.volumeMounts.map((m) => {
    const n = edit(m);
    if (n !== m) changed = true;
    return n;
  });
  return changed ? { ...c, volumeMounts: mounts } : c;
}

/**
 * Plans the mutated pod. `claims` are the pod's JuiceFS volumes (already resolved); the caller has
 * checked that the pod is eligible. Idempotent by construction: the result has no JuiceFS PVC left.
 *
 * Copy-on-write: `pod` is never modified; the result shares every subtree that does not change, so the
 * patch (compare(original, result)) only walks what did. The builder's objects are fresh per call.
 */
export function planPod(pod: V1Pod, claims: ClaimPlan[], opts: PlanOptions): PlanResult {
  const spec = { ...pod.spec! };
  const out: V1Pod = { ...pod, spec };
  const warnings: string[] = [];
  const jfsNames = new Set(claims.map((c) => c.ref.volumeName));

  // Every mode: a recovered mount must reach running containers.
  const propagate = (c: V1Container) =>
    editMounts(c, (m) =>
      isJuiceMount(m, jfsNames) && m.mountPropagation === undefined
        ? { ...m, mountPropagation: "HostToContainer" }
        : m,
    );
  if (spec.initContainers) spec.initContainers = spec.initContainers.map(propagate);
  spec.containers = spec.containers.map(propagate);

  if (opts.mode !== "sidecar" || claims.length === 0) return { ok: true, pod: out, warnings };

  const res = sidecarResourceOverrides(pod.metadata?.annotations);
  if (!res.ok) return { ok: false, message: res.message };

  if (!opts.native) {
    for (const c of spec.initContainers ?? []) {
      const used = (c.volumeMounts ?? []).find((m) => isJuiceMount(m, jfsNames));
      if (used) {
        const claim = claims.find((x) => x.ref.volumeName === used.name)!;
        return {
          ok: false,
          message: `init container "${c.name}" uses JuiceFS volume "${used.name}" (${claim.claimId}), which a sidecar can only serve to init containers as a native sidecar (Kubernetes >= 1.29, webhook.nativeSidecar); it would see an empty directory`,
        };
      }
    }
    // The kubelet keeps a pod Running while any regular container runs: a classic client never exits
    // on its own, so a Job's pod would never complete (native sidecars are stopped after the app).
    if (spec.restartPolicy === "Never" || spec.restartPolicy === "OnFailure")
      return {
        ok: false,
        message: `restartPolicy ${spec.restartPolicy} (a Job's pod) cannot complete with a classic sidecar: the JuiceFS client is a regular container and keeps the pod Running after the app exits; run it on nodes with native sidecars (kubelet >= 1.29) or use Mount Pod mode (mountMode: pod)`,
      };
    if (!opts.allowClassic) return { ok: false, message: classicRefusal };
    warnings.push(classicRisk);
  }

  const build = opts.build ?? buildSidecarContainer;
  const taken = new Set([...(spec.initContainers ?? []), ...spec.containers].map((c) => c.name));
  const volumes = [...(spec.volumes ?? [])];
  const volumeNames = new Set(volumes.map((v) => v.name));
  const sidecars: V1Container[] = [];
  /** Per sidecar, the init container that must run before it (Secret `envs`), if any. */
  const envsInits: (V1Container | undefined)[] = [];
  const extraVolumes: V1Volume[] = [];
  const recorded: Record<string, InjectedVolume> = Object.fromEntries(injectedVolumes(pod));

  for (const claim of claims) {
    if (!claim.settings || !claim.secretName)
      return { ok: false, message: `${claim.claimId}: settings were not resolved (internal error)` };
    const settings = applyOverrides(claim.settings, res.overrides);
    if (typeof settings === "string") return { ok: false, message: `${claim.claimId}: ${settings}` };
    const volumeName = claim.ref.volumeName;
    const name = containerName(volumeName, taken);
    // The pod volume itself becomes the sidecar's emptyDir, so every app mount keeps its volume name.
    const sidecar = build(settings, {
      secretName: claim.secretName,
      name,
      mountRoot: sidecarMountRoot,
      volumeName,
      ...(opts.productImage ? { productImage: opts.productImage } : {}),
    });
    // Top-level fields are replaced below, never nested ones: the copy can be shallow.
    const c: V1Container = { ...sidecar.container, securityContext: sidecarSecurityContext };

    // secretKeyRef reads the Secret as it is (no per-pod copy: sideEffects None); each key must exist.
    if (claim.secretKeys) {
      const have = new Set(claim.secretKeys);
      const missing = (c.env ?? [])
        .map((e) => e.valueFrom?.secretKeyRef?.key)
        .filter((k): k is string => k !== undefined && !have.has(k));
      if (missing.length > 0)
        return {
          ok: false,
          message: `${claim.claimId}: Secret ${claim.secretName} has no key ${missing.map((k) => `"${k}"`).join(", ")}; the sidecar reads these keys directly from the Secret (rename legacy keys such as "accesskey" to "access-key")`,
        };
    }

    // Volumes: the emptyDir replaces the PVC volume in place; the client's own volumes (cache dirs,
    // config Secrets) are shared when identical and renamed when their name is taken.
    const renames = new Map<string, string>();
    for (const v of sidecar.volumes) {
      if (v.name === volumeName) {
        const i = volumes.findIndex((x) => x.name === volumeName);
        if (i >= 0) volumes[i] = cloneJson(v);
        continue;
      }
      const existing = [...volumes, ...extraVolumes].find((x) => x.name === v.name);
      if (existing && !jfsNames.has(v.name) && JSON.stringify(existing) === JSON.stringify(v)) continue;
      let n = v.name;
      for (let i = 2; volumeNames.has(n); i++) n = `${v.name}-${i}`;
      volumeNames.add(n);
      if (n !== v.name) renames.set(v.name, n);
      extraVolumes.push({ ...cloneJson(v), name: n });
    }
    const renamed = (mounts: V1VolumeMount[] | undefined) =>
      (mounts ?? []).map((m) => (renames.has(m.name) ? { ...m, name: renames.get(m.name)! } : m));
    c.volumeMounts = renamed(c.volumeMounts);
    if (sidecar.envsInit) {
      let n = sidecar.envsInit.name;
      for (let i = 2; taken.has(n); i++) n = `${sidecar.envsInit.name.slice(0, 60)}-${i}`;
      taken.add(n);
      envsInits.push({ ...sidecar.envsInit, name: n, volumeMounts: renamed(sidecar.envsInit.volumeMounts) });
    } else envsInits.push(undefined);
    // Declared ports of a second client, or any with hostNetwork (hostPort = containerPort), would clash,
    // so they are dropped. Known gap (issue 11, open): such a client has no declared metrics port, so
    // nothing scrapes it; per-client metrics ports are still to be assigned.
    if (spec.hostNetwork === true || sidecars.length > 0) delete c.ports;

    if (opts.native) {
      // The kubelet starts the next init container / the app only once the startup probe passes.
      c.restartPolicy = "Always";
    } else {
      c.lifecycle = {
        ...(c.lifecycle ?? {}),
        postStart: {
          exec: {
            command: [
              "/bin/sh",
              "-c",
              waitForMount,
              "mount-wait",
              sidecar.mountPoint,
              String(startupSeconds(c)),
            ],
          },
        },
        // The kubelet runs every container's preStop at once and sends SIGTERM to each when its own
        // hook ends (killContainersWithSyncResult: one goroutine per container). Unmounting at once
        // would fail the app's last writes, so the client stays until shortly before the grace period
        // ends, then unmounts (flushing) in the time left.
        preStop: {
          exec: {
            command: [
              "/bin/sh",
              "-c",
              classicPreStop,
              "mount-hold",
              sidecar.mountPoint,
              String(holdSeconds(spec.terminationGracePeriodSeconds)),
            ],
          },
        },
      };
    }
    sidecars.push(c);

    // App mounts see the volume's directory: the mount point inside the emptyDir, then the volume's
    // sub-directory in the file system (Mount Pods bind it; here the kubelet's subPath does).
    const prefix = joinPath(sidecar.subPath, settings.subPath);
    recorded[volumeName] = { subPath: prefix, container: name };
    const into = (ac: V1Container) =>
      editMounts(ac, (m) => {
        if (m.name !== volumeName) return m;
        if (m.subPathExpr) return { ...m, subPathExpr: `${escapeEnvRefs(prefix)}/${m.subPathExpr}` };
        return { ...m, subPath: joinPath(prefix, m.subPath) };
      });
    if (spec.initContainers) spec.initContainers = spec.initContainers.map(into);
    spec.containers = spec.containers.map(into);
  }
  spec.volumes = [...volumes, ...extraVolumes];
  // An envs init container runs to completion before its sidecar starts (init containers run in order).
  const inits = envsInits.filter((c): c is V1Container => c !== undefined);
  if (opts.native)
    spec.initContainers = [
      ...sidecars.flatMap((c, i) => (envsInits[i] ? [envsInits[i], c] : [c])),
      ...(spec.initContainers ?? []),
    ];
  else {
    if (inits.length > 0) spec.initContainers = [...inits, ...(spec.initContainers ?? [])];
    spec.containers = [...sidecars, ...spec.containers];
  }

  out.metadata = {
    ...(pod.metadata ?? {}),
    labels: { ...(pod.metadata?.labels ?? {}), [labels.injectDone]: "true" },
    annotations: {
      ...(pod.metadata?.annotations ?? {}),
      [injectedVolumesAnnotation]: JSON.stringify(recorded),
    },
  };
  return { ok: true, pod: out, warnings };
}
