// `juicefs-csi collect`: one .tar.gz support bundle for a pod, claim or volume (or --all): the objects
// involved as YAML, events, current and previous logs of the CSI pods and Mount Pods involved, the
// doctor's verdict and versions. Credentials are redacted twice: by structure (Secrets are never
// written, only their key names; env values and annotations that look like credentials are blanked)
// and by content (every value of the volumes' Secrets, and any URL password, in every file).
// Bounded: per-log bytes, a total size budget and an overall deadline; progress goes to stderr.
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { create as createTar } from "tar";
import { stringify } from "yaml";
import { diagnose, diagnoseAll } from "../../driver/doctor/engine.ts";
import {
  secretValues as decodeSecret,
  publishSecretRef,
  type Snapshot,
} from "../../driver/doctor/snapshot.ts";
import { redact, secretValues } from "../../driver/mount/redact.ts";
import { version } from "../../lib/version.ts";
import { UsageError } from "../errors.ts";
import { loadKubeConfig, parseTarget, renderDiagnosis, renderTable } from "./command.ts";
import { gatherSnapshot } from "./gather.ts";

export interface CollectOptions {
  namespace?: string;
  all?: boolean;
  file?: string;
  kubeconfig?: string;
  context?: string;
  /** Bytes kept of each log (the newest ones). */
  logBytes?: number;
  /** Total uncompressed budget; logs beyond it are left out (listed in MANIFEST.txt). */
  maxBytes?: number;
  /** Overall deadline, ms. */
  timeoutMs?: number;
  stderr?: (s: string) => void;
  now?: Date;
}

/** Env names whose literal values are treated as credentials in pod specs. */
const credentialName = /pass|secret|token|key|credential|auth|metaurl|meta_url|cookie|session/i;

