// Prometheus metrics (prom-client). Each process builds one registry with the default process
// metrics and registers its own collectors on it; tests make their own registries so they never
// share state.
import { collectDefaultMetrics, Registry } from "prom-client";

export const metricsPrefix = "juicefs_csi_";

export function createRegistry(
  opts: { defaultMetrics?: boolean; labels?: Record<string, string> } = {},
): Registry {
  const registry = new Registry();
  if (opts.labels) registry.setDefaultLabels(opts.labels);
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: metricsPrefix });
  return registry;
}

/** Histogram buckets in seconds fit for work measured in milliseconds (admission, bind mounts). */
export const fastBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Histogram buckets in seconds for slow operations (client start, Mount Pod readiness). */
export const slowBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
