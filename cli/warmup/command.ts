// `juicefs-csi warmup pvc/NAME -n NS [--path P ...] [--threads N] [--background] [--node NODE]`
// (also `kubectl jfs warmup`): the seed's "exec into the Mount Pod, find the mount point, run juicefs
// warmup" done for the user. Reads (all within the doctor's ClusterRole): the claim, its PV (a list
// narrowed by name), Mount Pods by label across namespaces, the claim namespace's pods (sidecars, and
// where apps mount the claim). Then, in each running client of the volume (each node caches for
// itself), `juicefs warmup` through pods/exec (needs create on pods/exec: chart doctor.rbac.warmup).
// Progress goes to stderr (a bar on a terminal, plain lines otherwise), one result line per client to
// stdout. Exit 0 when every client warmed up, 1 when one failed or none runs, 2 for a bad command line.
import type * as k8s from "@kubernetes/client-node";
import { describeApiError } from "../../driver/kube/client.ts";
import { loadKubeConfig } from "../doctor/command.ts";
import { UsageError } from "../errors.ts";
import { ExecRefused, execInContainer } from "./exec.ts";
import { runWarmupJob } from "./job.ts";
import {
  appMountsOf,
  checkClaim,
  findClients,
  volumePaths,
  volumeSubPath,
  type WarmupClient,
  WarmupError,
  warmupArgv,
  warmupImage,
  warmupJob,
} from "./plan.ts";
import { iBytes, ProgressView, type WarmupOutcome, WarmupOutputParser } from "./progress.ts";

export interface WarmupOptions {
  namespace?: string | undefined;
  paths?: string[] | undefined;
  threads?: number | undefined;
  background?: boolean | undefined;
  node?: string | undefined;
  /** The JuiceFS client image of the warm-up Job (default: the claim's mount image). */
  image?: string | undefined;
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
  /** The Job path: how often the Job is polled (default 500 ms) and how long it is waited for. */
  jobPollMs?: number | undefined;
  jobTimeoutMs?: number | undefined;
}

export interface ClientResult {
  client: WarmupClient;
  ok: boolean;
  /** The Job path: the warm-up Job's name. */
  job?: string;
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
  const { imageReference } = await import("../../driver/juicefs/index.ts");
  if (o.image !== undefined && !imageReference.test(o.image))
    throw new UsageError(
      `--image "${o.image}": give a container image reference of the JuiceFS client, e.g. juicedata/mount:ce-v1.3.0`,
    );
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
    if (seen.length) o.stderr(`not usable: ${seen.join("; ")}\n`);
    const image = o.image
      ? { image: o.image, origin: "--image" }
      : warmupImage({
          pv: pv!,
          pvc: pvc!,
          storageClass: await storageClassOf(kc, pvc!),
          edition: await editionOf(core, pv!, o.stderr),
        });
    const job = warmupJob({
      claim: name,
      namespace,
      image: image.image,
      relPaths: rel,
      threads: o.threads,
      node: o.node,
    });
    o.stderr(
      `warming up ${shortId} ${rel.map((r) => `/${r}`).join(" ")} with image ${image.image} (${image.origin})\n`,
    );
    const r = await runWarmupJob(kc, {
      job,
      shortId,
      background: o.background === true,
      stdout: o.stdout,
      stderr: o.stderr,
      pollMs: o.jobPollMs,
      timeoutMs: o.jobTimeoutMs,
    });
    const where = `Job ${r.client.namespace}/${r.job}${r.client.node ? ` (node ${r.client.node})` : ""}`;
    if (r.ok && !o.background)
      o.stdout(
        `${shortId}: warmed up ${r.outcome?.files ?? 0} files${r.outcome?.summary ? `, ${/\((.+) bytes\)$/.exec(r.outcome.summary)?.[1] ?? "?"}` : ""} in ${where}\n`,
      );
    else if (!r.ok) o.stdout(`${r.error}\n`);
    const { job: jobName, ...rest } = r;
    return { ok: r.ok, results: [{ ...rest, job: jobName }] };
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

/** The claim's StorageClass (its `juicefs/mount-image` parameter), if it has one that exists. */
async function storageClassOf(
  kc: k8s.KubeConfig,
  pvc: k8s.V1PersistentVolumeClaim,
): Promise<k8s.V1StorageClass | undefined> {
  const sc = pvc.spec?.storageClassName;
  if (!sc) return undefined;
  const k = await import("@kubernetes/client-node");
  const storage = kc.makeApiClient(k.StorageV1Api);
  return (
    await storage
      .listStorageClass({ fieldSelector: `metadata.name=${sc}` })
      .catch((e: unknown) => Promise.reject(apiError(e, `reading StorageClass ${sc}`)))
  ).items[0];
}

/**
 * Community or enterprise (the default image differs): a `metaurl` key in the volume's Secret means
 * community, as in the settings. Only the key names are used (the values are neither kept nor
 * printed). Without read access to Secrets
 * (doctor.rbac.readSecrets) the community edition is assumed, and said so.
 */
async function editionOf(
  core: k8s.CoreV1Api,
  pv: k8s.V1PersistentVolume,
  stderr: (s: string) => void,
): Promise<"community" | "enterprise"> {
  const ref = pv.spec?.csi?.nodePublishSecretRef;
  if (!ref?.name || !ref.namespace) return "community";
  const { secretKeys } = await import("../../driver/juicefs/index.ts");
  const secret = await core
    .readNamespacedSecret({ namespace: ref.namespace, name: ref.name })
    .catch((e: unknown) => {
      stderr(
        `cannot read Secret ${ref.namespace}/${ref.name} (${describeApiError(e)}) to tell the edition: assuming the community edition's image; give another with --image\n`,
      );
      return undefined;
    });
  if (!secret) return "community";
  return Object.hasOwn(secret.data ?? {}, secretKeys.metaurl) ? "community" : "enterprise";
}

function apiError(e: unknown, what: string): Error {
  return new WarmupError(
    `${what}: ${describeApiError(e)}${code(e) === 403 ? " (the doctor's ClusterRole grants these reads: chart doctor.rbac.create)" : ""}`,
  );
}
