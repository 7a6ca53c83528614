// Configuration of the webhook. The --config file is the driver configuration file (the chart's
// ConfigMap): its top-level DriverConfig keys are passed to the JuiceFS domain unchanged, and the
// webhook reads its own settings from the `webhook:` section. Unknown keys are ignored so the driver
// and the webhook can grow the file independently.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import type { DriverConfig } from "../driver/juicefs/index.ts";
import { version } from "../lib/version.ts";

export type FailurePolicy = "Fail" | "Ignore";
export type MountMode = "sidecar" | "pod" | "process";

export interface WebhookSettings {
  /**
   * sidecar: inject the JuiceFS client into pods. pod / process: the node plugin mounts; the webhook
   * only adds mountPropagation: HostToContainer so a recovered mount reaches running containers.
   */
  mountMode: MountMode;
  /** Native sidecar (init container with restartPolicy Always): true, false, or "auto" (Kubernetes >= 1.29). */
  nativeSidecar: boolean | "auto";
  /**
   * Inject classic sidecars (first app containers gated by postStart) where native ones cannot run.
   * Off by default: the kubelet starts the app even when the client failed (see inject.ts classicRisk).
   */
  allowClassicSidecar: boolean;
  /** Sidecar mode: most JuiceFS clients per pod (inject.ts defaultMaxClientsPerPod). */
  maxClientsPerPod: number;
  /** What to answer when a review cannot be decided within the budget or a lookup fails. */
  failurePolicy: FailurePolicy;
  /** Total time a review may take, in ms; keep it below the webhook configuration's timeoutSeconds. */
  budgetMs: number;
  /** Deadline of one live API read on a cache miss, in ms. */
  liveReadTimeoutMs: number;
  /** Only inject into namespaces labelled juicefs.com/enable-injection: "true" (sidecar mode). */
  requireNamespaceLabel: boolean;
  /** Secret read-through cache: refresh entries older than this in the background (ms). */
  secretRefreshMs: number;
  /** Drop Secret cache entries unused for this long (ms). */
  secretEvictMs: number;
  /** How often the TLS files are checked for a new certificate (ms). */
  certCheckIntervalMs: number;
  /**
   * builtin: the webhook's own small REST client (in-cluster service account, kubeconfig with token or
   * client certificate). client-node: @kubernetes/client-node (every kubeconfig auth plugin; ~50 MB more RSS).
   */
  kubeClient: "builtin" | "client-node";
  /**
   * This product's image (the chart sets $JUICEFS_CSI_IMAGE to the webhook's own): the init container
   * that delivers a Secret's `envs` to a sidecar runs it. Default juicedata/juicefs-csi:<version>.
   */
  productImage: string;
}

export interface WebhookConfig {
  driver: DriverConfig;
  webhook: WebhookSettings;
}

/** Sidecar mode: the default cap on JuiceFS clients per pod (why: inject.ts; the chart's value must match). */
export const defaultMaxClientsPerPod = 4;

