// What one signed-in user may see of the cache (token mode): the namespaces where they may list pods,
// claims and events, and the cluster-scoped kinds they may list. Everything else is left out of the
// objects the doctor judges, and recorded as a read failure where the engine knows the kind, so a link
// that needed it says "cannot tell" (as `juicefs-csi doctor` run with that user's kubeconfig would),
// never "ok" and never a name from a namespace the user cannot read.
import type { Access } from "./auth.ts";
import type { ClusterObjects } from "./cache.ts";

export type May = (a: Access) => Promise<boolean>;

export interface Visible {
  /** Stable key of this view (for the per-scope memo). */
  key: string;
  namespaces: ReadonlySet<string>;
  pvs: boolean;
  storageClasses: boolean;
  csiNodes: boolean;
  nodes: boolean;
  webhooks: boolean;
  /** Namespaces whose Secrets' digests (key names, settings check) the user may see: get secrets there. */
  secrets: ReadonlySet<string>;
}

/** Every namespace the cache knows of. */
function namespacesOf(o: ClusterObjects): string[] {
  const out = new Set<string>();
  for (const n of o.namespaces) if (n.metadata?.name) out.add(n.metadata.name);
  for (const p of o.pods) if (p.metadata?.namespace) out.add(p.metadata.namespace);
  for (const c of o.pvcs) if (c.metadata?.namespace) out.add(c.metadata.namespace);
  return [...out].sort();
}

export async function visibleTo(o: ClusterObjects, may: May): Promise<Visible> {
  const namespaces = new Set<string>();
  const secrets = new Set<string>();
  // Four reviews per namespace (cached 30 s by the authorizer), 16 namespaces at a time.
  const all = namespacesOf(o);
  for (let i = 0; i < all.length; i += 16)
    await Promise.all(
      all.slice(i, i + 16).map(async (ns) => {
        const [pods, pvcs, events, secret] = await Promise.all([
          may({ verb: "list", resource: "pods", namespace: ns }),
          may({ verb: "list", resource: "persistentvolumeclaims", namespace: ns }),
          may({ verb: "list", resource: "events", namespace: ns }),
          may({ verb: "get", resource: "secrets", namespace: ns }),
        ]);
        if (pods && pvcs && events) namespaces.add(ns);
        if (secret) secrets.add(ns);
      }),
    );
  const [pvs, storageClasses, csiNodes, nodes, mutating, validating] = await Promise.all([
    may({ verb: "list", resource: "persistentvolumes" }),
    may({ verb: "list", resource: "storageclasses", group: "storage.k8s.io" }),
    may({ verb: "list", resource: "csinodes", group: "storage.k8s.io" }),
    may({ verb: "list", resource: "nodes" }),
    may({ verb: "list", resource: "mutatingwebhookconfigurations", group: "admissionregistration.k8s.io" }),
    may({ verb: "list", resource: "validatingwebhookconfigurations", group: "admissionregistration.k8s.io" }),
  ]);
  const webhooks = mutating && validating;
  const key = JSON.stringify([
    [...namespaces].sort(),
    [...secrets].sort(),
    pvs,
    storageClasses,
    csiNodes,
    nodes,
    webhooks,
  ]);
  return { key, namespaces, pvs, storageClasses, csiNodes, nodes, webhooks, secrets };
}

const notPermitted = (what: string) => `not shown: your RBAC does not let you list ${what}`;

/** The cache as the user may see it (see the header). */
export function scopeObjects(
  o: ClusterObjects,
  v: Visible,
  driverNamespaces: readonly string[],
): ClusterObjects {
  const inNs = (x: { metadata?: { namespace?: string } }) => v.namespaces.has(x.metadata?.namespace ?? "");
  const failures = [...o.failures];
  const driverHidden = driverNamespaces.filter((ns) => !v.namespaces.has(ns));
  if (driverHidden.length) {
    const why = notPermitted(`pods in namespace ${driverHidden.join(", ")}`);
    failures.push({ what: "driverPods", message: why }, { what: "mountPods", message: why });
  }
  if (!v.storageClasses) failures.push({ what: "storageclasses", message: notPermitted("storageclasses") });
  if (!v.csiNodes) failures.push({ what: "csinodes", message: notPermitted("csinodes") });
  if (!v.webhooks) failures.push({ what: "webhooks", message: notPermitted("webhook configurations") });
  const hiddenSecrets = o.secrets.some((s) => !v.secrets.has(s.namespace));
  if (hiddenSecrets)
    failures.push({ what: "secrets", message: "not shown: your RBAC does not let you get that Secret" });
  const pvs = v.pvs ? o.pvs : [];
  const secretOfPv = new Map(
    pvs.map((pv) => [pv.metadata?.name ?? "", pv.spec?.csi?.nodePublishSecretRef?.namespace ?? "default"]),
  );
  return {
    pods: o.pods.filter(inNs),
    pvcs: o.pvcs.filter(inNs),
    pvs,
    storageClasses: v.storageClasses ? o.storageClasses : [],
    namespaces: o.namespaces.filter((n) => v.namespaces.has(n.metadata?.name ?? "")),
    nodes: v.nodes ? o.nodes : [],
    csiNodes: v.csiNodes ? o.csiNodes : [],
    events: o.events.filter((e) =>
      v.namespaces.has(e.involvedObject?.namespace ?? e.metadata?.namespace ?? ""),
    ),
    mutating: v.webhooks ? o.mutating : [],
    validating: v.webhooks ? o.validating : [],
    secrets: o.secrets.filter((s) => v.secrets.has(s.namespace)),
    settings: o.settings.filter((s) => v.secrets.has(secretOfPv.get(s.volume) ?? "")),
    failures,
  };
}
