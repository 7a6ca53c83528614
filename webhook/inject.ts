// Pure planning: a pod plus its resolved JuiceFS volumes → the mutated pod (or a refusal). No I/O.
// The client container and its volumes come from the domain builder (buildSidecarContainer: one source
// of truth with Mount Pods). What lives here is only what makes it a sidecar in someone else's pod:
// the PVC volume becomes the emptyDir the client mounts into, app mounts point at the mount point inside
// it, the app waits for the mount (native sidecar startup probe / classic postStart gate), placement,
// and names that do not clash with the pod's own.
import type { V1Container, V1Pod, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import {
  bufferMemoryFit,
  bufferSizeOf,
  buildSidecarContainer,
  canonicalJson,
  defaultSidecarContainerName,
  escapeEnvRefs,
  hashedSettings,
  type JuiceFSSettings,
  keys,
  labels,
  mountReadyScript,
  parseQuantity,
  ports,
  type Sidecar,
  type SidecarOptions,
} from "../driver/juicefs/index.ts";
import {
  type InjectedVolume,
  injectedVolumes,
  injectedVolumesAnnotation,
  type SharedVolume,
} from "../driver/juicefs/injected.ts";
import { cloneJson } from "./admission.ts";

export { type InjectedVolume, injectedVolumes, injectedVolumesAnnotation, type SharedVolume };

import { defaultMaxClientsPerPod, type MountMode } from "./config.ts";
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
  /** Most JuiceFS clients (sidecars) one pod may get; default defaultMaxClientsPerPod. */
  maxClients?: number;
}

/*
 * The cap on JuiceFS clients per pod (defaultMaxClientsPerPod, config.ts). Each client is a privileged
 * container with its own memory (buffer-size, 300 MiB by default) and CPU request, so a pod with many
 * distinct volumes would ask for more than a node has (1000 volumes: 500 CPUs) and its patch would near
 * the API server's 3 MiB limit. Claims that need the same client share one (see shareKey), so the cap
 * counts distinct file systems.
 */
export { defaultMaxClientsPerPod };

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
    const key = `${opts.secretName}\0${opts.name ?? ""}\0${opts.mountRoot ?? ""}\0${opts.volumeName ?? ""}\0${opts.productImage ?? ""}\0${opts.metricsPort ?? ""}`;
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

