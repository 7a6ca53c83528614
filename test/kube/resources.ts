// The resource types the API server stand-in serves, with the REST facts a client relies on:
// group/version (URL prefix), plural (URL segment), kind, scope and whether `/status` is a subresource.

export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  /** Has a /status subresource: the main resource ignores status changes and /status ignores the rest. */
  status: boolean;
  shortNames?: string[];
}

export const resourceTypes: ResourceType[] = [
  { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true, status: true },
  { group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true, status: false },
  { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true, status: false },
  { group: "", version: "v1", plural: "events", kind: "Event", namespaced: true, status: false },
  {
    group: "",
    version: "v1",
    plural: "serviceaccounts",
    kind: "ServiceAccount",
    namespaced: true,
    status: false,
  },
  { group: "", version: "v1", plural: "services", kind: "Service", namespaced: true, status: true },
  {
    group: "",
    version: "v1",
    plural: "persistentvolumeclaims",
    kind: "PersistentVolumeClaim",
    namespaced: true,
    status: true,
  },
  {
    group: "",
    version: "v1",
    plural: "persistentvolumes",
    kind: "PersistentVolume",
    namespaced: false,
    status: true,
  },
  { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false, status: true },
  { group: "", version: "v1", plural: "nodes", kind: "Node", namespaced: false, status: true },
  {
    group: "storage.k8s.io",
    version: "v1",
    plural: "storageclasses",
    kind: "StorageClass",
    namespaced: false,
    status: false,
  },
  {
    group: "storage.k8s.io",
    version: "v1",
    plural: "csidrivers",
    kind: "CSIDriver",
    namespaced: false,
    status: false,
  },
  // CSINode (storage.k8s.io/v1, cluster scoped, named after its node, no status): the kubelet creates
  // it and the node-driver-registrar's registration adds spec.drivers[] entries (k8s.io/api storage/v1
  // types.go CSINodeSpec.Drivers). Read by `juicefs-csi doctor`.
  {
    group: "storage.k8s.io",
    version: "v1",
    plural: "csinodes",
    kind: "CSINode",
    namespaced: false,
    status: false,
  },
  // Webhook configurations (admissionregistration.k8s.io/v1, cluster scoped, no status). Stored only:
  // this stand-in calls no webhook.
  {
    group: "admissionregistration.k8s.io",
    version: "v1",
    plural: "mutatingwebhookconfigurations",
    kind: "MutatingWebhookConfiguration",
    namespaced: false,
    status: false,
  },
  {
    group: "admissionregistration.k8s.io",
    version: "v1",
    plural: "validatingwebhookconfigurations",
    kind: "ValidatingWebhookConfiguration",
    namespaced: false,
    status: false,
  },
  { group: "batch", version: "v1", plural: "jobs", kind: "Job", namespaced: true, status: true },
  {
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    kind: "Lease",
    namespaced: true,
    status: false,
  },
  {
    group: "events.k8s.io",
    version: "v1",
    plural: "events",
    kind: "Event",
    namespaced: true,
    status: false,
  },
];

export const apiVersionOf = (t: ResourceType): string => (t.group ? `${t.group}/${t.version}` : t.version);

/** Store key of a resource type (events.k8s.io events are kept apart: no conversion between the two schemas). */
export const storeKeyOf = (t: ResourceType): string => `${t.group}/${t.plural}`;

export function findResource(group: string, version: string, plural: string): ResourceType | undefined {
  return resourceTypes.find((t) => t.group === group && t.version === version && t.plural === plural);
}
