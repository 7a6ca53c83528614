// What the dashboard serves from: informers (client-node makeInformer: one list, then a watch) for
// every kind a doctor Snapshot holds, so a page view makes no API call. Secrets are not watched (an
// informer would hold every Secret of the cluster): the Secrets the JuiceFS volumes name are read on a
// timer, reduced to key names and the settings check at once (driver/doctor/secrets.ts), and only the
// values needed to blank them in log lines stay in memory.
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  type CoreV1Event,
  type KubeConfig,
  type KubernetesObject,
  makeInformer,
  StorageV1Api,
  type V1CSINode,
  type V1MutatingWebhookConfiguration,
  type V1Namespace,
  type V1Node,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1Pod,
  type V1StorageClass,
  type V1ValidatingWebhookConfiguration,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { checkSecrets } from "../driver/doctor/secrets.ts";
import type { ReadFailure, SecretDigest, SettingsCheck } from "../driver/doctor/snapshot.ts";
import { describeApiError } from "../driver/kube/client.ts";
import { secretValues as valuesToHide } from "../driver/mount/redact.ts";

/** The objects a Snapshot is made of, as the informers hold them now. */
export interface ClusterObjects {
  pods: readonly V1Pod[];
  pvcs: readonly V1PersistentVolumeClaim[];
  pvs: readonly V1PersistentVolume[];
  storageClasses: readonly V1StorageClass[];
  namespaces: readonly V1Namespace[];
  nodes: readonly V1Node[];
  csiNodes: readonly V1CSINode[];
  events: readonly CoreV1Event[];
  mutating: readonly V1MutatingWebhookConfiguration[];
  validating: readonly V1ValidatingWebhookConfiguration[];
  secrets: readonly SecretDigest[];
  settings: readonly SettingsCheck[];
  failures: readonly ReadFailure[];
}

