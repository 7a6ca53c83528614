// The Secret step of a doctor Snapshot, shared by its two faces (cli/doctor/gather.ts reads once,
// the dashboard re-reads on a timer): each Secret a JuiceFS volume or a pending claim's StorageClass
// names is read, reduced at once to its key names (digestSecret) and checked with the driver's own
// settings parser while its values are in hand. Values never leave this function, except to
// `onValues`, which lets a caller blank them by content in free text (log lines).
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from "@kubernetes/client-node";
import { driverName } from "../juicefs/index.ts";
import {
  checkVolumeSettings,
  digestSecret,
  isJuiceFSVolume,
  publishSecretRef,
  type SecretDigest,
  type SettingsCheck,
  secretValues,
} from "./snapshot.ts";

type SecretLike = { data?: Record<string, string>; stringData?: Record<string, string> };

/** Reads one Secret: the object, null when it does not exist, undefined when the read failed. */
export type SecretReader = (namespace: string, name: string) => Promise<SecretLike | null | undefined>;

export async function checkSecrets(o: {
  /** The volumes in scope (non-JuiceFS ones are skipped). */
  pvs: V1PersistentVolume[];
  pvcs: V1PersistentVolumeClaim[];
  storageClasses: V1StorageClass[];
  readSecret: SecretReader;
  /** Decoded values of each Secret found (for redaction by content). */
  onValues?: (values: Record<string, string>) => void;
}): Promise<{ secrets: SecretDigest[]; settings: SettingsCheck[] }> {
  const secrets: SecretDigest[] = [];
  const settings: SettingsCheck[] = [];
  for (const pv of o.pvs.filter(isJuiceFSVolume)) {
    const ref = publishSecretRef(pv);
    if (!ref) continue;
    const s = await o.readSecret(ref.namespace, ref.name);
    if (s === undefined) continue;
    if (!secrets.some((d) => d.namespace === ref.namespace && d.name === ref.name))
      secrets.push(digestSecret(ref.namespace, ref.name, s ?? undefined));
    if (s) {
      const values = secretValues(s);
      o.onValues?.(values);
      const pvc = o.pvcs.find((x) => x.spec?.volumeName === pv.metadata?.name);
      const sc = o.storageClasses.find((x) => x.metadata?.name === pv.spec?.storageClassName);
      settings.push(
        checkVolumeSettings({
          pv,
          ...(pvc ? { pvc } : {}),
          ...(sc ? { sc } : {}),
          secret: values,
          secretRef: ref,
        }),
      );
    }
  }
  // Provisioner Secrets of the StorageClasses of pending claims.
  for (const pvc of o.pvcs.filter((p) => p.status?.phase !== "Bound")) {
    const sc = o.storageClasses.find((x) => x.metadata?.name === pvc.spec?.storageClassName);
    const name = sc?.parameters?.["csi.storage.k8s.io/provisioner-secret-name"];
    if (!sc || sc.provisioner !== driverName || !name || name.includes("${")) continue;
    const sns = sc.parameters?.["csi.storage.k8s.io/provisioner-secret-namespace"] ?? "default";
    if (secrets.some((d) => d.namespace === sns && d.name === name)) continue;
    const s = await o.readSecret(sns, name);
    if (s !== undefined) secrets.push(digestSecret(sns, name, s ?? undefined));
  }
  return { secrets, settings };
}
