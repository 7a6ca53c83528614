// The warm-up's Job path (no running client): create the Job (plan.ts warmupJob), and unless
// --background wait for it, read its pod's log, report, and delete the Job. Polls (get on the Job,
// list of its pods by the controller-uid label: no watch verb needed), every `pollMs`.
//
// Progress: the client draws its progress only on a terminal (pkg/utils/progress.go), and a Job's pod
// has none, so the log holds only the client's log lines and closing summary ("warmup: 12 files
// (1.2 MiB bytes)"); stderr says where the Job is (created, scheduled on a node, running) instead.
// Fails fast, deleting the Job, when its pod cannot be scheduled or its image cannot be pulled.
import type * as k8s from "@kubernetes/client-node";
import { describeApiError } from "../../driver/kube/client.ts";
import {
  type WarmupClient,
  WarmupError,
  warmupJobContainer,
  warmupJobDeadlineSeconds,
  warmupJobMountPath,
  warmupJobTtlSeconds,
} from "./plan.ts";
import { type WarmupOutcome, WarmupOutputParser } from "./progress.ts";

export interface JobRunOptions {
  job: k8s.V1Job;
  /** pvc/NAME, for messages. */
  shortId: string;
  background: boolean;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  pollMs?: number | undefined;
  /** Give up waiting after this long (default: the Job's activeDeadlineSeconds and a minute). */
  timeoutMs?: number | undefined;
}

export interface JobRunResult {
  client: WarmupClient;
  ok: boolean;
  exitCode?: number;
  outcome?: WarmupOutcome;
  error?: string;
  /** The Job's name (it is left in place with --background). */
  job: string;
}

const pullFailures = new Set(["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"]);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const condition = (j: k8s.V1Job, type: string) =>
  j.status?.conditions?.find((c) => c.type === type && c.status === "True");

