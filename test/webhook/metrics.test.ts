// The webhook's request metrics: kept in plain counters for speed, exposed in Prometheus' format with
// cumulative buckets, next to prom-client's own metrics in one registry.
import t from "tap";
import { createRegistry } from "../../lib/metrics.ts";
import { createWebhookMetrics } from "../../webhook/metrics.ts";

t.test("counts and latency per route and outcome, cumulative buckets", async (t) => {
  const registry = createRegistry({ defaultMetrics: false, labels: { component: "webhook" } });
  const m = createWebhookMetrics(registry, () => ({
    sizes: { pvc: 3, pv: 2, storageClass: 1, secret: 1, namespace: 4 },
    hits: { pvc: 10, pv: 9, storageClass: 8, secret: 7, namespace: 6 },
    misses: { pvc: 1, pv: 0, storageClass: 0, secret: 1, namespace: 0 },
    errors: { pvc: 0, pv: 0, storageClass: 0, secret: 1, namespace: 0 },
    absentHits: { pvc: 5, pv: 0, storageClass: 0, secret: 0, namespace: 0 },
    absent: { pvc: 1, pv: 0, storageClass: 0, secret: 0, namespace: 0 },
  }));
  m.observe("mutate", "patched", 0.0007);
  m.observe("mutate", "patched", 0.001);
  m.observe("mutate", "patched", 0.02);
  m.observe("validate", "denied", 7);
  m.failure("mutate", "budget");
  m.certReload("ok");
  const text = await registry.metrics();
  const line = (s: string) => t.ok(text.split("\n").includes(s), s);
  line('juicefs_csi_webhook_requests_total{route="mutate",outcome="patched",component="webhook"} 3');
  line('juicefs_csi_webhook_requests_total{route="mutate",outcome="allowed",component="webhook"} 0');
  line(
    'juicefs_csi_webhook_request_duration_seconds_bucket{le="0.0005",route="mutate",outcome="patched",component="webhook"} 0',
  );
  line(
    'juicefs_csi_webhook_request_duration_seconds_bucket{le="0.001",route="mutate",outcome="patched",component="webhook"} 2',
  );
  line(
    'juicefs_csi_webhook_request_duration_seconds_bucket{le="0.025",route="mutate",outcome="patched",component="webhook"} 3',
  );
  line(
    'juicefs_csi_webhook_request_duration_seconds_bucket{le="5",route="validate",outcome="denied",component="webhook"} 0',
  );
  line(
    'juicefs_csi_webhook_request_duration_seconds_bucket{le="+Inf",route="validate",outcome="denied",component="webhook"} 1',
  );
  line(
    'juicefs_csi_webhook_request_duration_seconds_count{route="mutate",outcome="patched",component="webhook"} 3',
  );
  t.match(
    text,
    /juicefs_csi_webhook_request_duration_seconds_sum\{route="mutate",outcome="patched",component="webhook"\} 0\.0217/,
  );
  line('juicefs_csi_webhook_failures_total{route="mutate",kind="budget",component="webhook"} 1');
  line('juicefs_csi_webhook_certificate_reloads_total{result="ok",component="webhook"} 1');
  line('juicefs_csi_webhook_cache_objects{kind="namespace",component="webhook"} 4');
  line('juicefs_csi_webhook_cache_lookups{kind="secret",result="error",component="webhook"} 1');
  line('juicefs_csi_webhook_cache_lookups{kind="pvc",result="absent",component="webhook"} 5');
  t.match(text, /# TYPE juicefs_csi_webhook_request_duration_seconds histogram/);
  await registry.resetMetrics();
  t.match(
    await registry.metrics(),
    /juicefs_csi_webhook_requests_total\{route="mutate",outcome="patched",component="webhook"\} 0/,
  );
});
