// Prometheus metrics of the webhook: per route and outcome request counts and latency (millisecond
// buckets), lookup cache sizes and hit/miss counts, failures answered by the policy, cert reloads.
import { Counter, Gauge, type Registry } from "prom-client";
import { fastBuckets, metricsPrefix } from "../lib/metrics.ts";
import type { LookupKind, LookupStats } from "./lookup.ts";

export type Outcome = "allowed" | "patched" | "denied" | "invalid" | "failed";

export interface WebhookMetrics {
  observe(route: string, outcome: Outcome, seconds: number): void;
  failure(route: string, kind: string): void;
  certReload(result: "ok" | "error"): void;
}

const kinds: LookupKind[] = ["pvc", "pv", "storageClass", "secret", "namespace"];

interface Series {
  labels: { route: string; outcome: string };
  count: number;
  sum: number;
  /** Per-bucket (not cumulative) counts; the last slot is +Inf. */
  buckets: number[];
}

/** Metric objects the registry formats (the shape prom-client's own metrics return from get()). */
interface RegisteredMetric {
  name: string;
  help: string;
  type: "counter" | "histogram";
  aggregator: "sum";
  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] };
  reset(): void;
}
interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/**
 * Request count and latency per route and outcome, kept in plain counters: prom-client hashes the
 * label set on every observe(), which cost ~15% of a fast-path review. The registry reads these when
 * scraped and formats them exactly like prom-client's own counter and histogram.
 */
function requestMetrics(prefix: string, registry: Registry) {
  const series = new Map<string, Series>();
  const seriesFor = (route: string, outcome: string): Series => {
    const k = `${route}\u0000${outcome}`;
    let s = series.get(k);
    if (!s) {
      s = {
        labels: { route, outcome },
        count: 0,
        sum: 0,
        buckets: new Array(fastBuckets.length + 1).fill(0),
      };
      series.set(k, s);
    }
    return s;
  };
  const reset = () => {
    for (const s of series.values()) {
      s.count = 0;
      s.sum = 0;
      s.buckets.fill(0);
    }
  };
  const counter: RegisteredMetric = {
    name: `${prefix}requests_total`,
    help: "Admission reviews answered, by route and outcome",
    type: "counter",
    aggregator: "sum",
    get() {
      const values = [...series.values()].map((s) => ({ value: s.count, labels: s.labels }));
      return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
    },
    reset,
  };
  const histogram: RegisteredMetric = {
    name: `${prefix}request_duration_seconds`,
    help: "Time to answer an admission review, by route and outcome",
    type: "histogram",
    aggregator: "sum",
    get() {
      const values: MetricValue[] = [];
      for (const s of series.values()) {
        let acc = 0;
        fastBuckets.forEach((le, i) => {
          acc += s.buckets[i]!;
          values.push({ value: acc, labels: { le, ...s.labels }, metricName: `${this.name}_bucket` });
        });
        values.push({
          value: s.count,
          labels: { le: "+Inf", ...s.labels },
          metricName: `${this.name}_bucket`,
        });
        values.push({ value: s.sum, labels: s.labels, metricName: `${this.name}_sum` });
        values.push({ value: s.count, labels: s.labels, metricName: `${this.name}_count` });
      }
      return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
    },
    reset,
  };
  registry.registerMetric(counter as never);
  registry.registerMetric(histogram as never);
  return {
    seriesFor,
    observe(s: Series, seconds: number) {
      s.count++;
      s.sum += seconds;
      let i = 0;
      while (i < fastBuckets.length && seconds > fastBuckets[i]!) i++;
      s.buckets[i]!++;
    },
  };
}

export function createWebhookMetrics(registry: Registry, stats?: () => LookupStats): WebhookMetrics {
  const p = `${metricsPrefix}webhook_`;
  const requests = requestMetrics(p, registry);
  const failures = new Counter({
    name: `${p}failures_total`,
    help: "Reviews answered by the failure policy (budget exceeded, lookup failed, internal error)",
    labelNames: ["route", "kind"],
    registers: [registry],
  });
  const reloads = new Counter({
    name: `${p}certificate_reloads_total`,
    help: "Serving certificate reloads, by result",
    labelNames: ["result"],
    registers: [registry],
  });
  if (stats) {
    new Gauge({
      name: `${p}cache_objects`,
      help: "Objects held in the lookup caches, by kind",
      labelNames: ["kind"],
      registers: [registry],
      collect() {
        const s = stats();
        for (const k of kinds) this.set({ kind: k }, s.sizes[k]);
      },
    });
    new Gauge({
      name: `${p}cache_lookups`,
      help: "Lookups since start by kind and result (hit: cache, miss: live read, error: live read failed, absent: known not to exist, no read)",
      labelNames: ["kind", "result"],
      registers: [registry],
      collect() {
        const s = stats();
        for (const k of kinds) {
          this.set({ kind: k, result: "hit" }, s.hits[k]);
          this.set({ kind: k, result: "miss" }, s.misses[k]);
          this.set({ kind: k, result: "error" }, s.errors[k]);
          this.set({ kind: k, result: "absent" }, s.absentHits[k]);
        }
      },
    });
  }
  // Pre-create the common series so dashboards see zeros rather than gaps; keep them for the hot path
  // in plain objects (no key string to build and hash per review).
  const outcomes: Outcome[] = ["allowed", "patched", "denied", "invalid", "failed"];
  const bound: Record<string, Record<string, Series>> = Object.create(null);
  for (const route of ["mutate", "validate"]) {
    bound[route] = Object.create(null);
    for (const outcome of outcomes) bound[route]![outcome] = requests.seriesFor(route, outcome);
  }
  return {
    observe(route, outcome, seconds) {
      const s = bound[route]?.[outcome] ?? requests.seriesFor(route, outcome);
      requests.observe(s, seconds);
    },
    failure(route, kind) {
      failures.inc({ route, kind });
    },
    certReload(result) {
      reloads.inc({ result });
    },
  };
}