export async function runWarmupJob(kc: k8s.KubeConfig, o: JobRunOptions): Promise<JobRunResult> {
  const k = await import("@kubernetes/client-node");
  const batch = kc.makeApiClient(k.BatchV1Api);
  const core = kc.makeApiClient(k.CoreV1Api);
  const namespace = o.job.metadata!.namespace!;
  const created = await batch.createNamespacedJob({ namespace, body: o.job }).catch((e: unknown) => {
    const c = (e as { code?: number }).code;
    throw new WarmupError(
      `cannot create the warm-up Job in namespace ${namespace}: ${describeApiError(e)}${c === 403 ? ' (warm-up needs "create" on jobs in batch there: chart doctor.rbac.warmup: true adds it to the doctor ClusterRole)' : ""}`,
    );
  });
  const name = created.metadata!.name!;
  const uid = created.metadata!.uid!;
  const jobId = `Job ${namespace}/${name}`;
  const client: WarmupClient = {
    kind: "Job",
    namespace,
    pod: name,
    container: warmupJobContainer,
    node: "",
    volumeRoot: warmupJobMountPath,
  };
  const node =
    o.job.spec?.template.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
      ?.nodeSelectorTerms[0]?.matchFields?.[0]?.values?.[0];
  o.stderr(
    `no running JuiceFS client: created ${jobId}, which mounts ${o.shortId} on ${node ? `node ${node}` : "a node the scheduler picks"} and runs juicefs warmup there\n`,
  );
  if (o.background) {
    o.stdout(
      `${o.shortId}: warm-up runs in the background in ${jobId}; follow it with: kubectl logs -n ${namespace} job/${name} -f (the Job is deleted ${warmupJobTtlSeconds / 60} minutes after it finishes)\n`,
    );
    return { client, ok: true, job: name };
  }

  const remove = async () => {
    await batch
      .deleteNamespacedJob({ namespace, name, propagationPolicy: "Background" })
      .then(() => o.stderr(`deleted ${jobId}\n`))
      .catch((e: unknown) => {
        if ((e as { code?: number }).code !== 404)
          o.stderr(
            `cannot delete ${jobId}: ${describeApiError(e)}; delete it with: kubectl delete job -n ${namespace} ${name}\n`,
          );
      });
  };
  try {
    return await wait();
  } finally {
    await remove();
  }

  async function wait(): Promise<JobRunResult> {
    const deadline = Date.now() + (o.timeoutMs ?? (warmupJobDeadlineSeconds + 60) * 1000);
    const seen = new Map<string, string>();
    const say = (pod: string, what: string) => {
      if (seen.get(pod) === what) return;
      seen.set(pod, what);
      o.stderr(`${jobId}: pod ${pod} ${what}\n`);
    };
    for (;;) {
      const job = await batch.readNamespacedJob({ namespace, name }).catch((e: unknown) => {
        throw new WarmupError(`reading ${jobId}: ${describeApiError(e)}`);
      });
      const pods = (
        await core
          .listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/controller-uid=${uid}` })
          .catch((e: unknown) => {
            throw new WarmupError(`listing the pods of ${jobId}: ${describeApiError(e)}`);
          })
      ).items.sort((a, b) =>
        String(a.metadata?.creationTimestamp ?? "").localeCompare(
          String(b.metadata?.creationTimestamp ?? ""),
        ),
      );
      for (const p of pods) {
        const pn = p.metadata!.name!;
        const sched = p.status?.conditions?.find((c) => c.type === "PodScheduled");
        if (sched?.status === "False" && sched.reason === "Unschedulable")
          return failed(`its pod ${pn} cannot be scheduled: ${sched.message ?? "Unschedulable"}`, p);
        const cs = p.status?.containerStatuses?.find((c) => c.name === warmupJobContainer);
        const waiting = cs?.state?.waiting;
        if (waiting?.reason && pullFailures.has(waiting.reason))
          return failed(
            `its pod ${pn} cannot pull image ${p.spec?.containers[0]?.image}: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ""}; give the JuiceFS client image with --image`,
            p,
          );
        if (p.spec?.nodeName) client.node = p.spec.nodeName;
        if (cs?.state?.running) say(pn, `running on node ${p.spec?.nodeName}`);
        else if (waiting?.reason) say(pn, `waiting on node ${p.spec?.nodeName}: ${waiting.reason}`);
        else if (cs?.state?.terminated) say(pn, `finished on node ${p.spec?.nodeName}`);
        else if (p.spec?.nodeName) say(pn, `scheduled on node ${p.spec.nodeName}`);
      }
      const complete = condition(job, "Complete");
      const failure = condition(job, "Failed");
      if (complete || failure) {
        const last =
          [...pods].reverse().find((p) => p.status?.phase === (complete ? "Succeeded" : "Failed")) ??
          pods.at(-1);
        const outcome = last ? await logOutcome(last) : undefined;
        if (last?.spec?.nodeName) client.node = last.spec.nodeName;
        client.pod = last?.metadata?.name ?? name;
        if (complete) return { client, ok: true, exitCode: 0, ...(outcome ? { outcome } : {}), job: name };
        const term = last?.status?.containerStatuses?.find((c) => c.name === warmupJobContainer)?.state
          ?.terminated;
        const why =
          outcome?.messages.filter((m) => /^(FATAL|ERROR)/.test(m)).at(-1) ?? outcome?.messages.at(-1);
        const attempts = job.status?.failed ?? 0;
        const error =
          `juicefs warmup failed in ${jobId}${last ? ` (pod ${last.metadata?.name}${last.spec?.nodeName ? `, node ${last.spec.nodeName}` : ""})` : ""}` +
          `${term ? ` with exit code ${term.exitCode}${term.reason && term.reason !== "Error" ? ` (${term.reason})` : ""}` : ""}` +
          `${why ? `: ${why}` : ""}; Job ${failure!.reason}: ${failure!.message}${attempts ? ` (${attempts} failed pod${attempts === 1 ? "" : "s"})` : ""}`;
        return {
          client,
          ok: false,
          ...(term?.exitCode !== undefined ? { exitCode: term.exitCode } : {}),
          ...(outcome ? { outcome } : {}),
          error,
          job: name,
        };
      }
      if (Date.now() > deadline)
        return failed(`it did not finish in ${Math.round((o.timeoutMs ?? 0) / 1000)} s`);
      await sleep(o.pollMs ?? 500);
    }
  }

  function failed(why: string, pod?: k8s.V1Pod): JobRunResult {
    if (pod?.spec?.nodeName) client.node = pod.spec.nodeName;
    return { client, ok: false, error: `warm-up ${jobId} failed: ${why}`, job: name };
  }

  async function logOutcome(pod: k8s.V1Pod): Promise<WarmupOutcome | undefined> {
    const text = await core
      .readNamespacedPodLog({ namespace, name: pod.metadata!.name!, container: warmupJobContainer })
      .catch((e: unknown) => {
        o.stderr(`cannot read the log of pod ${pod.metadata?.name}: ${describeApiError(e)}\n`);
        return undefined;
      });
    if (text === undefined) return undefined;
    const parser = new WarmupOutputParser();
    parser.push(String(text));
    return parser.end();
  }
}
