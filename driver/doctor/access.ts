// What `juicefs-csi doctor` (and `collect`) read from the Kubernetes API, as the user running them.
// The chart's optional ClusterRole (`doctor.rbac.create`) grants exactly this; the chart test compares
// both, and the doctor scenarios check that the doctor calls nothing else.
import type { ApiAccessRule } from "../juicefs/constants.ts";
import { globalConfigName } from "../juicefs/global-config.ts";

export const doctorAccess: readonly ApiAccessRule[] = [
  {
    apiGroup: "",
    resource: "pods",
    verbs: ["get", "list"],
    scope: "cluster",
    why: "the app pod, pods using a claim, the driver's pods and Mount Pods (label selectors)",
  },
  {
    apiGroup: "",
    resource: "pods/log",
    verbs: ["get"],
    scope: "cluster",
    why: "last log lines of Mount Pods and sidecars that are not healthy",
  },
  {
    apiGroup: "",
    resource: "persistentvolumeclaims",
    verbs: ["get", "list"],
    scope: "cluster",
    why: "the pod's claims: phase, StorageClass, annotations",
  },
  {
    apiGroup: "",
    resource: "persistentvolumes",
    verbs: ["list"],
    scope: "cluster",
    why: "driver, volume handle, attributes, mount options, Secret reference",
  },
  {
    apiGroup: "",
    resource: "events",
    verbs: ["list"],
    scope: "cluster",
    why: "events of the pod, claim, Mount Pods and controllers (FailedMount, FailedCreate, ProvisioningFailed)",
  },
  {
    apiGroup: "",
    resource: "namespaces",
    verbs: ["list"],
    scope: "cluster",
    why: "the juicefs.com/enable-injection label (sidecar mode)",
  },
  {
    apiGroup: "storage.k8s.io",
    resource: "storageclasses",
    verbs: ["list"],
    scope: "cluster",
    why: "provisioner, binding mode, parameters",
  },
  {
    apiGroup: "storage.k8s.io",
    resource: "csinodes",
    verbs: ["list"],
    scope: "cluster",
    why: "is csi.juicefs.com registered on the pod's node",
  },
  {
    apiGroup: "",
    resource: "configmaps",
    verbs: ["get"],
    scope: "cluster",
    resourceNames: [globalConfigName],
    why: "the global config (mountPodPatch), to tell Mount Pods started under another one",
  },
  {
    apiGroup: "",
    resource: "nodes",
    verbs: ["get"],
    scope: "cluster",
    why: "labels of Mount Pods' nodes, when a mountPodPatch entry selects nodes",
  },
  {
    apiGroup: "admissionregistration.k8s.io",
    resource: "mutatingwebhookconfigurations",
    verbs: ["list"],
    scope: "cluster",
    why: "is the JuiceFS webhook configured",
  },
  {
    apiGroup: "admissionregistration.k8s.io",
    resource: "validatingwebhookconfigurations",
    verbs: ["list"],
    scope: "cluster",
    why: "is the JuiceFS webhook configured",
  },
];

/**
 * Optional (`doctor.rbac.readSecrets`): the node-publish Secret is read to check its keys and values
 * with the driver's own validation; values never leave the process (only key names and the
 * validation's redacted findings are kept). Without it the Secret link says "cannot tell".
 */
export const doctorSecretAccess: ApiAccessRule = {
  apiGroup: "",
  resource: "secrets",
  verbs: ["get"],
  scope: "cluster",
  why: "the volume's Secret: keys present and valid (values are never printed or kept)",
};

/**
 * Optional (`doctor.rbac.warmup`): `juicefs-csi warmup` runs `juicefs warmup` in the client containers
 * (Mount Pods in the driver's namespace, sidecars in app namespaces) through pods/exec, or, when no
 * client runs, in a Job in the claim's namespace that mounts the claim (created, polled with get, its
 * pods listed and its pod's log read — both in doctorAccess — then deleted). Everything else it reads
 * is in doctorAccess. Separate because exec in a Mount Pod and creating pods through Jobs are more
 * than reading.
 */
export const doctorWarmupAccess: readonly ApiAccessRule[] = [
  {
    apiGroup: "",
    resource: "pods/exec",
    verbs: ["create"],
    scope: "cluster",
    why: "juicefs warmup in the Mount Pod or sidecar that serves the claim (cache warm-up)",
  },
  {
    apiGroup: "batch",
    resource: "jobs",
    verbs: ["create", "get", "delete"],
    scope: "cluster",
    why: "with no running client, the warm-up Job in the claim's namespace that mounts the claim",
  },
];
