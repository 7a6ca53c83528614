// A kubelet stand-in for one or more node names. It watches the pods bound to its nodes through the
// API (client-node, like any controller), runs each container's command + args as a local process
// (the `juicefs` stand-in first on PATH), reports status (phase, containerStatuses, readiness from
// exec probes), restarts per restartPolicy with back-off, terminates pods on deletion (SIGTERM,
// grace period, SIGKILL, then removes the pod from the API), and keeps each container's output for
// pods/log. Tests can kill a container's process, evict or delete a pod.
//
// What a container "is" here: a process group on this host. There is no image and no mount
// namespace: hostPath volumes are the real host paths, emptyDir/secret/configMap volumes are temp
// folders, and an argument or env value that starts with a volume's mountPath is rewritten to the
// host folder when the two differ. A container without `command` runs no process and stays running
// (like a pause container) until the pod is deleted. PVC/CSI volumes go through `volumePlugin`
// (the e2e suite plugs the CSI node service in there, as a real kubelet would call NodePublishVolume).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { parseQuantity } from "../../driver/juicefs/quantity.ts";
import { projectRoot } from "../../lib/paths.ts";
import type { ApiServer, PodLogRequest } from "./apiserver.ts";
import type { ExecRequest, ExecRun } from "./exec-stream.ts";
import { ApiError, badRequest } from "./store.ts";

// biome-ignore lint/suspicious/noExplicitAny: status objects are plain JSON.
type Json = Record<string, any>;

/** Folder of the stand-in executables (`juicefs`), put first on every container's PATH. */
export const standInsDir = join(projectRoot, "test", "stand-ins");

export interface VolumePlugin {
  /** Makes `volume` (a PVC or CSI volume of `pod`) available at `dir` before the containers start. */
  mount(pod: k8s.V1Pod, volume: k8s.V1Volume, dir: string): Promise<void>;
  /** Tears it down after the containers stopped, before the pod is removed from the API. */
  unmount(pod: k8s.V1Pod, volume: k8s.V1Volume, dir: string): Promise<void>;
}

export interface KubeletOptions {
  /** Path of the kubeconfig to talk to the API server with. */
  kubeconfig: string;
  nodeNames: string[];
  /** When given (an in-process API server), pods/log of these nodes is served from this kubelet. */
  apiServer?: ApiServer;
  /** Folders put first on PATH (default: the stand-ins folder, then Node's own folder). */
  pathPrefix?: string[];
  /** Extra environment of every container process. */
  env?: Record<string, string>;
  /** Multiplies probe periods/delays/timeouts and termination grace periods (default 0.05: 30 s → 1.5 s). */
  timeScale?: number;
  /** Restart back-off: first delay and cap, in ms (default 100 and 2000; a real kubelet uses 10 s and 5 min). */
  backoffMs?: { initial: number; max: number };
  /** Create a Ready Node object for each node name (default true). */
  registerNodes?: boolean;
  volumePlugin?: VolumePlugin;
  /** Where emptyDir/secret volumes and pod folders live (default: a fresh temp dir). */
  rootDir?: string;
  /** Lines of output kept per container instance (default 10000). */
  maxLogLines?: number;
  /**
   * Root only: a container that mounts a PVC/CSI volume runs in its own mount namespace, as under a real
   * runtime, so mount propagation matters (see containerArgv). The root dir becomes a shared mount, as
   * the kubelet's root is on a real node.
   */
  mountNamespaces?: boolean;
  /**
   * Node allocatable (default cpu 64, memory 256Gi). Pods bound to the node whose requests do not fit
   * next to the others are rejected at admission, as the kubelet does.
   */
  allocatable?: { cpu?: string; memory?: string };
}

interface LogLine {
  ts: string;
  text: string;
}

interface ContainerRun {
  spec: k8s.V1Container;
  init: boolean;
  /** Native sidecar: an init container with restartPolicy Always. */
  sidecar: boolean;
  proc: ChildProcess | undefined;
  pid: number | undefined;
  /** True while the container counts as running (process alive, or a pause container). */
  running: boolean;
  startedAt: string | undefined;
  restartCount: number;
  ready: boolean;
  exited: Promise<void> | undefined;
  state: Json;
  lastState: Json;
  logs: LogLine[];
  previousLogs: LogLine[];
  probeTimers: NodeJS.Timeout[];
  backoffTimer: NodeJS.Timeout | undefined;
  backoffMs: number;
  /** No more restarts (pod terminating/evicted, or policy says so). */
  done: boolean;
  env: Record<string, string>;
  /** The startup probe passed (or there is none) for the current instance: status `started`. */
  startupPassed: boolean;
  /** Set by oomKill(): the next exit is reported as the runtime reports a cgroup OOM kill. */
  oomKilled?: boolean;
  /** Started in a mount namespace of its own (containerArgv): pods/exec joins it. */
  ownMountNs?: boolean;
  /** Process groups of pods/exec sessions running in this container (ended with it). */
  execs?: Set<number>;
}

interface PodRun {
  key: string;
  uid: string;
  pod: k8s.V1Pod;
  containers: ContainerRun[];
  init: ContainerRun[];
  dirs: Map<string, string>;
  terminating: boolean;
  evicted: { reason: string; message: string } | undefined;
  startTime: string;
  podIP: string;
  statusQueued: boolean;
  statusChain: Promise<void>;
  finished: Promise<void> | undefined;
  started: boolean;
  failedReason: string | undefined;
}

const nowIso = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const podKey = (p: { metadata?: { namespace?: string; name?: string } }) =>
  `${p.metadata?.namespace}/${p.metadata?.name}`;

/** The kubelet's `$(VAR)` expansion (k8s third_party/forked/golang/expansion): `$$` escapes, unknown names stay as written. */
export function expandVars(input: string, env: Record<string, string>): string {
  let out = "";
  for (let i = 0; i < input.length; i++) {
    const ch = input[i];
    if (ch !== "$" || i + 1 >= input.length) {
      out += ch;
      continue;
    }
    const next = input[i + 1];
    if (next === "$") {
      out += "$";
      i++;
      continue;
    }
    if (next === "(") {
      const end = input.indexOf(")", i + 2);
      if (end < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, end);
      out += Object.hasOwn(env, name) ? env[name] : `$(${name})`;
      i = end;
      continue;
    }
    out += ch;
  }
  return out;
}

/**
 * The kubelet's verifyRunAsNonRoot (pkg/kubelet/kuberuntime/security_context_others.go), called from
 * generateContainerConfig before a container is created: with the effective runAsNonRoot true
 * (container field, else the pod's), a runAsUser of 0 is refused, and without runAsUser the image's
 * user decides. Images here carry no user, which the kubelet reads as root (getImageUser: uid 0), so
 * runAsNonRoot without any runAsUser is refused as "image will run as root". The error becomes
 * CreateContainerConfigError, retried with back-off.
 */
export function runAsNonRootError(pod: k8s.V1Pod, c: k8s.V1Container): string | undefined {
  const psc = pod.spec?.securityContext;
  const csc = c.securityContext;
  const nonRoot = csc?.runAsNonRoot ?? psc?.runAsNonRoot;
  if (!nonRoot) return undefined;
  const user = csc?.runAsUser ?? psc?.runAsUser;
  const who = `(pod: "${pod.metadata?.name}_${pod.metadata?.namespace}(${pod.metadata?.uid ?? ""})", container: ${c.name})`;
  if (user !== undefined)
    return user === 0 ? `container's runAsUser breaks non-root policy ${who}` : undefined;
  return `container has runAsNonRoot and image will run as root ${who}`;
}

export class Kubelet {
  readonly nodeNames: string[];
  private readonly opts: KubeletOptions;
  private readonly kc = new k8s.KubeConfig();
  private readonly core: k8s.CoreV1Api;
  private readonly informers: k8s.ListWatch<k8s.V1Pod>[] = [];
  private readonly pods = new Map<string, PodRun>();
  private readonly rootDir: string;
  private readonly ownsRoot: boolean;
  private stopped = false;
  private sharedRoot = false;
  private ipSeq = 2;
  /** Errors the kubelet hit (API failures, spawn errors), for tests to inspect. */
  readonly errors: string[] = [];
  /** "namespace/pod/container" of every preStop hook that failed (also a FailedPreStopHook event). */
  readonly preStopFailures: string[] = [];
  /** Images whose pull fails, with the runtime's error (failImagePull). */
  private readonly pullFailures = new Map<string, string>();

