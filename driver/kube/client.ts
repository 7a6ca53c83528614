// Thin adapters over @kubernetes/client-node for what Mount Pod mode calls: pods, secrets, events,
// jobs, persistent volumes. Errors keep client-node's ApiException (`code`); helpers classify them.
import * as k8s from "@kubernetes/client-node";

export interface Kube {
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  batch: k8s.BatchV1Api;
}

/** Clients from a kubeconfig file, or the in-cluster service account when none is given. */
export function kubeFromConfig(kubeconfig?: string): Kube {
  const kc = new k8s.KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  return { kc, core: kc.makeApiClient(k8s.CoreV1Api), batch: kc.makeApiClient(k8s.BatchV1Api) };
}

export const statusCode = (e: unknown): number | undefined => (e as { code?: number } | undefined)?.code;
export const isNotFound = (e: unknown): boolean => statusCode(e) === 404;
export const isConflict = (e: unknown): boolean => statusCode(e) === 409;

/** The Status message of a failed call (client-node puts the whole HTTP exchange in `message`). */
export function apiMessage(e: unknown): string {
  const body = (e as { body?: unknown }).body;
  if (typeof body === "string") {
    try {
      const s = JSON.parse(body) as { message?: string };
      if (s.message) return s.message;
    } catch {}
  }
  return (e as Error).message?.split("\n")[0] ?? String(e);
}

/** An API error in one line: "<code>: <the server's Status message>" (or the client's message). */
export function describeApiError(e: unknown): string {
  const code = (e as { code?: number }).code;
  const msg = apiMessage(e);
  return code ? `${code}: ${msg}` : msg;
}

export const mergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

/**
 * GET /version within `timeoutMs` (the request is aborted at the deadline): whether the API server
 * answers this client's credentials. A non-resource URL that every authenticated identity may read
 * (the default system:discovery / system:public-info-viewer roles), so it needs no RBAC rule.
 */
export async function checkApiServer(kc: k8s.KubeConfig, timeoutMs: number): Promise<void> {
  const api = kc.makeApiClient(k8s.VersionApi);
  const deadline: k8s.ConfigurationOptions<k8s.ObservableMiddleware> = {
    middleware: [
      {
        pre: (ctx: k8s.RequestContext) => {
          ctx.setSignal(AbortSignal.timeout(timeoutMs));
          return new k8s.Observable(Promise.resolve(ctx));
        },
        post: (r: k8s.ResponseContext) => new k8s.Observable(Promise.resolve(r)),
      },
    ],
    middlewareMergeStrategy: "append",
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    // The race also bounds what the abort signal cannot (e.g. a slow TLS handshake before the request).
    await Promise.race([
      api.getCode(undefined, deadline),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export interface ObjectRef {
  kind: string;
  name: string;
  namespace?: string | undefined;
  uid?: string | undefined;
  apiVersion?: string;
}

/** Writes core/v1 Events. A failed write is reported to `onError`, never thrown: events are best effort. */
export class EventRecorder {
  readonly #core: k8s.CoreV1Api;
  readonly #component: string;
  readonly #host: string;
  readonly #onError: (e: unknown) => void;

  constructor(
    core: k8s.CoreV1Api,
    component: string,
    host: string,
    onError: (e: unknown) => void = () => {},
  ) {
    this.#core = core;
    this.#component = component;
    this.#host = host;
    this.#onError = onError;
  }

  async record(obj: ObjectRef, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    const namespace = obj.namespace ?? "default";
    const now = new Date();
    try {
      await this.#core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${obj.name}.` },
          involvedObject: {
            kind: obj.kind,
            name: obj.name,
            namespace: obj.namespace,
            ...(obj.uid ? { uid: obj.uid } : {}),
            apiVersion: obj.apiVersion ?? "v1",
          },
          type,
          reason,
          // The API refuses messages over 1 KiB in events.k8s.io; keep core events as short.
          message: message.length > 1024 ? `${message.slice(0, 1021)}...` : message,
          source: { component: this.#component, host: this.#host },
          reportingComponent: this.#component,
          reportingInstance: this.#host,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (e) {
      this.#onError(e);
    }
  }
}
