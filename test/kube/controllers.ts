// Controllers of the stand-in control plane (tests only): a minimal kube-scheduler and the Job
// controller, working on the API server's store directly (as kube-controller-manager and the
// scheduler would through the API). Opt-in (`startCluster({ controllers: true })`), so tests that only
// store Jobs keep their meaning.
//
// Scheduler (what kube-scheduler does for a pod with no spec.nodeName and schedulerName
// default-scheduler): the first Ready, schedulable Node that matches spec.nodeSelector and the required
// node affinity (matchFields metadata.name, matchExpressions In/NotIn/Exists/DoesNotExist on labels;
// terms ORed, requirements ANDed) gets the pod (spec.nodeName, PodScheduled True, as the binding
// subresource sets them). None: PodScheduled False, reason Unschedulable, the scheduler's message
// ("0/N nodes are available: N node(s) didn't match Pod's node affinity/selector. preemption: ...") and a
// FailedScheduling Warning event; tried again when a Node changes. No resources, taints or ports.
//
// Job controller (kubernetes pkg/controller/job/job_controller.go, v1.33 behaviour, NonIndexed jobs):
//   - the API server's defaulting at create (job strategy): spec.selector matchLabels
//     batch.kubernetes.io/controller-uid=<uid>; template labels batch.kubernetes.io/controller-uid,
//     batch.kubernetes.io/job-name, controller-uid, job-name (store.ts applyDefaults);
//   - pods from the template: generateName "<job>-", those labels, ownerReferences {Job, controller,
//     blockOwnerDeletion}; at most parallelism active and completions in all; Events SuccessfulCreate;
//   - status.startTime on the first sync, active, ready, terminating, succeeded, failed (each terminal
//     pod counted once, remembered by uid: the real controller's job-tracking finalizer is not
//     modelled, so pods deleted before they were seen finishing are not counted);
//   - failed > backoffLimit: FailureTarget {BackoffLimitExceeded, "Job has reached the specified backoff
//     limit"}; past activeDeadlineSeconds: FailureTarget {DeadlineExceeded, "Job was active longer than
//     specified deadline"}; active pods are deleted, and once none is left or terminating the terminal
//     Failed condition with the same reason and message (and a Warning Event of that reason);
//   - succeeded >= completions with nothing active: SuccessCriteriaMet {CompletionsReached, "Reached
//     expected number of succeeded pods"}, then Complete with the same and status.completionTime (Event
//     Completed "Job completed");
//   - a failed pod is replaced after the pod back-off (10 s doubling, here `backoffMs` doubling);
//   - ttlSecondsAfterFinished (the TTL-after-finished controller): the finished Job is deleted that long
//     after its terminal condition (propagation Background here; the real one uses Foreground).
import type { KObj, Store, WatchEventType } from "./store.ts";

export interface ControllerOptions {
  /** First delay before a failed Job pod is replaced (doubles per failure; the real one starts at 10 s). */
  backoffMs?: number;
}

const nowIso = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");
const all = { labels: [], fields: [] };
const terminal = (p: KObj) => p.status?.phase === "Succeeded" || p.status?.phase === "Failed";
const cond = (o: KObj, type: string): KObj | undefined =>
  (o.status?.conditions ?? []).find((c: KObj) => c.type === type && c.status === "True");

