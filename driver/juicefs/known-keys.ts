// Every key a user can write into a StorageClass parameter, a PV volumeAttribute, a PVC annotation or
// the JuiceFS Secret: the ones this driver honours, the ones the Go JuiceFS CSI Driver (the reference
// driver) documents that we do not (each with what to use instead), and the ones Kubernetes itself puts
// into a volume context. Anything else is a typo or a foreign key: it gets the nearest known key
// suggested, whether it has the `juicefs/` prefix or not.
//
// Sources for the reference driver's keys: juicedata/juicefs-csi-driver pkg/common/common.go (the
// `juicefs/...` constants), pkg/config/setting.go (Secret fields, `secretFinalizer`),
// pkg/config/command.go (auth/format keys and the accesskey2/secretkey2 aliases).
import { keys, secretKeys } from "./constants.ts";

/** Secret keys for encryption and the enterprise edition's second bucket / offline config. */
export const extraSecretKeys = {
  /** PEM private key; community `juicefs format --encrypt-rsa-key`, enterprise `juicefs mount --rsa-key`. */
  encryptRsaKey: "encrypt_rsa_key",
  /** Passphrase of that key; the client reads it from the JFS_RSA_PASSPHRASE environment variable. */
  passphrase: "passphrase",
  bucket2: "bucket2",
  accessKey2: "access-key2",
  secretKey2: "secret-key2",
  /** Enterprise client config file (`<name>.conf`) used instead of `juicefs auth`. */
  initConfig: "initconfig",
  legacyAccessKey2: "accesskey2",
  legacySecretKey2: "secretkey2",
} as const;

/** Reference-driver parameter keys this driver also honours (same meaning). */
export const goHonouredKeys = {
  mountServiceAccount: "juicefs/mount-service-account",
  controllerExpandSecretName: "csi.storage.k8s.io/controller-expand-secret-name",
  controllerExpandSecretNamespace: "csi.storage.k8s.io/controller-expand-secret-namespace",
} as const;

/** Reference-driver keys this driver does not support, with what to use instead. */
export const unsupportedKeys: Readonly<Record<string, string>> = {
  "juicefs/mount-cache-emptydir":
    "use juicefs/mount-cache-pvc (a PersistentVolumeClaim as cache) or the cache-dir mount option (host directories)",
  "juicefs/mount-cache-inline-volume":
    "use juicefs/mount-cache-pvc (a PersistentVolumeClaim as cache) or the cache-dir mount option",
  secretFinalizer:
    "remove it: the per-volume Secret this driver makes for the client is owned by the PersistentVolume and goes with it, and your own Secret is only read",
  "juicefs/mount-share-mode":
    "remove it: each volume gets its own client on a node (one Mount Pod per volume and settings)",
  "juicefs/controller-quota-set":
    "remove it: the controller sets the quota from the claim's size when the volume is created",
};

/** Keys Kubernetes (kubelet podInfoOnMount, external-provisioner) puts into parameters and volume contexts. */
const kubernetesKeys: readonly string[] = [
  "csi.storage.k8s.io/pod.name",
  "csi.storage.k8s.io/pod.namespace",
  "csi.storage.k8s.io/pod.uid",
  "csi.storage.k8s.io/serviceAccount.name",
  "csi.storage.k8s.io/serviceAccount.tokens",
  "csi.storage.k8s.io/ephemeral",
  "csi.storage.k8s.io/pv/name",
  "csi.storage.k8s.io/pvc/name",
  "csi.storage.k8s.io/pvc/namespace",
  "csi.storage.k8s.io/fstype",
  "csi.storage.k8s.io/node-stage-secret-name",
  "csi.storage.k8s.io/node-stage-secret-namespace",
  "csi.storage.k8s.io/controller-publish-secret-name",
  "csi.storage.k8s.io/controller-publish-secret-namespace",
  "csi.storage.k8s.io/node-expand-secret-name",
  "csi.storage.k8s.io/node-expand-secret-namespace",
  "storage.kubernetes.io/csiProvisionerIdentity",
];

/** Every parameter / volumeAttribute / annotation key that is not a typo. */
export const knownParameterKeys: ReadonlySet<string> = new Set<string>([
  ...Object.values(keys),
  ...Object.values(goHonouredKeys),
  ...Object.keys(unsupportedKeys),
  ...kubernetesKeys,
]);

/** Every Secret key that is not a typo. */
export const knownSecretKeys: ReadonlySet<string> = new Set<string>([
  ...Object.values(secretKeys),
  ...Object.values(extraSecretKeys),
]);

/**
 * Optimal string alignment distance (Levenshtein plus swapping two neighbours, the commonest typo).
 * Small inputs only (keys), so the O(n·m) table is fine.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  return d[a.length]![b.length]!;
}

/**
 * The known key nearest to `key` (case-insensitive), when it is near enough to be a typo: at most a third
 * of the key's length in edits (and at least 1), or the same key up to case and "-"/"_"/".".
 */
export function nearestKey(key: string, known: Iterable<string>): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_.]/g, "");
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    if (norm(k) === norm(key)) return k;
    const dist = editDistance(key.toLowerCase(), k.toLowerCase());
    if (dist < bestD) {
      bestD = dist;
      best = k;
    }
  }
  const limit = Math.max(1, Math.floor(key.length / 3));
  return bestD <= limit ? best : undefined;
}

/** The warning for an unknown key (`subject` names the object and the key): the nearest known key when there is one. */
export function unknownKeyMessage(subject: string, key: string, known: Iterable<string>): string {
  const near = nearestKey(key, known);
  return near
    ? `${subject} is not a key this driver knows; did you mean "${near}"?`
    : `${subject} is not a key this driver knows and is ignored (see the README's list of parameters)`;
}
