// The Mount Pod reconciler of one node: a watch on the pods bound to this node (Mount Pods and the
// apps that use them) triggers a pass soon after anything changes, and a periodic sweep catches what
// a watch can miss (a dropped connection, a change while the plugin was down). Each pass is
// PodClientManager.reconcile(): references of vanished pods dropped, dead Mount Pods recreated,
// broken targets re-bound, unreferenced Mount Pods deleted.
import * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import { labels } from "../juicefs/index.ts";
import type { Kube } from "../kube/client.ts";
import type { PodClientManager } from "./pod-clients.ts";

export interface PodReconcilerOptions {
  kube: Kube;
  nodeName: string;
  clients: PodClientManager;
  /** Periodic sweep (default 30 s). */
  intervalMs?: number;
  /** Coalesces bursts of watch events into one pass (default 100 ms). */
  debounceMs?: number;
  logger?: Logger;
}

export class PodReconciler {
  readonly #o: PodReconcilerOptions;
  readonly #lw: k8s.ListWatch<k8s.V1Pod>;
  #timer: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #synced = false;
  /** A list succeeded (ListWatch.start() resolves after a failed list too, with an empty cache). */
  #listed = false;
  #deleted: k8s.V1Pod[] = [];
  /** Completed passes (tests wait on it). */
  passes = 0;

  constructor(opts: PodReconcilerOptions) {
    this.#o = opts;
    const fieldSelector = `spec.nodeName=${opts.nodeName}`;
    this.#lw = new k8s.ListWatch<k8s.V1Pod>(
      "/api/v1/pods",
      new k8s.Watch(opts.kube.kc),
      async () => {
        const list = await opts.kube.core.listPodForAllNamespaces({ fieldSelector });
        this.#listed = true;
        return list;
      },
      false,
      undefined,
      fieldSelector,
    );
    const isMountPod = (p: k8s.V1Pod) => p.metadata?.labels?.[labels.appName] === labels.mountPodAppName;
    this.#lw.on("update", (p) => {
      if (isMountPod(p)) this.trigger();
    });
    this.#lw.on("delete", (p) => {
      if (isMountPod(p)) this.#deleted.push(p);
      this.trigger();
    });
    this.#lw.on("error", (err) => {
      if (this.#stopped) return;
      opts.logger?.warn({ err: String(err) }, "pod watch failed; restarting");
      setTimeout(() => {
        if (!this.#stopped) void this.#startWatch().catch(() => {});
      }, 1000).unref();
    });
  }

  /** This node's Mount Pods in the driver namespace, from the watch cache (undefined before the first list). */
  mountPods(namespace: string): k8s.V1Pod[] | undefined {
    if (!this.#synced) return undefined;
    return this.#lw
      .list(namespace)
      .filter((p) => p.metadata?.labels?.[labels.appName] === labels.mountPodAppName);
  }

  /** Starts (again) the list and watch; the cache counts as synced once a list has succeeded. */
  async #startWatch(): Promise<void> {
    await this.#lw.start();
    if (this.#listed) this.#synced = true;
  }

  async start(): Promise<this> {
    // Resolves even when the API server cannot be reached: the error handler retries, and until a
    // list succeeds mountPods() answers undefined (callers read the API instead of an empty cache).
    await this.#startWatch();
    const every = this.#o.intervalMs ?? 30_000;
    const tick = () => {
      this.#timer = setTimeout(async () => {
        await this.runOnce().catch(() => {});
        if (!this.#stopped) tick();
      }, every);
      this.#timer.unref();
    };
    tick();
    this.trigger();
    return this;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#debounce) clearTimeout(this.#debounce);
    await this.#lw.stop();
    await this.#running?.catch(() => {});
  }

  trigger(): void {
    if (this.#stopped || this.#debounce) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      void this.runOnce().catch(() => {});
    }, this.#o.debounceMs ?? 100);
    this.#debounce.unref();
  }

  /** One pass; concurrent calls coalesce (a call during a pass causes one more pass after it). */
  async runOnce(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        const deletedPods = this.#deleted;
        this.#deleted = [];
        // The pods that exist, fresh from the API (not the watch cache, which may lag a publish
        // that just happened): a reference is dropped only when its pod is really gone.
        const live = await this.#o.kube.core.listPodForAllNamespaces({
          fieldSelector: `spec.nodeName=${this.#o.nodeName}`,
        });
        const livePodUids = new Set(live.items.map((p) => p.metadata?.uid ?? ""));
        try {
          await this.#o.clients.reconcile({ livePodUids, livePods: live.items, deletedPods });
        } catch (e) {
          this.#o.logger?.warn({ err: String(e) }, "Mount Pod reconcile pass failed");
        }
        this.passes++;
      } while (this.#again && !this.#stopped);
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }
}