export async function collectCommand(
  arg: string | undefined,
  o: CollectOptions,
): Promise<{ file: string; summary: string }> {
  if (o.all && arg) throw new UsageError("collect: give either an object or --all, not both");
  const target = o.all ? undefined : parseTarget(arg, o.namespace);
  const kc = await loadKubeConfig(o.kubeconfig, o.context);
  const progress = (l: string) => o.stderr?.(`collect: ${l}\n`);
  const started = Date.now();
  const timeoutMs = o.timeoutMs ?? 120_000;
  const left = () => timeoutMs - (Date.now() - started);
  const now = o.now ?? new Date();
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\..*$/, "Z");
  const file = resolve(o.file ?? `juicefs-csi-bundle-${stamp}.tar.gz`);
  const logBytes = o.logBytes ?? 512 * 1024;
  const maxBytes = o.maxBytes ?? 64 * 1024 * 1024;

  const snapshot = await withDeadline(
    gatherSnapshot({
      kc,
      target: target ?? { all: true, ...(o.namespace ? { namespace: o.namespace } : {}) },
      progress,
      timeoutMs: Math.min(10_000, timeoutMs),
    }),
    left(),
    "gathering",
  );
  const core = kc.makeApiClient(k8s.CoreV1Api);

  // Values to blank by content: every value of the volumes' Secrets (read again here, never written).
  progress("reading the volumes' Secrets to redact their values wherever they appear");
  const hide = new Set<string>();
  for (const pv of snapshot.pvs) {
    const ref = publishSecretRef(pv);
    if (
      !ref ||
      !snapshot.secrets.some((d) => d.found && d.namespace === ref.namespace && d.name === ref.name)
    )
      continue;
    const s = await core.readNamespacedSecret(ref).catch(() => undefined);
    if (s) for (const v of secretValues(decodeSecret(s))) hide.add(v);
  }
  const values = [...hide].sort((a, b) => b.length - a.length);
  const clean = (text: string) => redact(text, values);

  const dir = await mkdtemp(join(tmpdir(), "juicefs-csi-collect-"));
  const root = join(dir, "juicefs-csi-bundle");
  let written = 0;
  const skipped: string[] = [];
  /** Writes one file, redacted; `always` for the manifest, which says what the budget left out. */
  const put = async (path: string, content: string, always = false) => {
    const text = clean(content);
    const size = Buffer.byteLength(text);
    if (!always && written + size > maxBytes) {
      skipped.push(`${path} (${size} bytes: over the ${maxBytes}-byte budget)`);
      return;
    }
    written += size;
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text, { mode: 0o600 });
  };
  try {
    progress("writing objects");
    const objects: [string, k8s.KubernetesObject[]][] = [
      ["pods", snapshot.pods],
      ["persistentvolumeclaims", snapshot.pvcs],
      ["persistentvolumes", snapshot.pvs],
      ["storageclasses", snapshot.storageClasses],
      ["csi-pods", snapshot.driverPods],
      ["mount-pods", snapshot.mountPods],
      ["csinodes", snapshot.csiNodes],
      ["mutatingwebhookconfigurations", snapshot.webhooks.mutating],
      ["validatingwebhookconfigurations", snapshot.webhooks.validating],
    ];
    for (const [kind, list] of objects)
      for (const obj of list) {
        const ns = obj.metadata?.namespace;
        await put(`objects/${kind}/${ns ? `${ns}/` : ""}${obj.metadata?.name}.yaml`, stringify(scrub(obj)));
      }
    await put(
      "objects/secrets.yaml",
      stringify({ note: "key names only; values are never collected", secrets: snapshot.secrets }),
    );
    await put("events.yaml", stringify(snapshot.events.map((e) => scrub(e))));

    progress("writing the doctor's verdict");
    if (target) {
      const d = diagnose(snapshot);
      await put("doctor.json", `${JSON.stringify(d, null, 2)}\n`);
      await put("doctor.txt", renderDiagnosis(d, snapshot));
    } else {
      const all = diagnoseAll(snapshot);
      await put("doctor.json", `${JSON.stringify(all, null, 2)}\n`);
      await put("doctor.txt", renderTable(all.rows, all.checked, snapshot));
    }

    progress("reading logs of the CSI pods and Mount Pods involved");
    const nodes = new Set(snapshot.pods.map((p) => p.spec?.nodeName).filter(Boolean));
    const csiPods = snapshot.driverPods.filter((p) => {
      const component = p.metadata?.labels?.["app.kubernetes.io/component"];
      return component !== "node" || !target || nodes.has(p.spec?.nodeName);
    });
    for (const pod of [...csiPods, ...snapshot.mountPods]) {
      for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
        if (left() <= 0) {
          skipped.push(
            `logs of ${pod.metadata?.namespace}/${pod.metadata?.name}/${c.name} (time budget spent)`,
          );
          continue;
        }
        const st = [
          ...(pod.status?.initContainerStatuses ?? []),
          ...(pod.status?.containerStatuses ?? []),
        ].find((s) => s.name === c.name);
        const base = `logs/${pod.metadata?.namespace}/${pod.metadata?.name}/${c.name}`;
        const req = {
          namespace: pod.metadata!.namespace!,
          name: pod.metadata!.name!,
          container: c.name,
          limitBytes: logBytes,
          tailLines: 20_000,
        };
        const cur = await withDeadline(core.readNamespacedPodLog(req), Math.min(10_000, left()), "log").catch(
          (e: unknown) => `(log unavailable: ${message(e)})\n`,
        );
        await put(`${base}.log`, cur);
        if ((st?.restartCount ?? 0) > 0) {
          const prev = await withDeadline(
            core.readNamespacedPodLog({ ...req, previous: true }),
            Math.min(10_000, left()),
            "log",
          ).catch((e: unknown) => `(log unavailable: ${message(e)})\n`);
          await put(`${base}.previous.log`, prev);
        }
      }
    }

    progress("writing versions");
    const server = await withDeadline(
      kc.makeApiClient(k8s.VersionApi).getCode(),
      Math.min(5_000, Math.max(left(), 1)),
      "version",
    ).catch((e: unknown) => ({ error: message(e) }));
    const images = [
      ...new Set(
        [...snapshot.driverPods, ...snapshot.mountPods].flatMap((p) =>
          (p.spec?.containers ?? []).map((c) => c.image),
        ),
      ),
    ].sort();
    await put(
      "versions.yaml",
      stringify({
        collector: { name: "juicefs-csi", version, node: process.version },
        kubernetes: server,
        images,
        mountMode: snapshot.mountMode ?? "unknown",
      }),
    );
    await put(
      "MANIFEST.txt",
      [
        `juicefs-csi support bundle, ${now.toISOString()}`,
        `target: ${target ? `${target.kind}/${target.name}${target.namespace ? ` -n ${target.namespace}` : ""}` : `--all${o.namespace ? ` -n ${o.namespace}` : ""}`}`,
        "Secrets are not collected (only their key names); Secret values and URL passwords are redacted in every file.",
        ...(snapshot.failures.length
          ? ["could not read:", ...snapshot.failures.map((f) => `  ${f.what}: ${f.message}`)]
          : []),
        ...(skipped.length ? ["left out:", ...skipped.map((s) => `  ${s}`)] : []),
        "",
      ].join("\n"),
      true,
    );
    progress(`packing ${file}`);
    await createTar({ gzip: true, file, cwd: dir, portable: true }, ["juicefs-csi-bundle"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const size = (await stat(file)).size;
  return {
    file,
    summary: `${file} (${size} bytes${skipped.length ? `, ${skipped.length} item(s) left out: see MANIFEST.txt` : ""})\n`,
  };
}

/** A copy without credentials by structure: env literals of credential-like names, last-applied annotations, managed fields. */
function scrub<T extends k8s.KubernetesObject>(obj: T): T {
  const copy = JSON.parse(JSON.stringify(obj)) as T & {
    spec?: { containers?: k8s.V1Container[]; initContainers?: k8s.V1Container[] };
  };
  if (copy.metadata) {
    delete copy.metadata.managedFields;
    const ann = copy.metadata.annotations;
    if (ann?.["kubectl.kubernetes.io/last-applied-configuration"])
      ann["kubectl.kubernetes.io/last-applied-configuration"] = "[REDACTED]";
  }
  for (const c of [...(copy.spec?.containers ?? []), ...(copy.spec?.initContainers ?? [])])
    for (const e of c.env ?? [])
      if (e.value !== undefined && credentialName.test(e.name)) e.value = "[REDACTED]";
  return copy;
}

function message(e: unknown): string {
  return ((e as Error).message ?? String(e)).split("\n")[0] ?? "";
}

async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what}: no answer within ${Math.round(ms)} ms`)),
          Math.max(ms, 1),
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export type { Snapshot };