  constructor(opts: KubeletOptions) {
    this.opts = opts;
    this.nodeNames = opts.nodeNames;
    this.kc.loadFromFile(opts.kubeconfig);
    this.core = this.kc.makeApiClient(k8s.CoreV1Api);
    this.ownsRoot = !opts.rootDir;
    this.rootDir = opts.rootDir ?? mkdtempSync(join(tmpdir(), "kubelet-"));
  }

  private get scale(): number {
    return this.opts.timeScale ?? 0.05;
  }

  async start(): Promise<this> {
    if (this.opts.mountNamespaces) this.shareRoot();
    if (this.opts.registerNodes !== false) for (const n of this.nodeNames) await this.registerNode(n);
    for (const node of this.nodeNames) await this.watchNode(node);
    return this;
  }

  private async watchNode(node: string): Promise<void> {
    this.opts.apiServer?.setLogProvider(node, (_pod, req) => this.podLogs(req));
    this.opts.apiServer?.setExecProvider(node, (pod, req) => this.execIn(pod, req));
    const fieldSelector = `spec.nodeName=${node}`;
    const lw = new k8s.ListWatch<k8s.V1Pod>(
      "/api/v1/pods",
      new k8s.Watch(this.kc),
      () => this.core.listPodForAllNamespaces({ fieldSelector }),
      false,
      undefined,
      fieldSelector,
    );
    lw.on("add", (p) => this.onPod(p));
    lw.on("update", (p) => this.onPod(p));
    lw.on("delete", (p) => this.onPodGone(p));
    lw.on("error", (err) => {
      if (this.stopped) return;
      this.errors.push(`watch ${node}: ${String(err)}`);
      setTimeout(() => {
        if (!this.stopped) void lw.start().catch(() => {});
      }, 200);
    });
    this.informers.push(lw);
    await lw.start();
  }

  /**
   * A kubelet restart with pods running: the containers keep running (the runtime owns them), the
   * kubelet's watches start again from a fresh list, and its volume manager sets every mounted volume
   * up again (for CSI: NodePublishVolume once more, which must be idempotent: KEP-3756, volumes
   * reconstructed from disk are "uncertain" and the volume manager's reconciler mounts them again).
   * Container processes, restart counts and probes are kept, as a real kubelet finds them in the runtime.
   */
  async restart(): Promise<void> {
    const informers = this.informers.splice(0);
    for (const lw of informers) await lw.stop();
    for (const node of this.nodeNames) await this.watchNode(node);
    const plugin = this.opts.volumePlugin;
    if (!plugin) return;
    for (const r of this.pods.values()) {
      if (r.terminating || !r.started) continue;
      for (const v of r.pod.spec?.volumes ?? []) {
        const d = r.dirs.get(v.name);
        if (!d || !(v.persistentVolumeClaim || v.csi || v.ephemeral)) continue;
        try {
          await plugin.mount(r.pod, v, d);
        } catch (e) {
          this.errors.push(`remount ${r.key} ${v.name}: ${(e as Error).message}`);
        }
      }
    }
  }