export const defaultWebhookSettings: WebhookSettings = {
  mountMode: "sidecar",
  nativeSidecar: "auto",
  allowClassicSidecar: false,
  maxClientsPerPod: defaultMaxClientsPerPod,
  failurePolicy: "Fail",
  budgetMs: 3000,
  liveReadTimeoutMs: 1000,
  requireNamespaceLabel: true,
  secretRefreshMs: 60_000,
  secretEvictMs: 600_000,
  certCheckIntervalMs: 10_000,
  kubeClient: "builtin",
  productImage: `juicedata/juicefs-csi:${version}`,
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Parses the configuration document (YAML or JSON text). Throws ConfigError naming the bad key.
 * The YAML parser is loaded only for text that is not JSON: memory the webhook otherwise never needs.
 */
export function parseConfig(text: string, env: NodeJS.ProcessEnv = {}): WebhookConfig {
  let doc: unknown;
  if (text.trim() === "") doc = {};
  else {
    try {
      doc = JSON.parse(text);
    } catch {
      const { parse } = createRequire(import.meta.url)("yaml") as typeof import("yaml");
      try {
        doc = parse(text);
      } catch (err) {
        throw new ConfigError(`config is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
      }
    }
  }
  return configFromDocument(doc, env);
}

export function configFromDocument(input: unknown, env: NodeJS.ProcessEnv = {}): WebhookConfig {
  let doc = input;
  if (doc === null || doc === undefined) doc = {};
  if (!isObject(doc)) throw new ConfigError("config must be a mapping");
  const w = doc.webhook ?? {};
  if (!isObject(w)) throw new ConfigError("webhook: must be a mapping");
  const s: WebhookSettings = { ...defaultWebhookSettings };
  if (env.JUICEFS_CSI_IMAGE) s.productImage = env.JUICEFS_CSI_IMAGE;
  const envMode = env.JUICEFS_MOUNT_MODE;
  const mode = w.mountMode ?? doc.mountMode ?? envMode;
  if (mode !== undefined) {
    if (mode !== "sidecar" && mode !== "pod" && mode !== "process")
      throw new ConfigError(`webhook.mountMode: "${String(mode)}" is not one of sidecar, pod, process`);
    s.mountMode = mode;
  }
  if (w.nativeSidecar !== undefined) {
    const v = w.nativeSidecar;
    if (v !== true && v !== false && v !== "auto")
      throw new ConfigError(`webhook.nativeSidecar: ${JSON.stringify(v)} is not true, false or "auto"`);
    s.nativeSidecar = v;
  }
  if (w.failurePolicy !== undefined) {
    if (w.failurePolicy !== "Fail" && w.failurePolicy !== "Ignore")
      throw new ConfigError(
        `webhook.failurePolicy: ${JSON.stringify(w.failurePolicy)} is not Fail or Ignore`,
      );
    s.failurePolicy = w.failurePolicy;
  }
  if (w.kubeClient !== undefined) {
    if (w.kubeClient !== "builtin" && w.kubeClient !== "client-node")
      throw new ConfigError(
        `webhook.kubeClient: ${JSON.stringify(w.kubeClient)} is not builtin or client-node`,
      );
    s.kubeClient = w.kubeClient;
  }
  if (w.allowClassicSidecar !== undefined) {
    if (typeof w.allowClassicSidecar !== "boolean")
      throw new ConfigError("webhook.allowClassicSidecar: must be true or false");
    s.allowClassicSidecar = w.allowClassicSidecar;
  }
  if (w.maxClientsPerPod !== undefined) {
    const n = w.maxClientsPerPod;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 64)
      throw new ConfigError(
        `webhook.maxClientsPerPod: ${JSON.stringify(n)} is not a whole number from 1 to 64 (chart value webhook.sidecar.maxClientsPerPod)`,
      );
    s.maxClientsPerPod = n;
  }
  if (w.requireNamespaceLabel !== undefined) {
    if (typeof w.requireNamespaceLabel !== "boolean")
      throw new ConfigError("webhook.requireNamespaceLabel: must be true or false");
    s.requireNamespaceLabel = w.requireNamespaceLabel;
  }
  for (const k of [
    "budgetMs",
    "liveReadTimeoutMs",
    "secretRefreshMs",
    "secretEvictMs",
    "certCheckIntervalMs",
  ] as const) {
    const v = w[k];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0)
      throw new ConfigError(`webhook.${k}: ${JSON.stringify(v)} is not a positive number of milliseconds`);
    s[k] = v;
  }
  if (s.liveReadTimeoutMs >= s.budgetMs)
    throw new ConfigError(
      `webhook.liveReadTimeoutMs (${s.liveReadTimeoutMs}) must be below webhook.budgetMs (${s.budgetMs})`,
    );
  const driver: DriverConfig = {};
  if (doc.mountImage !== undefined) {
    if (!isObject(doc.mountImage)) throw new ConfigError("mountImage: must be a mapping of edition to image");
    driver.mountImage = doc.mountImage as DriverConfig["mountImage"];
  }
  if (doc.overrides !== undefined) {
    if (!isObject(doc.overrides) || Object.values(doc.overrides).some((v) => typeof v !== "string"))
      throw new ConfigError("overrides: must be a mapping of string to string");
    driver.overrides = doc.overrides as Record<string, string>;
  }
  if (doc.pvcAnnotationKeys !== undefined) {
    if (!Array.isArray(doc.pvcAnnotationKeys) || doc.pvcAnnotationKeys.some((v) => typeof v !== "string"))
      throw new ConfigError("pvcAnnotationKeys: must be a list of strings");
    driver.pvcAnnotationKeys = doc.pvcAnnotationKeys as string[];
  }
  if (doc.hostMountRoot !== undefined) {
    if (typeof doc.hostMountRoot !== "string") throw new ConfigError("hostMountRoot: must be a string");
    driver.hostMountRoot = doc.hostMountRoot;
  }
  return { driver, webhook: s };
}

export async function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv): Promise<WebhookConfig> {
  if (!file) return parseConfig("", env);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(`--config ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    return parseConfig(text, env);
  } catch (err) {
    throw new ConfigError(`--config ${file}: ${(err as Error).message}`);
  }
}

/** Native sidecars are on by default from Kubernetes 1.29 (SidecarContainers beta, enabled by default). */
export function supportsNativeSidecars(version: { major?: string; minor?: string }): boolean {
  const major = Number.parseInt(version.major ?? "", 10);
  const minor = Number.parseInt(version.minor ?? "", 10); // "29+" on some distributions
  if (!Number.isFinite(major) || !Number.isFinite(minor)) return false;
  return major > 1 || (major === 1 && minor >= 29);
}
