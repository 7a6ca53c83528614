// `juicefs-csi warmup pvc/NAME -n NS [--path P ...] [--threads N] [--background] [--node NODE]`
// (also `kubectl jfs warmup`): the seed's "exec into the Mount Pod, find the mount point, run juicefs
// warmup" done for the user. Reads (all within the doctor's ClusterRole): the claim, its PV (a list
// narrowed by name), Mount Pods by label across namespaces, the claim namespace's pods (sidecars, and
// where apps mount the claim). Then, in each running client of the volume (each node caches for
// itself), `juicefs warmup` through pods/exec (needs create on pods/exec: chart doctor.rbac.warmup).
// Progress goes to stderr (a bar on a terminal, plain lines otherwise), one result line per client to
// stdout. Exit 0 when every client warmed up, 1 when one failed or none runs, 2 for a bad command line.
import type * as k8s from "@kubernetes/client-node";
import { loadKubeConfig } from "../doctor/command.ts";
import { describeApiError } from "../doctor/gather.ts";
import { UsageError } from "../errors.ts";
import { ExecRefused, execInContainer } from "./exec.ts";
import {
  appMountsOf,
  checkClaim,
  findClients,
  volumePaths,
  volumeSubPath,
  type WarmupClient,
  WarmupError,
  warmupArgv,
} from "./plan.ts";
import { iBytes, ProgressView, type WarmupOutcome, WarmupOutputParser } from "./progress.ts";

export interface WarmupOptions {
  namespace?: string | undefined;
  paths?: string[] | undefined;
  threads?: number | undefined;
  background?: boolean | undefined;
  node?: string | undefined;
  kubeconfig?: string | undefined;
  context?: string | undefined;
  /** Results, one line per client. */
  stdout: (s: string) => void;
  /** Progress and the client's warnings. */
  stderr: (s: string) => void;
  /** Draw a progress bar (stderr is a terminal); else plain lines. */
  tty?: boolean | undefined;
  /** Plain progress lines at most this often (default 5 s). */
  progressIntervalMs?: number | undefined;
}

export interface ClientResult {
  client: WarmupClient;
  ok: boolean;
  exitCode?: number;
  outcome?: WarmupOutcome;
  error?: string;
}

/** `pvc/NAME` (kubectl's spellings) or a bare claim name. */
export function parseClaim(arg: string | undefined): string {
  const m = arg
    ? /^(?:(pvc|pvcs|persistentvolumeclaim|persistentvolumeclaims)\/)?([^/\s]+)$/i.exec(arg)
    : null;
  if (!m) throw new UsageError(`warmup: give the claim as pvc/NAME${arg ? `, not "${arg}"` : ""}`);
  return m[2]!;
}