function applyOverrides(
  settings: JuiceFSSettings,
  o: ResourceOverrides,
): { settings: JuiceFSSettings; warning?: string } | string {
  // Most pods set no annotation: the same settings object, so a memoized builder recognises it.
  if (Object.keys(o.requests).length === 0 && Object.keys(o.limits).length === 0) return { settings };
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
  // A memory limit from the annotation meets the volume's buffer-size: the same policy as a PV's own
  // limit (an error above it, a warning above 80%), naming the annotation as the thing to raise.
  let warning: string | undefined;
  if (typeof o.limits.memory === "string") {
    const fit = bufferMemoryFit(bufferSizeOf(settings.mountOptions), limits.memory, keys.sidecarMemoryLimit);
    if (fit.error) return `${fit.error} (annotation ${keys.sidecarMemoryLimit}: ${limits.memory})`;
    warning = fit.warning;
  }
  const out = { ...settings, resources: { requests, limits } };
  return warning ? { settings: out, warning } : { settings: out };
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

/**
 * The reference driver's names, which its docs' `kubectl logs <pod> -c jfs-mount` relies on: the first
 * client is `jfs-mount`, the next ones `jfs-mount-1`, `jfs-mount-2`... (skipping names the pod uses).
 * The injection record (and `doctor`) says which claim each one serves.
 */
function containerName(taken: Set<string>): string {
  let name = defaultSidecarContainerName;
  for (let i = 1; taken.has(name); i++) name = `${defaultSidecarContainerName}-${i}`;
  taken.add(name);
  return name;
}

const isJuiceMount = (m: V1VolumeMount, names: Set<string>) => names.has(m.name);

/**
 * One app mount pointed at the volume's directory inside the emptyDir; unchanged if it already is
 * (under `prefix`, or under one of `done`, the prefixes of claims that share this volume's client).
 */
function intoMount(m: V1VolumeMount, prefix: string, done: readonly string[] = []): V1VolumeMount {
  const under = (v: string, p: string) => v === p || v.startsWith(`${p}/`);
  if (m.subPathExpr !== undefined) {
    const p = escapeEnvRefs(prefix);
    const v = m.subPathExpr;
    if (under(v, p) || done.some((d) => under(v, escapeEnvRefs(d)))) return m;
    return { ...m, subPathExpr: `${p}/${m.subPathExpr}` };
  }
  const sp = m.subPath ?? "";
  if (under(sp, prefix) || done.some((d) => under(sp, d))) return m;
  return { ...m, subPath: joinPath(prefix, sp) };
}

const withPropagation = (m: V1VolumeMount): V1VolumeMount =>
  m.mountPropagation === undefined ? { ...m, mountPropagation: "HostToContainer" } : m;

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
          return iv
            ? withPropagation(
                intoMount(
                  m,
                  iv.subPath,
                  iv.shared?.map((x) => x.subPath),
                ),
              )
            : m;
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
  // Istio injected after us (its webhook ran later): start after its native proxy, or bypass a proxy
  // that starts later, as the first pass does (istioMesh).
  const warnings: string[] = [];
  let containersOut = containers;
  const mesh = istioMesh(pod);
  if (mesh) {
    const ours = (c: V1Container) => sidecarNames.has(c.name) || c.args?.[0] === "write-envs";
    const named = [...sidecarNames];
    if (native && mesh.nativeProxyAt !== undefined && initOut) {
      const proxyAt = initOut.findIndex((c) => c.name === istioProxyName);
      const firstOurs = initOut.findIndex(ours);
      if (firstOurs >= 0 && firstOurs < proxyAt) {
        const rest = initOut.filter((c) => !ours(c));
        const at = rest.findIndex((c) => c.name === istioProxyName) + 1;
        initOut = [...rest.slice(0, at), ...initOut.filter(ours), ...rest.slice(at)];
        changed = true;
        warnings.push(meshPlacedWarning(named));
      }
    } else {
      const gid = (c: V1Container) => (sidecarNames.has(c.name) ? withGid(c, mesh.gid) : c);
      const i2 = initOut?.map(gid);
      const c2 = containersOut.map(gid);
      if (c2.some((c, i) => c !== containersOut[i]) || i2?.some((c, i) => c !== initOut![i])) {
        initOut = i2;
        containersOut = c2;
        changed = true;
        warnings.push(meshBypassWarning(named, mesh.gid));
      }
    }
  }
  if (!changed) return { ok: true, pod, warnings: [] };
  return {
    ok: true,
    pod: {
      ...pod,
      spec: { ...spec, containers: containersOut, ...(initOut ? { initContainers: initOut } : {}) },
    },
    warnings,
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
 * Which claims can share one client: the same Secret in the pod's namespace and the same settings by
 * the domain's hash (what changes the running client: file system, Secret content, mount options,
 * read-only, cache, image, resources...), less the volume's identity and sub-directory. The client
 * mounts the file system's root (or its `subdir`), and each app mount reaches its volume's directory
 * through its own subPath, so the same claim mounted twice, or two volumes of one file system with the
 * same settings (dynamic volumes of one StorageClass), need one client. Read-only is not part of it:
 * a read-only claim served by a read-write client gets read-only mounts (the kubelet's read-only bind).
 * Memoized per settings object.
 */
const shareKeys = new WeakMap<JuiceFSSettings, string>();
function shareKey(settings: JuiceFSSettings, secretName: string): string {
  let k = shareKeys.get(settings);
  if (k === undefined) {
    k = canonicalJson({ ...hashedSettings(settings), volumeId: undefined, readOnly: undefined });
    shareKeys.set(settings, k);
  }
  return `${secretName}\0${k}`;
}

/**
 * Metrics ports: every container of a pod shares its network namespace (and, with hostNetwork, the
 * node's), and a client given an explicit --metrics port that is taken runs without metrics (JuiceFS
 * cmd/mount.go). So each client gets the next port from the base (annotation
 * juicefs.com/sidecar-metrics-port, default 9567) that no container of the pod declares, and on the
 * host network none of this driver's own node ports either. With hostNetwork a declared port is a host
 * port (the API server defaults hostPort to it), so the scheduler keeps pods that need the same port
 * off one node: a clash on the node is then impossible rather than silent.
 */
function metricsPorts(pod: V1Pod): { take: () => number } | string {
  const spec = pod.spec!;
  const raw = pod.metadata?.annotations?.[keys.sidecarMetricsPort];
  let next: number = ports.mountMetrics;
  if (raw !== undefined) {
    const n = typeof raw === "string" && /^\d{1,5}$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
    if (!(n >= 1024 && n <= 65535))
      return `annotation ${keys.sidecarMetricsPort}: ${JSON.stringify(raw)} is not a port from 1024 to 65535 (e.g. "9567")`;
    next = n;
  }
  const used = new Set<number>();
  for (const c of [...(spec.initContainers ?? []), ...spec.containers])
    for (const p of c.ports ?? []) {
      used.add(p.containerPort);
      if (p.hostPort) used.add(p.hostPort);
    }
  if (spec.hostNetwork === true)
    for (const p of [ports.pluginMetrics, ports.nodeHealth, ports.controllerHealth, ports.webhook])
      used.add(p);
  return {
    take: () => {
      while (used.has(next) && next < 65535) next++;
      used.add(next);
      return next;
    },
  };
}

/** Istio's proxy group: its iptables rules (chain ISTIO_OUTPUT) let sockets of this group bypass the proxy. */
export const istioProxyGid = 1337;
const istioProxyName = "istio-proxy";

interface Mesh {
  /** Index of the native istio-proxy in initContainers (restartPolicy Always), if it is one. */
  nativeProxyAt?: number;
  /** The proxy's group (its runAsGroup, else Istio's default). */
  gid: number;
}

/**
 * An Istio sidecar in the pod: `sidecar.istio.io/status` (set by Istio's injector) or an istio-proxy
 * container. Its init step (istio-init or the CNI plugin) redirects every outbound TCP connection to
 * the proxy, so the JuiceFS client reaches its metadata engine and object storage only once the proxy
 * runs, or when its traffic is excluded.
 */
function istioMesh(pod: V1Pod): Mesh | undefined {
  const spec = pod.spec!;
  const init = spec.initContainers ?? [];
  const i = init.findIndex((c) => c.name === istioProxyName);
  const proxy = i >= 0 ? init[i] : spec.containers.find((c) => c.name === istioProxyName);
  if (!proxy && pod.metadata?.annotations?.["sidecar.istio.io/status"] === undefined) return undefined;
  const g = proxy?.securityContext?.runAsGroup;
  const gid = typeof g === "number" && g > 0 ? g : istioProxyGid;
  return i >= 0 && init[i]!.restartPolicy === "Always" ? { nativeProxyAt: i, gid } : { gid };
}

const meshPlacedWarning = (names: string[]) =>
  `Istio: ${names.join(", ")} placed after istio-proxy (a native sidecar): the JuiceFS client starts once the mesh proxy is ready, and its traffic goes through the mesh`;
const meshBypassWarning = (names: string[], gid: number) =>
  `Istio: istio-proxy starts after ${names.join(", ")}, so the JuiceFS client runs with group ${gid} (Istio's proxy group), whose connections Istio's iptables rules do not redirect: its traffic to the metadata engine and object storage bypasses the mesh`;

/** The sidecar's security context with Istio's proxy group (see meshBypassWarning). */
const withGid = (c: V1Container, gid: number): V1Container =>
  c.securityContext?.runAsGroup === gid
    ? c
    : { ...c, securityContext: { ...c.securityContext, runAsGroup: gid } };

/**
 * Native placement: our sidecars (each after its envs writer) go first, or right after a native
 * istio-proxy so the client starts with the mesh up.
 */
function placeNative(init: V1Container[], ours: V1Container[], mesh: Mesh | undefined): V1Container[] {
  if (mesh?.nativeProxyAt === undefined) return [...ours, ...init];
  const at = mesh.nativeProxyAt + 1;
  return [...init.slice(0, at), ...ours, ...init.slice(at)];
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

  // One client per distinct file system and settings: claims that need the same client (the same claim
  // mounted twice, or two volumes of one file system that differ only in sub-directory) share it.
  type Group = { key: string; members: { claim: ClaimPlan; settings: JuiceFSSettings }[] };
  const groups: Group[] = [];
  const byKey = new Map<string, Group>();
  for (const claim of claims) {
    if (!claim.settings || !claim.secretName)
      return { ok: false, message: `${claim.claimId}: settings were not resolved (internal error)` };
    const applied = applyOverrides(claim.settings, res.overrides);
    if (typeof applied === "string") return { ok: false, message: `${claim.claimId}: ${applied}` };
    if (applied.warning && !warnings.includes(applied.warning)) warnings.push(applied.warning);
    const key = shareKey(applied.settings, claim.secretName);
    let g = byKey.get(key);
    if (!g) {
      g = { key, members: [] };
      byKey.set(key, g);
      groups.push(g);
    }
    g.members.push({ claim, settings: applied.settings });
  }
  const maxClients = opts.maxClients ?? defaultMaxClientsPerPod;
  if (groups.length > maxClients) {
    const shown = groups.slice(0, 5).map((g) => g.members[0]!.claim.claimId);
    const more = groups.length > shown.length ? ` and ${groups.length - shown.length} more` : "";
    return {
      ok: false,
      message: `needs ${groups.length} JuiceFS clients (volumes with different file systems or settings: ${shown.join(", ")}${more}); at most ${maxClients} per pod (chart value webhook.sidecar.maxClientsPerPod), as each client is a privileged sidecar with its own memory and CPU. Mount fewer distinct volumes in one pod, use Mount Pod mode (mountMode: pod), or raise the limit`,
    };
  }
  const metrics = metricsPorts(pod);
  if (typeof metrics === "string") return { ok: false, message: metrics };
  const mesh = istioMesh(pod);
  /** Pod volumes served by another volume's client: removed, their mounts moved to that volume. */
  const sharedInto = new Map<
    string,
    { volume: string; prefix: string; readOnly: boolean; volumeId: string; claim: string }
  >();

  for (const group of groups) {
    // The client is read-write when any of its claims is.
    const owner = group.members.find((m) => !m.settings.readOnly) ?? group.members[0]!;
    const { claim, settings } = owner;
    const volumeName = claim.ref.volumeName;
    const name = containerName(taken);
    const metricsPort = metrics.take();
    if (spec.hostNetwork === true)
      warnings.push(
        `hostNetwork: ${name} serves metrics on host port ${metricsPort}, so the scheduler puts at most one pod using that port on a node (annotation ${keys.sidecarMetricsPort} picks another first port)`,
      );
    // The pod volume itself becomes the sidecar's emptyDir, so every app mount keeps its volume name.
    const sidecar = build(settings, {
      secretName: claim.secretName!,
      name,
      mountRoot: sidecarMountRoot,
      volumeName,
      ...(opts.productImage ? { productImage: opts.productImage } : {}),
      ...(metricsPort !== ports.mountMetrics ? { metricsPort } : {}),
    });
    for (const m of group.members)
      if (m.claim.ref.volumeName !== volumeName)
        sharedInto.set(m.claim.ref.volumeName, {
          volume: volumeName,
          prefix: joinPath(sidecar.subPath, m.settings.subPath),
          readOnly: m.settings.readOnly && !settings.readOnly,
          volumeId: m.settings.volumeId,
          claim: m.claim.ref.claimName,
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
    // The global config's block devices use the same volume names.
    if (c.volumeDevices)
      c.volumeDevices = c.volumeDevices.map((d) =>
        renames.has(d.name) ? { ...d, name: renames.get(d.name)! } : d,
      );
    if (sidecar.envsInit) {
      let n = sidecar.envsInit.name;
      for (let i = 2; taken.has(n); i++) n = `${sidecar.envsInit.name.slice(0, 60)}-${i}`;
      taken.add(n);
      envsInits.push({ ...sidecar.envsInit, name: n, volumeMounts: renamed(sidecar.envsInit.volumeMounts) });
    } else envsInits.push(undefined);

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
    recorded[volumeName] = { subPath: prefix, container: name, claim: claim.ref.claimName };
    const into = (ac: V1Container) =>
      editMounts(ac, (m) => {
        if (m.name !== volumeName) return m;
        if (m.subPathExpr) return { ...m, subPathExpr: `${escapeEnvRefs(prefix)}/${m.subPathExpr}` };
        return { ...m, subPath: joinPath(prefix, m.subPath) };
      });
    if (spec.initContainers) spec.initContainers = spec.initContainers.map(into);
    spec.containers = spec.containers.map(into);
  }
  for (const [, to] of sharedInto) {
    const rec = recorded[to.volume]!;
    if (!rec.shared?.some((x) => x.subPath === to.prefix))
      recorded[to.volume] = {
        ...rec,
        shared: [...(rec.shared ?? []), { volumeId: to.volumeId, subPath: to.prefix, claim: to.claim }],
      };
  }
  if (sharedInto.size > 0) {
    const moveShared = (ac: V1Container) =>
      editMounts(ac, (m) => {
        const to = sharedInto.get(m.name);
        if (!to) return m;
        const ro = to.readOnly ? { readOnly: true } : {};
        if (m.subPathExpr)
          return {
            ...m,
            ...ro,
            name: to.volume,
            subPathExpr: `${escapeEnvRefs(to.prefix)}/${m.subPathExpr}`,
          };
        return { ...m, ...ro, name: to.volume, subPath: joinPath(to.prefix, m.subPath) };
      });
    if (spec.initContainers) spec.initContainers = spec.initContainers.map(moveShared);
    spec.containers = spec.containers.map(moveShared);
  }
  // Istio: start after a native proxy, or bypass a proxy that starts later (see istioMesh).
  const sidecarNamesOut = sidecars.map((c) => c.name);
  if (mesh) {
    if (opts.native && mesh.nativeProxyAt !== undefined) warnings.push(meshPlacedWarning(sidecarNamesOut));
    else {
      for (let i = 0; i < sidecars.length; i++) sidecars[i] = withGid(sidecars[i]!, mesh.gid);
      warnings.push(meshBypassWarning(sidecarNamesOut, mesh.gid));
    }
  }
  spec.volumes = [...volumes.filter((v) => !sharedInto.has(v.name)), ...extraVolumes];
  // An envs init container runs to completion before its sidecar starts (init containers run in order).
  const inits = envsInits.filter((c): c is V1Container => c !== undefined);
  if (opts.native)
    spec.initContainers = placeNative(
      spec.initContainers ?? [],
      sidecars.flatMap((c, i) => (envsInits[i] ? [envsInits[i], c] : [c])),
      mesh,
    );
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