export class Controllers {
  private readonly stops: (() => void)[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly queued = new Set<string>();
  /** uid of a Job → uids of its pods counted as succeeded / failed. */
  private readonly counted = new Map<string, { succeeded: Set<string>; failed: Set<string> }>();
  /** uid of a Job → when its next replacement pod may be created (pod back-off). */
  private readonly notBefore = new Map<string, number>();
  private stopped = false;
  readonly errors: string[] = [];

  private readonly store: Store;
  private readonly opts: ControllerOptions;

  constructor(store: Store, opts: ControllerOptions = {}) {
    this.store = store;
    this.opts = opts;
    const watch = (plural: string, group: string, on: (type: WatchEventType, o: KObj) => void) => {
      const w = this.store.watch(
        { type: this.store.type(group, plural), filter: all, send: (type, obj) => on(type, obj) },
        undefined,
      );
      this.stops.push(w.stop);
    };
    watch("pods", "", (type, p) => {
      if (type !== "DELETED" && !p.spec?.nodeName)
        this.enqueue(`pod|${p.metadata.namespace}|${p.metadata.name}`);
      const owner = (p.metadata.ownerReferences ?? []).find((r: KObj) => r.controller && r.kind === "Job");
      if (owner) this.enqueue(`job|${p.metadata.namespace}|${owner.name}`);
    });
    watch("nodes", "", () => {
      for (const p of this.store.list(this.t("pods"), all).items)
        if (!p.spec?.nodeName) this.enqueue(`pod|${p.metadata.namespace}|${p.metadata.name}`);
    });
    watch("jobs", "batch", (type, j) => {
      if (type === "DELETED") {
        this.counted.delete(j.metadata.uid);
        this.notBefore.delete(j.metadata.uid);
      } else this.enqueue(`job|${j.metadata.namespace}|${j.metadata.name}`);
    });
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.stops) s();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private t(plural: string) {
    return this.store.type(plural === "jobs" ? "batch" : "", plural);
  }

  private enqueue(key: string, afterMs = 0): void {
    if (this.stopped) return;
    if (afterMs > 0) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.enqueue(key);
      }, afterMs);
      timer.unref();
      this.timers.add(timer);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    setImmediate(() => {
      this.queued.delete(key);
      if (this.stopped) return;
      const [kind, ns, name] = key.split("|") as [string, string, string];
      try {
        if (kind === "pod") this.schedule(ns, name);
        else this.syncJob(ns, name);
      } catch (e) {
        this.errors.push(`${key}: ${(e as Error).message}`);
        // Conflicts and the like: try again shortly, as a work queue's rate limiter would.
        this.enqueue(key, 50);
      }
    });
  }

  private event(o: KObj, type: "Normal" | "Warning", reason: string, message: string, component: string) {
    const ts = nowIso();
    this.store.create(this.t("events"), o.metadata.namespace, {
      metadata: { generateName: `${o.metadata.name}.` },
      involvedObject: {
        apiVersion: o.apiVersion,
        kind: o.kind,
        namespace: o.metadata.namespace,
        name: o.metadata.name,
        uid: o.metadata.uid,
      },
      type,
      reason,
      message,
      source: { component },
      reportingComponent: component,
      firstTimestamp: ts,
      lastTimestamp: ts,
      count: 1,
    });
  }

  // ---- scheduler ----

  private schedule(ns: string, name: string): void {
    const pod = this.store.tryGet(this.t("pods"), ns, name);
    if (!pod || pod.spec?.nodeName || pod.metadata.deletionTimestamp || terminal(pod)) return;
    if ((pod.spec?.schedulerName ?? "default-scheduler") !== "default-scheduler") return;
    const nodes = this.store.list(this.t("nodes"), all).items;
    const fit = nodes.find((n) => nodeReady(n) && !n.spec?.unschedulable && nodeMatches(pod, n));
    const scheduled = (status: string, reason?: string, message?: string) => ({
      type: "PodScheduled",
      status,
      lastProbeTime: null,
      lastTransitionTime: nowIso(),
      ...(reason ? { reason, message } : {}),
    });
    const others = (pod.status?.conditions ?? []).filter((c: KObj) => c.type !== "PodScheduled");
    if (!fit) {
      const was = (pod.status?.conditions ?? []).find((c: KObj) => c.type === "PodScheduled");
      if (was?.status === "False" && was.reason === "Unschedulable") return;
      const n = nodes.length;
      const message = `0/${n} nodes are available: ${n} node(s) didn't match Pod's node affinity/selector. preemption: 0/${n} nodes are available: ${n} Preemption is not helpful for scheduling.`;
      this.store.update(
        this.t("pods"),
        ns,
        name,
        {
          ...pod,
          status: { ...pod.status, conditions: [...others, scheduled("False", "Unschedulable", message)] },
        },
        "status",
      );
      this.event(pod, "Warning", "FailedScheduling", message, "default-scheduler");
      return;
    }
    this.store.bind(ns, name, fit.metadata.name);
    this.event(
      pod,
      "Normal",
      "Scheduled",
      `Successfully assigned ${ns}/${name} to ${fit.metadata.name}`,
      "default-scheduler",
    );
  }

  // ---- job controller ----

  private syncJob(ns: string, name: string): void {
    const job = this.store.tryGet(this.t("jobs"), ns, name);
    if (!job) return;
    const uid = job.metadata.uid as string;
    const spec = job.spec ?? {};
    const st: KObj = structuredClone(job.status ?? {});
    const finished = cond(job, "Complete") ?? cond(job, "Failed");
    if (finished) {
      this.ttl(job, finished);
      return;
    }
    const pods = this.store
      .list(this.t("pods"), { namespace: ns, labels: [], fields: [] })
      .items.filter((p) =>
        (p.metadata.ownerReferences ?? []).some((r: KObj) => r.uid === uid && r.controller),
      );
    const counted = this.counted.get(uid) ?? { succeeded: new Set<string>(), failed: new Set<string>() };
    this.counted.set(uid, counted);
    for (const p of pods) {
      if (p.status?.phase === "Succeeded") counted.succeeded.add(p.metadata.uid);
      if (p.status?.phase === "Failed") counted.failed.add(p.metadata.uid);
    }
    const active = pods.filter((p) => !terminal(p) && !p.metadata.deletionTimestamp);
    const terminating = pods.filter((p) => !terminal(p) && p.metadata.deletionTimestamp).length;
    const newlyFailed = counted.failed.size > (st.failed ?? 0);
    st.startTime ??= nowIso();
    st.succeeded = counted.succeeded.size;
    st.failed = counted.failed.size;
    const now = Date.now();
    const addCondition = (type: string, reason: string, message: string) => {
      st.conditions = [
        ...(st.conditions ?? []),
        { type, status: "True", lastProbeTime: nowIso(), lastTransitionTime: nowIso(), reason, message },
      ];
    };

    let target = cond({ status: st }, "FailureTarget") ?? cond({ status: st }, "SuccessCriteriaMet");
    if (!target) {
      const completions = spec.completions ?? 1;
      const deadline =
        spec.activeDeadlineSeconds !== undefined
          ? Date.parse(st.startTime) + spec.activeDeadlineSeconds * 1000
          : undefined;
      if (st.failed > (spec.backoffLimit ?? 6))
        addCondition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit");
      else if (deadline !== undefined && now >= deadline)
        addCondition("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline");
      else if (st.succeeded >= completions && active.length === 0)
        addCondition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods");
      else {
        if (deadline !== undefined) this.enqueue(`job|${ns}|${name}`, deadline - now + 5);
        // manageJob: create what is missing, after the pod back-off when a pod failed.
        const want = Math.min(spec.parallelism ?? 1, completions - st.succeeded) - active.length;
        if (newlyFailed && want > 0) {
          const delay = (this.opts.backoffMs ?? 100) * 2 ** Math.max(0, st.failed - 1);
          this.notBefore.set(uid, now + delay);
        }
        const wait = (this.notBefore.get(uid) ?? 0) - now;
        if (want > 0 && !job.metadata.deletionTimestamp && !spec.suspend) {
          if (wait > 0) this.enqueue(`job|${ns}|${name}`, wait);
          else for (let i = 0; i < want; i++) active.push(this.createPod(job));
        }
      }
      target = cond({ status: st }, "FailureTarget") ?? cond({ status: st }, "SuccessCriteriaMet");
    }
    // A failed Job's active pods are deleted; it is Failed (or Complete) once none runs any more.
    let deletedNow = 0;
    if (target?.type === "FailureTarget")
      for (const p of active.splice(0)) {
        deletedNow++;
        try {
          this.store.delete(this.t("pods"), ns, p.metadata.name, {});
        } catch {}
      }
    const stillRunning = terminating + deletedNow;
    const isReady = (p: KObj) =>
      (p.status?.conditions ?? []).some((c: KObj) => c.type === "Ready" && c.status === "True");
    st.active = active.length;
    st.ready = active.filter(isReady).length;
    st.terminating = stillRunning;
    let done: KObj | undefined;
    if (target && stillRunning === 0 && active.length === 0) {
      const type = target.type === "FailureTarget" ? "Failed" : "Complete";
      addCondition(type, target.reason, target.message);
      if (type === "Complete") st.completionTime = nowIso();
      done = st.conditions.at(-1);
    }
    if (JSON.stringify(st) !== JSON.stringify(job.status ?? {}))
      this.store.update(this.t("jobs"), ns, name, { ...job, status: st }, "status");
    if (done) {
      if (done.type === "Complete") this.event(job, "Normal", "Completed", "Job completed", "job-controller");
      else this.event(job, "Warning", done.reason, done.message, "job-controller");
    }
  }

  private createPod(job: KObj): KObj {
    const tpl = job.spec.template ?? {};
    const pod = this.store.create(this.t("pods"), job.metadata.namespace, {
      metadata: {
        generateName: `${job.metadata.name}-`,
        labels: { ...(tpl.metadata?.labels ?? {}) },
        ...(tpl.metadata?.annotations ? { annotations: { ...tpl.metadata.annotations } } : {}),
        ownerReferences: [
          {
            apiVersion: "batch/v1",
            kind: "Job",
            name: job.metadata.name,
            uid: job.metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: structuredClone(tpl.spec),
    });
    this.event(job, "Normal", "SuccessfulCreate", `Created pod: ${pod.metadata.name}`, "job-controller");
    return pod;
  }

  private ttl(job: KObj, finished: KObj): void {
    const ttl = job.spec?.ttlSecondsAfterFinished;
    if (ttl === undefined || job.metadata.deletionTimestamp) return;
    const due = Date.parse(finished.lastTransitionTime) + ttl * 1000 - Date.now();
    if (due > 0) {
      this.enqueue(`job|${job.metadata.namespace}|${job.metadata.name}`, due + 5);
      return;
    }
    try {
      this.store.delete(this.t("jobs"), job.metadata.namespace, job.metadata.name, {
        propagationPolicy: "Background",
        preconditions: { uid: job.metadata.uid },
      });
    } catch {}
  }
}

function nodeReady(n: KObj): boolean {
  const ready = (n.status?.conditions ?? []).find((c: KObj) => c.type === "Ready");
  return ready === undefined || ready.status === "True";
}

/** spec.nodeSelector and the required node affinity (nodeSelectorTerms ORed). */
export function nodeMatches(pod: KObj, node: KObj): boolean {
  const labels: Record<string, string> = node.metadata?.labels ?? {};
  for (const [k, v] of Object.entries((pod.spec?.nodeSelector ?? {}) as Record<string, string>))
    if (labels[k] !== v) return false;
  const terms: KObj[] =
    pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  if (terms.length === 0) return true;
  const req = (r: KObj, value: string | undefined): boolean => {
    const values: string[] = r.values ?? [];
    switch (r.operator) {
      case "In":
        return value !== undefined && values.includes(value);
      case "NotIn":
        return value === undefined || !values.includes(value);
      case "Exists":
        return value !== undefined;
      case "DoesNotExist":
        return value === undefined;
      default:
        return false;
    }
  };
  return terms.some(
    (term) =>
      ((term.matchExpressions ?? []).length > 0 || (term.matchFields ?? []).length > 0) &&
      (term.matchExpressions ?? []).every((r: KObj) => req(r, labels[r.key])) &&
      (term.matchFields ?? []).every((r: KObj) =>
        r.key === "metadata.name" ? req(r, node.metadata?.name) : false,
      ),
  );
}
