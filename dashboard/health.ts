// The driver's own health, from the cache: node plugins per node (ready, restarts, registered in the
// node's CSINode), the controller and webhook pods, the JuiceFS webhook configurations (failure
// policy, target, the CA bundle's expiry) and the webhook's recent refusals (the FailedCreate events
// controllers record with the webhook's message), plus Mount Pod counts. Pure.
import { X509Certificate } from "node:crypto";
import type { V1Pod } from "@kubernetes/client-node";
import { driverName } from "../driver/juicefs/index.ts";
import type { ClusterObjects } from "./cache.ts";
import { isDriverPod, isMountPod, isReady, restarts } from "./model.ts";

export interface PodHealth {
  namespace: string;
  name: string;
  component: string;
  node: string;
  ready: boolean;
  restarts: number;
  lastTermination?: string;
}

export interface NodeHealth {
  node: string;
  plugin?: PodHealth;
  registered: boolean;
  mountPods: number;
  mountPodsNotReady: number;
}

export interface WebhookHealth {
  configuration: string;
  kind: "mutating" | "validating";
  webhook: string;
  failurePolicy: string;
  target: string;
  timeoutSeconds?: number;
  /** The CA bundle's first certificate: subject and expiry. */
  ca?: { subject: string; notAfter: string; daysLeft: number };
  caProblem?: string;
}

export interface Refusal {
  namespace: string;
  object: string;
  message: string;
  count: number;
  last: string;
}

export interface Health {
  nodes: NodeHealth[];
  pods: PodHealth[];
  webhooks: WebhookHealth[];
  refusals: Refusal[];
  mountPods: { total: number; ready: number; restarting: number };
}

const refusal = /admission webhook "[^"]*juicefs[^"]*" denied the request/;

function podHealth(p: V1Pod): PodHealth {
  const last = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])]
    .map((s) => s.lastState?.terminated)
    .find(Boolean);
  return {
    namespace: p.metadata?.namespace ?? "",
    name: p.metadata?.name ?? "",
    component: p.metadata?.labels?.["app.kubernetes.io/component"] ?? "",
    node: p.spec?.nodeName ?? "",
    ready: isReady(p),
    restarts: restarts(p),
    ...(last
      ? { lastTermination: `${last.reason ?? ""} exit ${last.exitCode} at ${String(last.finishedAt ?? "")}` }
      : {}),
  };
}

function caOf(bundle: string | undefined, now: Date): Pick<WebhookHealth, "ca" | "caProblem"> {
  if (!bundle) return { caProblem: "no caBundle (the API server cannot verify the webhook)" };
  try {
    const pem = Buffer.from(bundle, "base64").toString("utf8");
    const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
    if (!first) return { caProblem: "caBundle holds no PEM certificate" };
    const c = new X509Certificate(first);
    const notAfter = new Date(c.validTo);
    return {
      ca: {
        subject: c.subject.replace(/\n/g, ", "),
        notAfter: notAfter.toISOString(),
        daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / 86_400_000),
      },
    };
  } catch (e) {
    return { caProblem: `caBundle cannot be read: ${(e as Error).message}` };
  }
}

export function driverHealth(o: ClusterObjects, now: Date): Health {
  const driverPods = o.pods.filter(isDriverPod);
  const mountPods = o.pods.filter(isMountPod);
  const nodeNames = new Set<string>([
    ...o.nodes.map((n) => n.metadata?.name ?? ""),
    ...driverPods
      .filter((p) => p.metadata?.labels?.["app.kubernetes.io/component"] === "node")
      .map((p) => p.spec?.nodeName ?? ""),
  ]);
  nodeNames.delete("");
  const nodes: NodeHealth[] = [...nodeNames].sort().map((node) => {
    const plugin = driverPods.find(
      (p) => p.spec?.nodeName === node && p.metadata?.labels?.["app.kubernetes.io/component"] === "node",
    );
    const csiNode = o.csiNodes.find((c) => c.metadata?.name === node);
    const mps = mountPods.filter((p) => p.spec?.nodeName === node);
    return {
      node,
      ...(plugin ? { plugin: podHealth(plugin) } : {}),
      registered: !!csiNode?.spec?.drivers?.some((d) => d.name === driverName),
      mountPods: mps.length,
      mountPodsNotReady: mps.filter((p) => !isReady(p)).length,
    };
  });
  const webhooks: WebhookHealth[] = [];
  for (const [kind, list] of [
    ["mutating", o.mutating],
    ["validating", o.validating],
  ] as const)
    for (const cfg of list)
      for (const w of cfg.webhooks ?? []) {
        if (!/juicefs/.test(`${cfg.metadata?.name} ${w.name}`)) continue;
        const svc = w.clientConfig?.service;
        webhooks.push({
          configuration: cfg.metadata?.name ?? "",
          kind,
          webhook: w.name,
          failurePolicy: w.failurePolicy ?? "Fail",
          target: svc
            ? `service ${svc.namespace}/${svc.name}:${svc.port ?? 443}${svc.path ?? ""}`
            : (w.clientConfig?.url ?? ""),
          ...(w.timeoutSeconds !== undefined ? { timeoutSeconds: w.timeoutSeconds } : {}),
          ...caOf(w.clientConfig?.caBundle, now),
        });
      }
  const refusals: Refusal[] = o.events
    .filter((e) => e.reason === "FailedCreate" && refusal.test(e.message ?? ""))
    .map((e) => ({
      namespace: e.involvedObject?.namespace ?? e.metadata?.namespace ?? "",
      object: `${(e.involvedObject?.kind ?? "").toLowerCase()}/${e.involvedObject?.name ?? ""}`,
      message: (e.message ?? "").replace(/^Error creating: /, ""),
      count: e.count ?? 1,
      last: String(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? ""),
    }))
    .sort((a, b) => Date.parse(b.last) - Date.parse(a.last))
    .slice(0, 20);
  return {
    nodes,
    pods: driverPods
      .filter((p) => p.metadata?.labels?.["app.kubernetes.io/component"] !== "node")
      .map(podHealth),
    webhooks,
    refusals,
    mountPods: {
      total: mountPods.length,
      ready: mountPods.filter(isReady).length,
      restarting: mountPods.filter((p) => restarts(p) > 0).length,
    },
  };
}
