// What the dashboard reads from the Kubernetes API as its own ServiceAccount: the chart's ClusterRole
// `<fullname>-dashboard` grants exactly this (test/chart/dashboard.test.ts), and the dashboard test
// checks that the running dashboard calls nothing else (the stand-in's access log).
import type { ApiAccessRule } from "../driver/juicefs/constants.ts";

const read = ["get", "list", "watch"] as const;
const cluster = "cluster" as const;

export const dashboardAccess: readonly ApiAccessRule[] = [
  ...["pods", "persistentvolumeclaims", "persistentvolumes", "events", "namespaces", "nodes"].map(
    (resource) => ({
      apiGroup: "",
      resource,
      verbs: read,
      scope: cluster,
      why: "informers (cache.ts): list, then watch; no API call per page view",
    }),
  ),
  { apiGroup: "", resource: "pods/log", verbs: ["get"], scope: cluster, why: "the log viewer (logs.ts)" },
  ...["storageclasses", "csinodes"].map((resource) => ({
    apiGroup: "storage.k8s.io",
    resource,
    verbs: read,
    scope: cluster,
    why: "informers: provisioner and parameters; is the driver registered on a node",
  })),
  ...["mutatingwebhookconfigurations", "validatingwebhookconfigurations"].map((resource) => ({
    apiGroup: "admissionregistration.k8s.io",
    resource,
    verbs: read,
    scope: cluster,
    why: "informers: is the JuiceFS webhook configured",
  })),
];

/** `dashboard.readSecrets` (default on): the volumes' Secrets, reduced to key names and the settings check. */
export const dashboardSecretAccess: ApiAccessRule = {
  apiGroup: "",
  resource: "secrets",
  verbs: ["get"],
  scope: cluster,
  why: "the Secret link and the settings check (values never leave the process)",
};

/** `dashboard.auth.mode: token`: who the user is, and whether they may read what a view shows. */
export const dashboardTokenAccess: readonly ApiAccessRule[] = [
  {
    apiGroup: "authentication.k8s.io",
    resource: "tokenreviews",
    verbs: ["create"],
    scope: cluster,
    why: "token-auth.ts",
  },
  {
    apiGroup: "authorization.k8s.io",
    resource: "subjectaccessreviews",
    verbs: ["create"],
    scope: cluster,
    why: "token-auth.ts",
  },
];