export async function warmupCommand(
  arg: string | undefined,
  o: WarmupOptions,
): Promise<{ ok: boolean; results: ClientResult[] }> {
  const name = parseClaim(arg);
  if (o.threads !== undefined && (!Number.isInteger(o.threads) || o.threads < 1 || o.threads > 65535))
    throw new UsageError(`--threads ${o.threads}: give a whole number from 1 to 65535`);
  const kc = await loadKubeConfig(o.kubeconfig, o.context);
  const k = await import("@kubernetes/client-node");
  const core = kc.makeApiClient(k.CoreV1Api);
  const namespace = o.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
  const claimId = `pvc/${name} in namespace ${namespace}`;
  const shortId = `pvc/${name}`;

  const pvc = await core
    .readNamespacedPersistentVolumeClaim({ namespace, name })
    .catch((e: unknown) => (code(e) === 404 ? undefined : Promise.reject(apiError(e, `reading ${shortId}`))));
  let pv: k8s.V1PersistentVolume | undefined;
  if (pvc?.spec?.volumeName)
    pv = (
      await core
        .listPersistentVolume({ fieldSelector: `metadata.name=${pvc.spec.volumeName}` })
        .catch((e: unknown) => Promise.reject(apiError(e, `reading PV ${pvc.spec?.volumeName}`)))
    ).items[0];
  const { volumeId } = checkClaim(claimId, pvc, pv);
  const subPath = volumeSubPath(pv!, pvc!);
  const { labels, volumeIdLabelValue } = await import("../../driver/juicefs/index.ts");
  const [mountPods, appPods] = await Promise.all([
    core
      .listPodForAllNamespaces({
        labelSelector: `${labels.appName}=${labels.mountPodAppName},${labels.volumeId}=${volumeIdLabelValue(volumeId)}`,
      })
      .catch((e: unknown) => Promise.reject(apiError(e, "listing Mount Pods"))),
    core
      .listNamespacedPod({ namespace })
      .catch((e: unknown) => Promise.reject(apiError(e, `listing pods in namespace ${namespace}`))),
  ]);
  const rel = volumePaths(shortId, o.paths ?? [], appMountsOf(name, volumeId, appPods.items));
  const { clients, idle } = findClients({
    volumeId,
    subPath,
    mountPods: mountPods.items,
    appPods: appPods.items,
    node: o.node,
  });
  if (clients.length === 0) {
    const seen = idle.map((c) => `${c.kind} ${c.namespace}/${c.pod}: ${c.why}`);
    throw new WarmupError(
      `no running JuiceFS client for ${claimId}${o.node ? ` on node ${o.node}` : ""}${seen.length ? ` (${seen.join("; ")})` : ""}: warm-up runs in the client that mounts the volume; start a pod that uses the claim (its node then runs a Mount Pod), wait until it is Running, and run this again`,
    );
  }

  const results: ClientResult[] = [];
  const shown = rel.map((r) => `/${r}`).join(" ");
  for (const client of clients) {
    const where = `${client.kind} ${client.namespace}/${client.pod}`;
    const label = `${where} (node ${client.node})`;
    o.stderr(`warming up ${shortId} ${shown} in ${label}\n`);
    const view = new ProgressView({
      label: client.pod,
      tty: o.tty === true,
      write: o.stderr,
      intervalMs: o.progressIntervalMs,
    });
    const parser = new WarmupOutputParser({
      onProgress: (p) => view.update(p),
      onMessage: (l) => view.message(l),
    });
    try {
      const r = await execInContainer(kc, {
        namespace: client.namespace,
        pod: client.pod,
        container: client.container,
        command: warmupArgv(client, rel, { threads: o.threads, background: o.background }),
        // The client shows progress only on a terminal (pkg/utils/progress.go), so ask for one.
        tty: true,
        onStdout: (b) => parser.push(b),
        onStderr: (b) => parser.push(b),
      });
      const outcome = parser.end();
      view.done();
      if (r.exitCode !== 0) {
        const why =
          outcome.messages.filter((m) => /^(FATAL|ERROR)/.test(m)).at(-1) ?? outcome.messages.at(-1);
        const error = `juicefs warmup failed in ${where} with exit code ${r.exitCode}${why ? `: ${why}` : ""}`;
        o.stdout(`${error}\n`);
        results.push({ client, ok: false, exitCode: r.exitCode, outcome, error });
        continue;
      }
      o.stdout(
        outcome.background
          ? `${shortId}: warm-up started in the background in ${label}; the client fills its cache on its own (juicefs warmup --background)\n`
          : `${shortId}: warmed up ${outcome.files} files, ${iBytes(outcome.bytes)} (${outcome.bytes} bytes) in ${label} in ${view.elapsed()}\n`,
      );
      results.push({ client, ok: true, exitCode: 0, outcome });
    } catch (e) {
      view.done();
      const error = execFailure(e, client);
      o.stdout(`${error}\n`);
      results.push({ client, ok: false, error });
    }
  }
  return { ok: results.every((r) => r.ok), results };
}

function execFailure(e: unknown, c: WarmupClient): string {
  const where = `${c.kind} ${c.namespace}/${c.pod}`;
  if (e instanceof ExecRefused) {
    if (e.code === 403)
      return `not allowed to run commands in ${where}: ${e.message}. Warm-up needs "create" on pods/exec there (chart: doctor.rbac.warmup: true adds it to the doctor ClusterRole)`;
    return `cannot exec in ${where} (HTTP ${e.code}): ${e.message}`;
  }
  return `cannot exec in ${where}: ${(e as Error).message}`;
}

const code = (e: unknown) => (e as { code?: number }).code;

function apiError(e: unknown, what: string): Error {
  return new WarmupError(
    `${what}: ${describeApiError(e)}${code(e) === 403 ? " (the doctor's ClusterRole grants these reads: chart doctor.rbac.create)" : ""}`,
  );
}
