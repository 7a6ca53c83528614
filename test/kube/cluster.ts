// A whole stand-in cluster for tests: the API server, a kubelet for the given nodes, a kubeconfig
// file and client-node clients on it. `stop()` kills every process and removes every file it made.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { type ApiServer, type ApiServerOptions, startApiServer } from "./apiserver.ts";
import { type ControllerOptions, Controllers } from "./controllers.ts";
import { type Kubelet, type KubeletOptions, startKubelet } from "./kubelet.ts";

export interface StandInCluster {
  api: ApiServer;
  kubelet: Kubelet;
  /** The scheduler and Job controller, when asked for (`controllers`). */
  controllers: Controllers | undefined;
  kubeconfig: string;
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  dir: string;
  stop(): Promise<void>;
}

export async function startCluster(
  opts: {
    nodes?: string[];
    api?: ApiServerOptions;
    kubelet?: Omit<KubeletOptions, "kubeconfig" | "nodeNames" | "apiServer">;
    /** Run the stand-in scheduler and Job controller (controllers.ts); off by default. */
    controllers?: boolean | ControllerOptions;
  } = {},
): Promise<StandInCluster> {
  const dir = mkdtempSync(join(tmpdir(), "standin-cluster-"));
  const api = await startApiServer(opts.api);
  const kubeconfig = api.writeKubeconfig(join(dir, "kubeconfig"));
  let kubelet: Kubelet;
  try {
    kubelet = await startKubelet({
      kubeconfig,
      nodeNames: opts.nodes ?? ["node-1"],
      apiServer: api,
      rootDir: join(dir, "kubelet"),
      ...opts.kubelet,
    });
  } catch (e) {
    await api.stop();
    throw e;
  }
  const controllers = opts.controllers
    ? new Controllers(api.store, opts.controllers === true ? {} : opts.controllers)
    : undefined;
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  return {
    api,
    kubelet,
    controllers,
    kubeconfig,
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    dir,
    async stop() {
      controllers?.stop();
      await kubelet.stop();
      await api.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function eventually<T>(
  what: string,
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  everyMs = 20,
): Promise<Exclude<T, false | 0 | "" | null | undefined>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as Exclude<T, false | 0 | "" | null | undefined>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`,
      );
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