  private async registerNode(name: string): Promise<void> {
    const body: k8s.V1Node = {
      metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux" } },
      status: {
        conditions: [
          { type: "Ready", status: "True", reason: "KubeletReady", message: "kubelet stand-in is ready" },
        ],
        addresses: [
          { type: "InternalIP", address: "127.0.0.1" },
          { type: "Hostname", address: name },
        ],
        allocatable: { cpu: "64", memory: "256Gi", pods: "1000", ...this.opts.allocatable },
        capacity: { cpu: "64", memory: "256Gi", pods: "1000", ...this.opts.allocatable },
      },
    };
    try {
      await this.core.createNode({ body });
    } catch (e) {
      if ((e as { code?: number }).code !== 409) throw e;
    }
    await this.core
      .patchNodeStatus(
        { name, body: { status: body.status } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      )
      .catch(() => {});
  }

  /** Stops watching and kills every container process (SIGTERM, then SIGKILL after a short wait). Pods stay in the API. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const lw of this.informers) await lw.stop();
    for (const node of this.nodeNames) {
      this.opts.apiServer?.setLogProvider(node, undefined);
      this.opts.apiServer?.setExecProvider(node, undefined);
    }
    for (const r of this.pods.values()) for (const c of [...r.init, ...r.containers]) this.endExecs(c);
    await Promise.all([...this.pods.values()].map((r) => this.killAll(r, 500)));
    for (const r of this.pods.values()) this.clearTimers(r);
    this.pods.clear();
    if (this.sharedRoot) spawnSync("umount", ["-l", this.rootDir]);
    if (this.ownsRoot) rmSync(this.rootDir, { recursive: true, force: true });
  }

  // ---- test controls ----

  /** The pods this kubelet runs now ("namespace/name"). */
  runningPods(): string[] {
    return [...this.pods.keys()];
  }

  /** PID of a container's current process (undefined when not running). */
  pid(namespace: string, name: string, container?: string): number | undefined {
    const r = this.pods.get(`${namespace}/${name}`);
    const c = container ? r?.containers.find((x) => x.spec.name === container) : r?.containers[0];
    return c?.running ? c.pid : undefined;
  }

  /** Kills a container's process (default SIGKILL, like an OOM kill); restartPolicy decides what happens next. */
  kill(namespace: string, name: string, container?: string, signal: NodeJS.Signals = "SIGKILL"): boolean {
    const r = this.pods.get(`${namespace}/${name}`);
    const c = container ? r?.containers.find((x) => x.spec.name === container) : r?.containers[0];
    if (!c?.proc || !c.pid || !c.running) return false;
    try {
      process.kill(-c.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  // ---- doctor scenarios (issue 14): OOM kills, image pull failures, kubelet admission ----

  /**
   * Kills a container as the kernel's OOM killer does (SIGKILL) and reports it as the runtime does:
   * state.terminated reason "OOMKilled", exit code 137 (containerd sets the reason when the cgroup's
   * OOM event fired; k8s.io/cri-api ContainerStatus.Reason). restartPolicy decides what follows.
   */
  oomKill(namespace: string, name: string, container?: string): boolean {
    const r = this.pods.get(`${namespace}/${name}`);
    const c = container
      ? [...(r?.init ?? []), ...(r?.containers ?? [])].find((x) => x.spec.name === container)
      : r?.containers[0];
    if (!c?.proc || !c.pid || !c.running) return false;
    c.oomKilled = true;
    try {
      process.kill(-c.pid, "SIGKILL");
      return true;
    } catch {
      return false;
    }
  }

  /** From now on, pulling `image` fails with `message` (e.g. a registry's "not found"). */
  failImagePull(image: string, message: string): void {
    this.pullFailures.set(image, message);
  }

  /** Evicts a pod: its containers are killed and it ends Failed with reason Evicted (the pod object stays). */
  async evict(
    namespace: string,
    name: string,
    message = "The node was low on resource: memory.",
  ): Promise<void> {
    const r = this.pods.get(`${namespace}/${name}`);
    if (!r) throw new Error(`pod ${namespace}/${name} does not run on ${this.nodeNames.join(",")}`);
    r.evicted = { reason: "Evicted", message };
    for (const c of [...r.init, ...r.containers]) c.done = true;
    await this.killAll(r, 0);
    this.queueStatus(r);
    await r.statusChain;
  }

  /** Deletes a pod through the API (the normal graceful path follows). */
  async deletePod(namespace: string, name: string, gracePeriodSeconds?: number): Promise<void> {
    await this.core.deleteNamespacedPod({
      namespace,
      name,
      ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}),
    });
  }

  /** A container's captured output (current instance, or the previous one). */
  logs(namespace: string, name: string, container?: string, previous = false): string {
    return this.podLogs({ namespace, name, container, previous, timestamps: false });
  }

  // ---- pod lifecycle ----

  private podLogs(req: PodLogRequest): string {
    const r = this.pods.get(`${req.namespace}/${req.name}`);
    if (!r) return "";
    const c = [...r.init, ...r.containers].find((x) => !req.container || x.spec.name === req.container);
    if (!c) return "";
    let lines = req.previous ? c.previousLogs : c.logs;
    if (req.tailLines !== undefined) lines = req.tailLines > 0 ? lines.slice(-req.tailLines) : [];
    let text = lines.map((l) => (req.timestamps ? `${l.ts} ${l.text}\n` : `${l.text}\n`)).join("");
    if (req.limitBytes !== undefined) text = text.slice(0, req.limitBytes);
    return text;
  }

  private onPod(pod: k8s.V1Pod): void {
    if (this.stopped) return;
    const key = podKey(pod);
    const existing = this.pods.get(key);
    if (existing && existing.uid !== pod.metadata?.uid) {
      // Same name, new pod: the old one is gone for good.
      void this.forget(existing);
    }
    let r = this.pods.get(key);
    if (!r) {
      const phase = pod.status?.phase;
      if (phase === "Succeeded" || phase === "Failed") {
        if (pod.metadata?.deletionTimestamp) void this.confirmDeletion(pod);
        return;
      }
      r = this.newRun(pod);
      this.pods.set(key, r);
      const run = r;
      const rejected = pod.metadata?.deletionTimestamp ? undefined : this.admissionFailure(pod);
      if (rejected) {
        run.evicted = rejected;
        for (const c of [...run.init, ...run.containers]) c.done = true;
        this.queueStatus(run);
        return;
      }
      if (pod.metadata?.deletionTimestamp) {
        run.terminating = true;
        run.finished = this.terminate(run);
        return;
      }
      void this.startPod(run).catch((e) => this.errors.push(`start ${key}: ${String(e)}`));
      return;
    }
    r.pod = pod;
    if (pod.metadata?.deletionTimestamp && !r.terminating) {
      r.terminating = true;
      r.finished = this.terminate(r);
    }
  }

  /**
   * The kubelet's resource admission (pkg/kubelet/lifecycle predicate.go): a pod whose requests do not
   * fit into the node's allocatable next to the pods already admitted is rejected: phase Failed, reason
   * `OutOf<resource>`, message "Pod was rejected: Node didn't have enough resource: ..." (kubelet.go
   * rejectPod). Only checked when the test gave `allocatable`.
   */
  private admissionFailure(pod: k8s.V1Pod): { reason: string; message: string } | undefined {
    const alloc = this.opts.allocatable;
    if (!alloc) return undefined;
    const requests = (p: k8s.V1Pod, res: "cpu" | "memory") =>
      (p.spec?.containers ?? []).reduce(
        (n, c) => n + (parseQuantity(c.resources?.requests?.[res] ?? "0") ?? 0),
        0,
      );
    for (const res of ["cpu", "memory"] as const) {
      const capacity = alloc[res] === undefined ? undefined : parseQuantity(alloc[res]!);
      if (capacity === undefined) continue;
      const used = [...this.pods.values()]
        .filter(
          (r) => r.pod.spec?.nodeName === pod.spec?.nodeName && r.uid !== pod.metadata?.uid && !r.evicted,
        )
        .reduce((n, r) => n + requests(r.pod, res), 0);
      const want = requests(pod, res);
      if (want + used > capacity) {
        const fmt = (n: number) => (res === "cpu" ? String(Math.round(n * 1000)) : String(Math.round(n)));
        return {
          reason: `OutOf${res}`,
          message: `Pod was rejected: Node didn't have enough resource: ${res}, requested: ${fmt(want)}, used: ${fmt(used)}, capacity: ${fmt(capacity)}`,
        };
      }
    }
    return undefined;
  }

  private onPodGone(pod: k8s.V1Pod): void {
    const r = this.pods.get(podKey(pod));
    if (r && r.uid === pod.metadata?.uid) void this.forget(r);
  }

  /** The pod was removed from the API (force deletion): stop everything at once. */
  private async forget(r: PodRun): Promise<void> {
    r.terminating = true;
    for (const c of [...r.init, ...r.containers]) c.done = true;
    this.clearTimers(r);
    if (this.pods.get(r.key) === r) this.pods.delete(r.key);
    await this.killAll(r, 0);
    await this.unmountVolumes(r);
  }

  private newRun(pod: k8s.V1Pod): PodRun {
    const mk = (spec: k8s.V1Container, init: boolean): ContainerRun => ({
      spec,
      init,
      sidecar: init && (spec as Json).restartPolicy === "Always",
      proc: undefined,
      pid: undefined,
      running: false,
      startedAt: undefined,
      restartCount: 0,
      ready: false,
      exited: undefined,
      state: { waiting: { reason: "ContainerCreating" } },
      lastState: {},
      logs: [],
      previousLogs: [],
      probeTimers: [],
      backoffTimer: undefined,
      backoffMs: this.opts.backoffMs?.initial ?? 100,
      done: false,
      env: {},
      startupPassed: false,
    });
    const n = this.ipSeq++;
    return {
      key: podKey(pod),
      uid: pod.metadata!.uid!,
      pod,
      containers: (pod.spec?.containers ?? []).map((c) => mk(c, false)),
      init: (pod.spec?.initContainers ?? []).map((c) => mk(c, true)),
      dirs: new Map(),
      terminating: false,
      evicted: undefined,
      startTime: nowIso(),
      podIP: `10.244.${(n >> 8) & 255}.${n & 255}`,
      statusQueued: false,
      statusChain: Promise.resolve(),
      finished: undefined,
      started: false,
      failedReason: undefined,
    };
  }

  private async startPod(r: PodRun): Promise<void> {
    this.queueStatus(r);
    try {
      await this.prepareVolumes(r);
    } catch (e) {
      r.failedReason = `MountVolume failed: ${(e as Error).message}`;
      this.errors.push(`${r.key}: ${r.failedReason}`);
      for (const c of [...r.init, ...r.containers])
        c.state = { waiting: { reason: "ContainerCreating", message: r.failedReason } };
      this.queueStatus(r);
      return;
    }
    for (const c of r.init) {
      if (r.terminating) return;
      await this.startContainer(r, c);
      if (c.sidecar) {
        await this.waitSidecarStarted(r, c);
        continue;
      }
      // A regular init container must finish successfully (restarted on failure unless policy Never).
      while (!r.terminating) {
        await c.exited;
        if (c.state.terminated?.exitCode === 0) break;
        if (r.pod.spec?.restartPolicy === "Never") {
          for (const x of r.containers) x.done = true;
          this.queueStatus(r);
          return;
        }
        await sleep(c.backoffMs);
        c.backoffMs = Math.min(c.backoffMs * 2, this.opts.backoffMs?.max ?? 2000);
        if (r.terminating) return;
        c.restartCount++;
        await this.startContainer(r, c);
      }
    }
    r.started = true;
    for (const c of r.containers) if (!r.terminating) await this.startContainer(r, c);
    this.queueStatus(r);
  }

  private async prepareVolumes(r: PodRun): Promise<void> {
    const podDir = join(this.rootDir, "pods", r.uid);
    for (const v of r.pod.spec?.volumes ?? []) {
      if (v.hostPath) {
        const type = v.hostPath.type ?? "";
        if (type === "" || type === "DirectoryOrCreate") mkdirSync(v.hostPath.path, { recursive: true });
        r.dirs.set(v.name, v.hostPath.path);
      } else if (v.emptyDir) {
        const d = join(podDir, "volumes", "empty-dir", v.name);
        mkdirSync(d, { recursive: true });
        r.dirs.set(v.name, d);
      } else if (v.secret || v.configMap) {
        const d = join(podDir, "volumes", v.secret ? "secret" : "configmap", v.name);
        mkdirSync(d, { recursive: true });
        const ns = r.pod.metadata!.namespace!;
        let data: Record<string, string> = {};
        if (v.secret) {
          const s = await this.core
            .readNamespacedSecret({ namespace: ns, name: v.secret.secretName! })
            .catch((e) => {
              if (v.secret?.optional) return undefined;
              throw e;
            });
          for (const [k, val] of Object.entries(s?.data ?? {}))
            data[k] = Buffer.from(val, "base64").toString("utf8");
        } else {
          const cm = await this.core
            .readNamespacedConfigMap({ namespace: ns, name: v.configMap!.name! })
            .catch((e) => {
              if (v.configMap?.optional) return undefined;
              throw e;
            });
          data = { ...(cm?.data ?? {}) };
        }
        const items = (v.secret ?? v.configMap)!.items;
        const files = items ? items.map((i) => [i.path, data[i.key]] as const) : Object.entries(data);
        for (const [p, content] of files) {
          if (content === undefined) continue;
          mkdirSync(dirname(join(d, p)), { recursive: true });
          writeFileSync(join(d, p), content);
        }
        r.dirs.set(v.name, d);
      } else if (v.persistentVolumeClaim || v.csi || v.ephemeral) {
        // As the kubelet's CSI plugin: a claim's directory is named after its PersistentVolume
        // (the volume spec name), an inline CSI volume's after the pod volume.
        let specName = v.name;
        const claim =
          v.persistentVolumeClaim?.claimName ??
          (v.ephemeral ? `${r.pod.metadata!.name}-${v.name}` : undefined);
        if (claim) {
          const pvc = await this.core
            .readNamespacedPersistentVolumeClaim({ namespace: r.pod.metadata!.namespace!, name: claim })
            .catch(() => undefined);
          if (pvc?.spec?.volumeName) specName = pvc.spec.volumeName;
        }
        const d = join(podDir, "volumes", "kubernetes.io~csi", specName, "mount");
        mkdirSync(d, { recursive: true });
        if (!this.opts.volumePlugin)
          throw new Error(`volume ${v.name}: no volume plugin for PVC/CSI volumes`);
        try {
          await this.opts.volumePlugin.mount(r.pod, v, d);
        } catch (e) {
          // As the kubelet's operation generator: a FailedMount Warning event on the pod, naming the
          // volume (`MountVolume.SetUp failed for volume "<name>" : <error>`).
          void this.podEvent(
            r,
            "FailedMount",
            `MountVolume.SetUp failed for volume "${v.name}" : ${(e as Error).message}`,
          );
          throw e;
        }
        r.dirs.set(v.name, d);
      }
    }
  }

  private async unmountVolumes(r: PodRun): Promise<void> {
    const plugin = this.opts.volumePlugin;
    for (const v of r.pod.spec?.volumes ?? []) {
      const d = r.dirs.get(v.name);
      if (!d || !plugin || !(v.persistentVolumeClaim || v.csi || v.ephemeral)) continue;
      try {
        await plugin.unmount(r.pod, v, d);
        r.dirs.delete(v.name);
      } catch (e) {
        this.errors.push(`unmount ${r.key} ${v.name}: ${(e as Error).message}`);
      }
    }
    rmSync(join(this.rootDir, "pods", r.uid), { recursive: true, force: true });
  }

  /** The root dir as a shared mount (rshared, like /var/lib/kubelet): volume mounts made below it propagate. */
  private shareRoot(): void {
    if (process.getuid?.() !== 0) return;
    mkdirSync(this.rootDir, { recursive: true });
    if (spawnSync("mount", ["--bind", this.rootDir, this.rootDir]).status !== 0) return;
    this.sharedRoot = spawnSync("mount", ["--make-rshared", this.rootDir]).status === 0;
  }

  /**
   * With mountNamespaces, a container that mounts a PVC/CSI volume starts in a mount namespace of its own
   * (unshare execs the command: same pid). It sees the volume's mount as it was when it started; a mount
   * made on the host later (a target re-bound after a client restart) reaches it only with
   * `mountPropagation: HostToContainer` or `Bidirectional` (a slave copy of the shared kubelet root),
   * never with the default None (a private copy) — the runtime's rprivate/rslave bind of the volume.
   * One namespace per container, so one propagation: private as soon as one such mount lacks it.
   */
  private containerArgv(r: PodRun, c: ContainerRun, argv: string[]): string[] {
    if (!this.sharedRoot || argv.length === 0) return argv;
    const volumes = new Set(
      (r.pod.spec?.volumes ?? [])
        .filter((v) => v.persistentVolumeClaim || v.csi || v.ephemeral)
        .map((v) => v.name),
    );
    const mounts = (c.spec.volumeMounts ?? []).filter((m) => volumes.has(m.name));
    if (mounts.length === 0) return argv;
    const follows = mounts.every(
      (m) => m.mountPropagation === "HostToContainer" || m.mountPropagation === "Bidirectional",
    );
    return ["unshare", "--mount", "--propagation", follows ? "slave" : "private", "--", ...argv];
  }

  /** Rewrites a container path to the host folder of the volume mounted there (see the header). */
  private hostPathOf(r: PodRun, c: k8s.V1Container, s: string): string {
    for (const m of c.volumeMounts ?? []) {
      const host = r.dirs.get(m.name);
      if (!host) continue;
      const inner = m.subPath ? join(host, m.subPath) : host;
      if (inner === m.mountPath) continue;
      if (s === m.mountPath) return inner;
      if (s.startsWith(`${m.mountPath}/`)) return inner + s.slice(m.mountPath.length);
    }
    return s;
  }

  private async resolveEnv(r: PodRun, c: k8s.V1Container): Promise<Record<string, string>> {
    const ns = r.pod.metadata!.namespace!;
    const env: Record<string, string> = {};
    const secrets = new Map<string, Record<string, string> | undefined>();
    const configMaps = new Map<string, Record<string, string> | undefined>();
    const secret = async (name: string) => {
      if (!secrets.has(name)) {
        const s = await this.core.readNamespacedSecret({ namespace: ns, name }).catch(() => undefined);
        secrets.set(
          name,
          s
            ? Object.fromEntries(
                Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
              )
            : undefined,
        );
      }
      return secrets.get(name);
    };
    const configMap = async (name: string) => {
      if (!configMaps.has(name)) {
        const cm = await this.core.readNamespacedConfigMap({ namespace: ns, name }).catch(() => undefined);
        configMaps.set(name, cm ? { ...(cm.data ?? {}) } : undefined);
      }
      return configMaps.get(name);
    };
    for (const from of c.envFrom ?? []) {
      const prefix = from.prefix ?? "";
      if (from.secretRef) {
        const data = await secret(from.secretRef.name!);
        if (!data && !from.secretRef.optional) throw new Error(`secret "${from.secretRef.name}" not found`);
        for (const [k, v] of Object.entries(data ?? {})) env[prefix + k] = v;
      }
      if (from.configMapRef) {
        const data = await configMap(from.configMapRef.name!);
        if (!data && !from.configMapRef.optional)
          throw new Error(`configmap "${from.configMapRef.name}" not found`);
        for (const [k, v] of Object.entries(data ?? {})) env[prefix + k] = v;
      }
    }
    const pod = r.pod;
    for (const e of c.env ?? []) {
      if (e.value !== undefined) {
        env[e.name] = expandVars(this.hostPathOf(r, c, e.value), env);
        continue;
      }
      const vf = e.valueFrom;
      if (!vf) {
        env[e.name] = "";
        continue;
      }
      if (vf.secretKeyRef) {
        const data = await secret(vf.secretKeyRef.name!);
        const v = data?.[vf.secretKeyRef.key];
        if (v === undefined) {
          if (vf.secretKeyRef.optional) continue;
          throw new Error(
            data
              ? `couldn't find key ${vf.secretKeyRef.key} in Secret ${ns}/${vf.secretKeyRef.name}`
              : `secret "${vf.secretKeyRef.name}" not found`,
          );
        }
        env[e.name] = v;
      } else if (vf.configMapKeyRef) {
        const data = await configMap(vf.configMapKeyRef.name!);
        const v = data?.[vf.configMapKeyRef.key];
        if (v === undefined) {
          if (vf.configMapKeyRef.optional) continue;
          throw new Error(
            data
              ? `couldn't find key ${vf.configMapKeyRef.key} in ConfigMap ${ns}/${vf.configMapKeyRef.name}`
              : `configmap "${vf.configMapKeyRef.name}" not found`,
          );
        }
        env[e.name] = v;
      } else if (vf.fieldRef) {
        const path = vf.fieldRef.fieldPath;
        const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
        env[e.name] = m
          ? ((pod.metadata as Json)?.[m[1]!]?.[m[2]!] ?? "")
          : ({
              "metadata.name": pod.metadata?.name,
              "metadata.namespace": pod.metadata?.namespace,
              "metadata.uid": pod.metadata?.uid,
              "spec.nodeName": pod.spec?.nodeName,
              "spec.serviceAccountName": pod.spec?.serviceAccountName,
              "status.podIP": r.podIP,
              "status.hostIP": "127.0.0.1",
            }[path] ?? "");
      } else if (vf.resourceFieldRef) {
        const [kind, res] = vf.resourceFieldRef.resource.split(".") as ["limits" | "requests", string];
        env[e.name] = String((c.resources?.[kind] as Json | undefined)?.[res] ?? "0");
      }
    }
    return env;
  }

  private processEnv(r: PodRun, env: Record<string, string>): NodeJS.ProcessEnv {
    const prefix = this.opts.pathPrefix ?? [standInsDir, dirname(process.execPath)];
    return {
      PATH: [...prefix, process.env.PATH ?? "/usr/bin:/bin"].join(":"),
      HOME: "/root",
      HOSTNAME: r.pod.metadata!.name!,
      ...this.opts.env,
      ...env,
    };
  }

  private async startContainer(r: PodRun, c: ContainerRun): Promise<void> {
    if (r.terminating || c.done || this.stopped) return;
    const pullError = this.pullFailures.get(c.spec.image ?? "");
    if (pullError !== undefined) {
      this.imagePullFailed(r, c, pullError);
      return;
    }
    let env: Record<string, string>;
    try {
      const nonRoot = runAsNonRootError(r.pod, c.spec);
      if (nonRoot) throw new Error(nonRoot);
      env = await this.resolveEnv(r, c.spec);
    } catch (e) {
      // As the kubelet: CreateContainerConfigError, retried.
      c.state = { waiting: { reason: "CreateContainerConfigError", message: (e as Error).message } };
      this.queueStatus(r);
      let resolveExit!: () => void;
      c.exited = new Promise<void>((res) => {
        resolveExit = res;
      });
      c.backoffTimer = setTimeout(() => {
        c.backoffTimer = undefined;
        resolveExit();
        void this.startContainer(r, c);
      }, c.backoffMs);
      return;
    }
    c.env = env;
    const argv = this.containerArgv(
      r,
      c,
      [...(c.spec.command ?? []), ...(c.spec.args ?? [])].map((a) =>
        expandVars(this.hostPathOf(r, c.spec, a), env),
      ),
    );
    c.ownMountNs = argv[0] === "unshare" && (c.spec.command ?? []).length > 0;
    if (c.previousLogs !== c.logs && c.startedAt) c.previousLogs = c.logs;
    c.logs = [];
    c.startedAt = nowIso();
    if ((c.spec.command ?? []).length === 0) {
      // No command: a pause container. It runs until the pod goes away.
      c.proc = undefined;
      c.pid = undefined;
      c.running = true;
      c.state = { running: { startedAt: c.startedAt } };
      c.exited = new Promise<void>(() => {});
      await this.afterStart(r, c);
      return;
    }
    let proc: ChildProcess;
    try {
      proc = spawn(argv[0]!, argv.slice(1), {
        env: this.processEnv(r, env),
        cwd: c.spec.workingDir ? this.hostPathOf(r, c.spec, c.spec.workingDir) : "/",
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (e) {
      this.containerFailed(r, c, `StartError`, (e as Error).message);
      return;
    }
    c.proc = proc;
    c.pid = proc.pid;
    c.running = true;
    c.state = { running: { startedAt: c.startedAt } };
    const max = this.opts.maxLogLines ?? 10_000;
    const capture = (stream: NodeJS.ReadableStream) => {
      let buf = "";
      stream.setEncoding("utf8");
      stream.on("data", (d: string) => {
        buf += d;
        const lines = buf.split("\n");
        buf = lines.pop()!;
        for (const text of lines) c.logs.push({ ts: new Date().toISOString(), text });
        if (c.logs.length > max) c.logs.splice(0, c.logs.length - max);
      });
      stream.on("end", () => {
        if (buf) c.logs.push({ ts: new Date().toISOString(), text: buf });
        buf = "";
      });
    };
    capture(proc.stdout!);
    capture(proc.stderr!);
    let spawnError: string | undefined;
    c.exited = new Promise<void>((resolve) => {
      proc.on("error", (e) => {
        spawnError = e.message;
      });
      proc.on("close", (code, signal) => {
        c.running = false;
        this.endExecs(c);
        c.proc = undefined;
        c.ready = false;
        for (const t of c.probeTimers) clearTimeout(t);
        c.probeTimers = [];
        const exitCode = code ?? (signal ? 128 + (signalNumbers[signal] ?? 9) : 1);
        c.state = {
          terminated: {
            exitCode,
            reason: spawnError
              ? "StartError"
              : c.oomKilled
                ? "OOMKilled"
                : exitCode === 0
                  ? "Completed"
                  : "Error",
            ...(spawnError ? { message: spawnError } : {}),
            ...(signal ? { signal: signalNumbers[signal] ?? 9 } : {}),
            startedAt: c.startedAt,
            finishedAt: nowIso(),
          },
        };
        c.oomKilled = false;
        resolve();
        this.afterExit(r, c, exitCode);
      });
    });
    await this.afterStart(r, c);
  }

  /**
   * As the kubelet's image manager (pkg/kubelet/images): the first failure is waiting reason
   * ErrImagePull with a "Failed" event `Failed to pull image "<image>": <error>`; retries back off
   * with reason ImagePullBackOff, message and "BackOff" event `Back-off pulling image "<image>"`.
   * The pod stays Pending.
   */
  private imagePullFailed(r: PodRun, c: ContainerRun, error: string): void {
    const image = c.spec.image ?? "";
    const first =
      c.state.waiting?.reason !== "ErrImagePull" && c.state.waiting?.reason !== "ImagePullBackOff";
    const backOff = !first && c.state.waiting?.reason === "ErrImagePull";
    c.state = backOff
      ? { waiting: { reason: "ImagePullBackOff", message: `Back-off pulling image "${image}"` } }
      : { waiting: { reason: "ErrImagePull", message: error } };
    this.queueStatus(r);
    void this.podEvent(
      r,
      backOff ? "BackOff" : "Failed",
      backOff ? `Back-off pulling image "${image}"` : `Failed to pull image "${image}": ${error}`,
      `spec.${c.init ? "initContainers" : "containers"}{${c.spec.name}}`,
    );
    let resolveExit!: () => void;
    c.exited = new Promise<void>((res) => {
      resolveExit = res;
    });
    c.backoffTimer = setTimeout(() => {
      c.backoffTimer = undefined;
      resolveExit();
      if (c.state.waiting?.reason === "ErrImagePull") {
        // The back-off phase between two pulls.
        this.imagePullFailed(r, c, error);
        return;
      }
      c.state = { waiting: { reason: "ErrImagePull", message: error } };
      void this.startContainer(r, c);
    }, c.backoffMs);
    // Pulls back off like restarts (the kubelet's image back-off doubles up to its cap).
    c.backoffMs = Math.min(c.backoffMs * 2, this.opts.backoffMs?.max ?? 2000);
  }

  /** A core/v1 Event about a pod, as the kubelet writes them (source component kubelet, host = node). */
  private async podEvent(r: PodRun, reason: string, message: string, fieldPath?: string): Promise<void> {
    const pod = r.pod;
    const now = nowIso();
    try {
      await this.core.createNamespacedEvent({
        namespace: pod.metadata!.namespace!,
        body: {
          metadata: { generateName: `${pod.metadata!.name}.` },
          involvedObject: {
            kind: "Pod",
            apiVersion: "v1",
            namespace: pod.metadata!.namespace!,
            name: pod.metadata!.name!,
            uid: r.uid,
            ...(fieldPath ? { fieldPath } : {}),
          },
          reason,
          message,
          type: "Warning",
          source: { component: "kubelet", host: pod.spec?.nodeName ?? "" },
          firstTimestamp: now as unknown as Date,
          lastTimestamp: now as unknown as Date,
          count: 1,
        },
      });
    } catch (e) {
      if (!this.stopped) this.errors.push(`event ${r.key}: ${String(e)}`);
    }
  }

  private containerFailed(r: PodRun, c: ContainerRun, reason: string, message: string): void {
    c.running = false;
    c.state = { terminated: { exitCode: 128, reason, message, finishedAt: nowIso() } };
    c.exited = Promise.resolve();
    this.afterExit(r, c, 128);
  }

  /**
   * After the runtime started the container, as startContainer does (pkg/kubelet/kuberuntime/
   * kuberuntime_container.go, "Step 4: execute the post start hook"): the postStart hook runs
   * synchronously, so the kubelet starts the pod's next container only once it returned (SyncPod
   * starts containers one at a time). A failed hook kills the container (reason FailedPostStartHook)
   * and startContainer returns ErrPostStartHook; SyncPod's loop ignores that error and goes on to
   * the next container, and the restart policy decides about this one. Then the probes start.
   */
  private async afterStart(r: PodRun, c: ContainerRun): Promise<void> {
    this.queueStatus(r);
    c.startupPassed = false;
    const hook = c.spec.lifecycle?.postStart?.exec?.command;
    if (hook?.length) {
      const ok = await this.exec(r, c, hook, 30_000);
      if (!ok) {
        if (c.running && c.pid) {
          c.logs.push({ ts: new Date().toISOString(), text: "FailedPostStartHook" });
          try {
            process.kill(-c.pid, "SIGKILL");
          } catch {}
        }
        return;
      }
    }
    void this.startupThenProbes(r, c);
  }

  /**
   * The startup probe first (prober: liveness and readiness wait until it succeeded); failureThreshold
   * failures kill the container, as a failed liveness probe does. Without one the container counts
   * as started at once. A native sidecar's started state is what lets the next init container (and
   * the app) start; see waitSidecarStarted.
   */
  private async startupThenProbes(r: PodRun, c: ContainerRun): Promise<void> {
    const probe = c.spec.startupProbe;
    if (probe) {
      const instance = c.startedAt;
      const cmd = probe.exec?.command;
      const period = Math.max(20, (probe.periodSeconds ?? 10) * 1000 * this.scale);
      const timeout = Math.max(100, (probe.timeoutSeconds ?? 1) * 1000 * Math.max(this.scale, 0.5));
      await sleep((probe.initialDelaySeconds ?? 0) * 1000 * this.scale);
      let fails = 0;
      for (;;) {
        if (!c.running || r.terminating || c.startedAt !== instance) return;
        const ok = cmd?.length ? await this.exec(r, c, cmd, timeout) : true;
        if (!c.running || c.startedAt !== instance) return;
        if (ok) break;
        if (++fails >= (probe.failureThreshold ?? 3)) {
          c.logs.push({
            ts: new Date().toISOString(),
            text: "Startup probe failed; the container will be restarted",
          });
          try {
            if (c.pid) process.kill(-c.pid, "SIGKILL");
          } catch {}
          return;
        }
        await sleep(period);
      }
    }
    c.startupPassed = true;
    this.startProbes(r, c);
  }

  /**
   * A native sidecar holds the next init container until it is started (kuberuntime_manager.go
   * computeInitContainerActions: a restartable init container that is running but not yet started,
   * i.e. its startup probe has not passed, is waited for). A sidecar that exits meanwhile is restarted
   * (restartPolicy Always) and waited for again.
   */
  private async waitSidecarStarted(r: PodRun, c: ContainerRun): Promise<void> {
    while (!r.terminating && !this.stopped && !(c.running && c.startupPassed)) await sleep(20);
  }

  /**
   * When every regular container has terminated and the pod will not restart them (restartPolicy
   * Never/OnFailure and all exited as the policy allows), the kubelet stops the native sidecars, last
   * one first (kuberuntime_manager.go computePodActions kills restartable init containers once no
   * regular container will run again; kuberuntime_termination_order.go stops sidecars in reverse
   * order): this is how a Job's pod completes with sidecars.
   */
  private async stopSidecarsAfterApps(r: PodRun): Promise<void> {
    if (r.terminating || !r.containers.every((c) => c.done && !c.running)) return;
    const grace = (r.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000 * this.scale;
    for (const c of [...r.init].reverse()) {
      if (!c.sidecar) continue;
      c.done = true;
      if (c.backoffTimer) clearTimeout(c.backoffTimer);
      if (!c.running || !c.pid) {
        c.running = false;
        continue;
      }
      try {
        process.kill(-c.pid, "SIGTERM");
      } catch {}
      const t = sleep(Math.max(grace, 1)).then(() => "timeout" as const);
      if ((await Promise.race([c.exited, t])) === "timeout")
        try {
          process.kill(-c.pid, "SIGKILL");
        } catch {}
      await c.exited;
    }
    this.queueStatus(r);
  }

  private startProbes(r: PodRun, c: ContainerRun): void {
    const readiness = c.spec.readinessProbe;
    if (!readiness) {
      c.ready = c.running && (!c.init || c.sidecar);
      this.queueStatus(r);
    } else this.runProbe(r, c, readiness, "readiness");
    if (c.spec.livenessProbe) this.runProbe(r, c, c.spec.livenessProbe, "liveness");
  }

  private runProbe(r: PodRun, c: ContainerRun, probe: k8s.V1Probe, kind: "readiness" | "liveness"): void {
    const cmd = probe.exec?.command;
    const period = Math.max(20, (probe.periodSeconds ?? 10) * 1000 * this.scale);
    const timeout = Math.max(100, (probe.timeoutSeconds ?? 1) * 1000 * Math.max(this.scale, 0.5));
    const initial = (probe.initialDelaySeconds ?? 0) * 1000 * this.scale;
    const failureThreshold = probe.failureThreshold ?? 3;
    const successThreshold = probe.successThreshold ?? 1;
    let fails = 0;
    let oks = 0;
    const instance = c.startedAt;
    const tick = async () => {
      if (!c.running || r.terminating || c.startedAt !== instance) return;
      // Only exec probes run; httpGet/tcpSocket probes succeed (there is no pod network here).
      const ok = cmd?.length ? await this.exec(r, c, cmd, timeout) : true;
      if (!c.running || c.startedAt !== instance) return;
      if (ok) {
        fails = 0;
        oks++;
      } else {
        oks = 0;
        fails++;
      }
      if (kind === "readiness") {
        const ready = ok
          ? oks >= successThreshold
            ? true
            : c.ready
          : fails >= failureThreshold
            ? false
            : c.ready;
        if (ready !== c.ready) {
          c.ready = ready;
          this.queueStatus(r);
        }
      } else if (fails >= failureThreshold && c.pid) {
        c.logs.push({
          ts: new Date().toISOString(),
          text: "Liveness probe failed; the container will be restarted",
        });
        try {
          process.kill(-c.pid, "SIGKILL");
        } catch {}
        return;
      }
      c.probeTimers.push(setTimeout(tick, period));
    };
    c.probeTimers.push(setTimeout(tick, initial));
  }

  /** Runs a probe/hook command with the container's environment; true when it exits 0 within the timeout. */
  private exec(r: PodRun, c: ContainerRun, command: string[], timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const argv = command.map((a) => this.hostPathOf(r, c.spec, a));
      let p: ChildProcess;
      try {
        p = spawn(argv[0]!, argv.slice(1), {
          env: this.processEnv(r, c.env),
          stdio: "ignore",
          detached: true,
        });
      } catch {
        resolve(false);
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-p.pid!, "SIGKILL");
        } catch {}
        resolve(false);
      }, timeoutMs);
      p.on("error", () => {
        clearTimeout(timer);
        resolve(false);
      });
      p.on("close", (code) => {
        clearTimeout(timer);
        resolve(code === 0);
      });
    });
  }

  // ---- pods/exec (issue 14: cache warm-up runs `juicefs warmup` in a client container) ----

  /**
   * pods/exec in a running container, as the runtime runs it: the argv as given (no shell), with the
   * container's environment, working directory and (with mountNamespaces) its mount namespace, paths
   * under the container's volume mounts rewritten to their host folders (see the header). With a TTY
   * the command gets a pseudo-terminal (util-linux script(1)), so it sees isatty() and stdout and
   * stderr arrive merged. Errors before the session starts are the API server's 400 answers.
   */
  private execIn(pod: Json, req: ExecRequest): ExecRun {
    const r = this.pods.get(`${req.namespace}/${req.name}`);
    const c =
      r && r.uid === pod.metadata?.uid
        ? [...r.init, ...r.containers].find((x) => x.spec.name === req.container)
        : undefined;
    if (!r || !c?.running)
      throw badRequest(`unable to upgrade connection: container not found ("${req.container}")`);
    const env = this.processEnv(r, c.env);
    let argv = req.command.map((a) => this.hostPathOf(r, c.spec, a));
    const exe = argv[0]!;
    if (!exe.includes("/") && !onPath(exe, env.PATH ?? ""))
      throw new ApiError(
        500,
        "InternalError",
        `Internal error occurred: error executing command in container: OCI runtime exec failed: exec failed: unable to start container process: exec: "${exe}": executable file not found in $PATH: unknown`,
      );
    if (c.ownMountNs && c.pid) argv = ["nsenter", "--target", String(c.pid), "--mount", "--", ...argv];
    // script(1) takes a command line; test-only quoting of an argv we were given, never user input to a product shell.
    if (req.tty)
      argv = ["script", "--quiet", "--return", "--command", argv.map(shellQuote).join(" "), "/dev/null"];
    const cwd = c.spec.workingDir ? this.hostPathOf(r, c.spec, c.spec.workingDir) : "/";
    return (streams) =>
      new Promise<number>((resolve, reject) => {
        let proc: ChildProcess;
        try {
          proc = spawn(argv[0]!, argv.slice(1), {
            env,
            cwd,
            detached: true,
            stdio: [req.stdin ? "pipe" : "ignore", "pipe", "pipe"],
          });
        } catch (e) {
          reject(e);
          return;
        }
        const pid = proc.pid;
        c.execs ??= new Set();
        if (pid) c.execs.add(pid);
        proc.stdout!.on("data", (d: Buffer) => streams.stdout(d));
        proc.stderr!.on("data", (d: Buffer) => (req.tty ? streams.stdout(d) : streams.stderr(d)));
        if (proc.stdin) {
          proc.stdin.on("error", () => {});
          streams.onStdin((d) => proc.stdin!.write(d));
          streams.onStdinEnd(() => proc.stdin!.end());
        }
        // A terminal that goes away hangs its session up; without one the command runs on, as under CRI.
        void streams.clientGone.then(() => {
          if (req.tty && pid && c.execs?.has(pid))
            try {
              process.kill(-pid, "SIGHUP");
            } catch {}
        });
        proc.on("error", (e) => reject(e));
        proc.on("close", (code, signal) => {
          if (pid) c.execs?.delete(pid);
          resolve(code ?? 128 + (signalNumbers[signal ?? "SIGKILL"] ?? 9));
        });
      });
  }

  /** A container that stops takes its exec sessions with it. */
  private endExecs(c: ContainerRun): void {
    for (const pid of c.execs ?? [])
      try {
        process.kill(-pid, "SIGKILL");
      } catch {}
    c.execs?.clear();
  }

  private afterExit(r: PodRun, c: ContainerRun, exitCode: number): void {
    const policy = c.sidecar
      ? "Always"
      : c.init
        ? r.pod.spec?.restartPolicy === "Never"
          ? "Never"
          : "OnFailure"
        : (r.pod.spec?.restartPolicy ?? "Always");
    const restart =
      !c.done &&
      !r.terminating &&
      !this.stopped &&
      !r.evicted &&
      (policy === "Always" || (policy === "OnFailure" && exitCode !== 0));
    if (c.init && !c.sidecar) {
      // startPod drives regular init containers.
      this.queueStatus(r);
      return;
    }
    if (!restart) {
      c.done = true;
      this.queueStatus(r);
      if (!c.init) void this.stopSidecarsAfterApps(r);
      return;
    }
    if (c.state.terminated) c.lastState = { terminated: c.state.terminated };
    c.state = {
      waiting: {
        reason: "CrashLoopBackOff",
        message: `back-off ${c.backoffMs}ms restarting failed container=${c.spec.name} pod=${r.pod.metadata?.name}`,
      },
    };
    this.queueStatus(r);
    const ranFor = c.startedAt ? Date.now() - Date.parse(c.startedAt) : 0;
    if (ranFor > 10_000) c.backoffMs = this.opts.backoffMs?.initial ?? 100;
    const delay = c.backoffMs;
    c.backoffMs = Math.min(c.backoffMs * 2, this.opts.backoffMs?.max ?? 2000);
    c.backoffTimer = setTimeout(() => {
      c.backoffTimer = undefined;
      if (r.terminating || c.done || this.stopped) return;
      c.restartCount++;
      void this.startContainer(r, c);
    }, delay);
  }

  private clearTimers(r: PodRun): void {
    for (const c of [...r.init, ...r.containers]) {
      for (const t of c.probeTimers) clearTimeout(t);
      c.probeTimers = [];
      if (c.backoffTimer) clearTimeout(c.backoffTimer);
      c.backoffTimer = undefined;
    }
  }

  /** SIGTERM to every container process group, SIGKILL after `graceMs`; resolves when all exited. */
  private async killAll(r: PodRun, graceMs: number): Promise<void> {
    const all = [...r.containers, ...r.init];
    for (const c of all) {
      c.done = true;
      if (!c.proc) {
        if (c.running) {
          c.running = false;
          c.ready = false;
          c.state = {
            terminated: { exitCode: 0, reason: "Completed", startedAt: c.startedAt, finishedAt: nowIso() },
          };
        }
      }
    }
    const live = all.filter((c) => c.proc && c.pid);
    for (const c of live)
      try {
        process.kill(-c.pid!, graceMs > 0 ? "SIGTERM" : "SIGKILL");
      } catch {}
    if (live.length === 0) return;
    const exited = Promise.all(live.map((c) => c.exited));
    const timer = new Promise<"timeout">((res) => setTimeout(() => res("timeout"), Math.max(graceMs, 1)));
    if ((await Promise.race([exited, timer])) === "timeout") {
      for (const c of live)
        try {
          process.kill(-c.pid!, "SIGKILL");
        } catch {}
      await Promise.race([exited, sleep(2000)]);
    }
  }

  /**
   * Stops a terminating pod's containers as the kubelet's killContainer does (pkg/kubelet/kuberuntime/
   * kuberuntime_container.go): each container in parallel; its preStop hook runs first, and the time
   * it takes counts against the grace period (executePreStopHook returns it, killContainer subtracts it,
   * then at least minimumGracePeriodInSeconds = 2 s remain); then StopContainer sends SIGTERM and,
   * after the rest of the grace period, SIGKILL. A hook that fails — including because the container
   * ended while it ran, which ends the exec session — is a Warning event FailedPreStopHook on the pod
   * with the message "PreStopHook failed" (the kubelet leaves the hook's output out: it may hold secrets).
   */
  private async stopContainers(r: PodRun, graceMs: number): Promise<void> {
    const all = [...r.containers, ...r.init];
    for (const c of all) c.done = true;
    const started = Date.now();
    await Promise.all(
      [...r.containers, ...r.init.filter((c) => !c.sidecar)].map((c) => this.stopContainer(r, c, graceMs)),
    );
    // Native sidecars after the app containers, last one first (kuberuntime_termination_order.go), in
    // the grace period that is left.
    for (const c of r.init.filter((x) => x.sidecar).reverse())
      await this.stopContainer(r, c, Math.max(graceMs - (Date.now() - started), 2000 * this.scale));
  }

  private async stopContainer(r: PodRun, c: ContainerRun, graceMs: number): Promise<void> {
    let remaining = graceMs;
    const hook = c.spec.lifecycle?.preStop?.exec?.command;
    if (hook?.length && c.running && graceMs > 0) {
      const started = Date.now();
      const ok = await this.execWhileRunning(r, c, hook, graceMs);
      if (!ok) {
        this.preStopFailures.push(`${r.key}/${c.spec.name}`);
        void this.recordEvent(r, "Warning", "FailedPreStopHook", "PreStopHook failed");
      }
      remaining = Math.max(graceMs - (Date.now() - started), 2000 * this.scale);
    }
    if (!c.proc || !c.pid) {
      if (c.running) {
        c.running = false;
        c.ready = false;
        c.state = {
          terminated: { exitCode: 0, reason: "Completed", startedAt: c.startedAt, finishedAt: nowIso() },
        };
      }
      return;
    }
    try {
      process.kill(-c.pid, remaining > 0 ? "SIGTERM" : "SIGKILL");
    } catch {}
    const timer = new Promise<"timeout">((res) => setTimeout(() => res("timeout"), Math.max(remaining, 1)));
    if ((await Promise.race([c.exited, timer])) === "timeout") {
      try {
        process.kill(-c.pid, "SIGKILL");
      } catch {}
      await Promise.race([c.exited, sleep(2000)]);
    }
  }

  /** An exec in a running container: it fails when the container's process ends first (the runtime ends the session). */
  private async execWhileRunning(
    r: PodRun,
    c: ContainerRun,
    command: string[],
    timeoutMs: number,
  ): Promise<boolean> {
    let ended = false;
    const exited = c.exited?.then(() => {
      ended = true;
      return false;
    });
    const ok = await Promise.race([this.exec(r, c, command, timeoutMs), ...(exited ? [exited] : [])]);
    // The main process may have exited (zombie, or reaped) before the hook did, while its output pipes
    // still close: in a container it would have taken the exec session down with it.
    return ok && !ended && c.running && c.pid !== undefined && processAlive(c.pid);
  }

  /** Writes an Event about the pod as the kubelet does (source component "kubelet"). */
  private async recordEvent(
    r: PodRun,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ): Promise<void> {
    const ns = r.pod.metadata!.namespace!;
    const t = new Date().toISOString();
    try {
      await this.core.createNamespacedEvent({
        namespace: ns,
        body: {
          metadata: { generateName: `${r.pod.metadata!.name}.`, namespace: ns },
          involvedObject: {
            kind: "Pod",
            namespace: ns,
            name: r.pod.metadata!.name!,
            uid: r.uid,
            apiVersion: "v1",
          },
          type,
          reason,
          message,
          source: { component: "kubelet", host: r.pod.spec?.nodeName ?? "" },
          firstTimestamp: t as unknown as Date,
          lastTimestamp: t as unknown as Date,
          count: 1,
        },
      });
    } catch (e) {
      this.errors.push(`event ${r.key} ${reason}: ${String(e)}`);
    }
  }

  /** Graceful termination after the pod got a deletionTimestamp; then the pod is removed from the API. */
  private async terminate(r: PodRun): Promise<void> {
    this.clearTimers(r);
    const grace =
      (r.pod.metadata?.deletionGracePeriodSeconds ?? r.pod.spec?.terminationGracePeriodSeconds ?? 30) *
      1000 *
      this.scale;
    await this.stopContainers(r, grace);
    await this.unmountVolumes(r);
    this.queueStatus(r);
    await r.statusChain;
    if (this.stopped) return;
    await this.confirmDeletion(r.pod);
    if (this.pods.get(r.key) === r) this.pods.delete(r.key);
  }

  private async confirmDeletion(pod: k8s.V1Pod): Promise<void> {
    try {
      await this.core.deleteNamespacedPod({
        namespace: pod.metadata!.namespace!,
        name: pod.metadata!.name!,
        gracePeriodSeconds: 0,
        body: { preconditions: { uid: pod.metadata!.uid! } },
      });
    } catch (e) {
      const code = (e as { code?: number }).code;
      if (code !== 404 && code !== 409) this.errors.push(`delete ${podKey(pod)}: ${String(e)}`);
    }
  }

  // ---- status ----

  private containerStatus(c: ContainerRun): Json {
    return {
      name: c.spec.name,
      image: c.spec.image ?? "",
      imageID: `stand-in://${c.spec.image ?? ""}`,
      containerID: c.pid ? `stand-in://${c.pid}` : undefined,
      ready: c.ready,
      started: c.running && c.startupPassed,
      restartCount: c.restartCount,
      state: c.state,
      lastState: c.lastState,
    };
  }

  private computeStatus(r: PodRun): Json {
    const cs = r.containers.map((c) => this.containerStatus(c));
    const ics = r.init.map((c) => this.containerStatus(c));
    const allReady = r.containers.length > 0 && r.containers.every((c) => c.ready);
    const initialized = r.started;
    let phase = "Pending";
    // Native sidecars are stopped after the app containers; the pod is terminal once they are down.
    const terminated =
      r.containers.every((c) => c.done && !c.running && c.state.terminated) &&
      r.init.every((c) => !c.sidecar || !c.running);
    if (r.evicted) phase = "Failed";
    else if (
      r.init.some((c) => c.done && !c.sidecar && c.state.terminated?.exitCode !== 0) &&
      r.pod.spec?.restartPolicy === "Never"
    )
      phase = "Failed";
    else if (r.started && terminated)
      phase = r.containers.every((c) => c.state.terminated?.exitCode === 0) ? "Succeeded" : "Failed";
    else if (
      r.started &&
      r.containers.some((c) => c.running || c.state.waiting?.reason === "CrashLoopBackOff" || c.startedAt)
    )
      phase = "Running";
    const t = nowIso();
    const cond = (type: string, ok: boolean) => ({
      type,
      status: ok ? "True" : "False",
      lastTransitionTime: t,
    });
    return {
      phase,
      ...(r.evicted ? { reason: r.evicted.reason, message: r.evicted.message } : {}),
      conditions: [
        cond("PodScheduled", true),
        cond("Initialized", initialized),
        cond("ContainersReady", allReady && !r.evicted),
        cond("Ready", allReady && !r.evicted && !r.terminating),
      ],
      hostIP: "127.0.0.1",
      podIP: r.podIP,
      podIPs: [{ ip: r.podIP }],
      startTime: r.startTime,
      qosClass: "Burstable",
      containerStatuses: cs,
      ...(ics.length ? { initContainerStatuses: ics } : {}),
    };
  }

  /** Coalesces status changes into one ordered PATCH of pods/status per pod. */
  private queueStatus(r: PodRun): void {
    if (r.statusQueued || this.stopped) return;
    r.statusQueued = true;
    r.statusChain = r.statusChain.then(async () => {
      await sleep(5);
      r.statusQueued = false;
      if (this.stopped) return;
      const status = this.computeStatus(r);
      try {
        await this.core.patchNamespacedPodStatus({
          namespace: r.pod.metadata!.namespace!,
          name: r.pod.metadata!.name!,
          body: [
            { op: "test", path: "/metadata/uid", value: r.uid },
            { op: "replace", path: "/status", value: status },
          ],
        });
      } catch (e) {
        const code = (e as { code?: number }).code;
        if (code !== 404 && code !== 422) this.errors.push(`status ${r.key}: ${String(e)}`);
      }
    });
  }
}

/** Alive and not a zombie. */
const shellQuote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

function onPath(name: string, path: string): boolean {
  for (const dir of path.split(":")) {
    try {
      accessSync(join(dir || ".", name), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\S+ \(.*\) [ZX]/.test(st);
  } catch {
    return false;
  }
}

const signalNumbers: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGTERM: 15,
  SIGUSR1: 10,
  SIGUSR2: 12,
};

/** Starts a kubelet stand-in. */
export function startKubelet(opts: KubeletOptions): Promise<Kubelet> {
  return new Kubelet(opts).start();
}