export interface ClusterSource {
  objects(): ClusterObjects;
  /** Bumped on every change an informer sees (pages and the SSE stream compare it). */
  generation(): number;
  synced(): boolean;
  /** Calls `fn` after each change (coalesced by the caller); returns the unsubscribe. */
  onChange(fn: () => void): () => void;
  /** Blanks every value of the volumes' Secrets and URL passwords in free text. */
  hide(): readonly string[];
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface CacheOptions {
  log?: Logger;
  /** How often the volumes' Secrets are read again (default 30 s). */
  secretRefreshMs?: number;
  /** Delay before an informer that failed is started again (default 5 s). */
  restartDelayMs?: number;
}

export function createClusterCache(kc: KubeConfig, opts: CacheOptions = {}): ClusterSource {
  const core = kc.makeApiClient(CoreV1Api);
  const storage = kc.makeApiClient(StorageV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const restartDelay = opts.restartDelayMs ?? 5000;
  let stopped = false;
  let gen = 0;
  const listeners = new Set<() => void>();
  const changed = () => {
    gen++;
    for (const l of listeners) l();
  };
  const informers: { name: string; listed: boolean; inf: ReturnType<typeof makeInformer> }[] = [];
  const failures = new Map<string, string>();

  function informer<T extends KubernetesObject>(
    name: string,
    path: string,
    list: () => Promise<{ items: T[] }>,
  ): () => readonly T[] {
    const entry = { name, listed: false, inf: undefined as unknown as ReturnType<typeof makeInformer> };
    const inf = makeInformer<T>(kc, path, async () => {
      const l = await list();
      entry.listed = true;
      failures.delete(name);
      return l as never;
    });
    entry.inf = inf as unknown as ReturnType<typeof makeInformer>;
    // ListWatch does not restart itself after an error: do it here, after a pause (as webhook/kube.ts).
    inf.on("error", (err: unknown) => {
      if (stopped) return;
      const message = String((err as Error)?.message ?? err);
      if (!entry.listed) failures.set(name, message);
      opts.log?.warn({ err: message, informer: name }, "informer failed; restarting");
      setTimeout(() => {
        if (!stopped) inf.start().catch(() => {});
      }, restartDelay).unref();
    });
    for (const ev of ["add", "update", "delete"]) inf.on(ev as never, changed);
    informers.push(entry);
    return () => inf.list();
  }

  const pods = informer<V1Pod>("pods", "/api/v1/pods", () => core.listPodForAllNamespaces());
  const pvcs = informer<V1PersistentVolumeClaim>("pvcs", "/api/v1/persistentvolumeclaims", () =>
    core.listPersistentVolumeClaimForAllNamespaces(),
  );
  const pvs = informer<V1PersistentVolume>("pvs", "/api/v1/persistentvolumes", () =>
    core.listPersistentVolume(),
  );
  const scs = informer<V1StorageClass>("storageclasses", "/apis/storage.k8s.io/v1/storageclasses", () =>
    storage.listStorageClass(),
  );
  const namespaces = informer<V1Namespace>("namespaces", "/api/v1/namespaces", () => core.listNamespace());
  const nodes = informer<V1Node>("nodes", "/api/v1/nodes", () => core.listNode());
  const csiNodes = informer<V1CSINode>("csinodes", "/apis/storage.k8s.io/v1/csinodes", () =>
    storage.listCSINode(),
  );
  const events = informer<CoreV1Event>("events", "/api/v1/events", () => core.listEventForAllNamespaces());
  const mutating = informer<V1MutatingWebhookConfiguration>(
    "webhooks",
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
    () => admission.listMutatingWebhookConfiguration(),
  );
  const validating = informer<V1ValidatingWebhookConfiguration>(
    "webhooks-validating",
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
    () => admission.listValidatingWebhookConfiguration(),
  );

  let secretState: { secrets: SecretDigest[]; settings: SettingsCheck[]; hide: string[] } = {
    secrets: [],
    settings: [],
    hide: [],
  };
  let secretFailure: string | undefined;
  let secretTimer: NodeJS.Timeout | undefined;
  let secretsRead = false;

  async function refreshSecrets(): Promise<void> {
    let failed: string | undefined;
    const hide = new Set<string>();
    const { secrets, settings } = await checkSecrets({
      pvs: [...pvs()],
      pvcs: [...pvcs()],
      storageClasses: [...scs()],
      readSecret: async (namespace, name) => {
        try {
          return await core.readNamespacedSecret({ namespace, name });
        } catch (e) {
          if ((e as { code?: number }).code === 404) return null;
          failed ??= describeApiError(e);
          return undefined;
        }
      },
      onValues: (v) => {
        for (const x of valuesToHide(v)) hide.add(x);
      },
    });
    const before = JSON.stringify([secretState.secrets, secretState.settings, secretFailure]);
    secretState = { secrets, settings, hide: [...hide].sort((a, b) => b.length - a.length) };
    secretFailure = failed;
    secretsRead = true;
    if (JSON.stringify([secrets, settings, failed]) !== before) changed();
  }

  return {
    objects() {
      const f: ReadFailure[] = [...failures].map(([what, message]) => ({
        what: what.startsWith("webhooks") ? "webhooks" : what,
        message,
      }));
      if (secretFailure) f.push({ what: "secrets", message: secretFailure });
      return {
        pods: pods(),
        pvcs: pvcs(),
        pvs: pvs(),
        storageClasses: scs(),
        namespaces: namespaces(),
        nodes: nodes(),
        csiNodes: csiNodes(),
        events: events(),
        mutating: mutating(),
        validating: validating(),
        secrets: secretState.secrets,
        settings: secretState.settings,
        failures: f,
      };
    },
    generation: () => gen,
    synced: () => secretsRead && informers.every((i) => i.listed),
    onChange(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    hide: () => secretState.hide,
    async start() {
      await Promise.all(informers.map((i) => i.inf.start().catch(() => {})));
      while (!stopped && !informers.every((i) => i.listed)) await new Promise((r) => setTimeout(r, 50));
      if (stopped) return;
      await refreshSecrets().catch((e: unknown) => {
        secretFailure = describeApiError(e);
      });
      secretsRead = true;
      const loop = () => {
        secretTimer = setTimeout(() => {
          if (stopped) return;
          refreshSecrets()
            .catch((e: unknown) =>
              opts.log?.warn({ err: describeApiError(e) }, "reading the volumes' Secrets failed"),
            )
            .finally(loop);
        }, opts.secretRefreshMs ?? 30_000);
        secretTimer.unref();
      };
      loop();
    },
    async stop() {
      stopped = true;
      clearTimeout(secretTimer);
      await Promise.all(informers.map((i) => i.inf.stop().catch(() => {})));
    },
  };
}
