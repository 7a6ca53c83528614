// The Mount Pod: the client container plus pod-level settings, for one (node, volume, settings hash).
import type { V1Pod } from "@kubernetes/client-node";
import type { JuiceFSSettings, MountPodOptions } from "./api.ts";
import { labels, mountPodPriorityClass } from "./constants.ts";
import {
  buildMountContainer,
  clientVolumes,
  mountDirVolumeName,
  patchFor,
  secretFileVolumes,
} from "./container.ts";
import { globalConfigDigestAnnotation } from "./global-config.ts";
import { settingsHash } from "./hash.ts";
import { hostMountPoint, labelValue, mountPodLabels, mountPodName } from "./names.ts";

/** Time for the client, after SIGTERM, to flush its buffers and unmount (juicefs gives up after 30 s) before SIGKILL. */
export const mountPodTerminationGraceSeconds = 60;

export function buildMountPod(settings: JuiceFSSettings, nodeName: string, opts: MountPodOptions): V1Pod {
  const hash = settingsHash(settings);
  const mountPoint = hostMountPoint(settings, hash);
  const container = buildMountContainer(settings, {
    mountPoint,
    secretName: opts.secretName,
    mountRoot: settings.hostMountRoot,
  });
  const inherit = opts.inherit ?? {};
  // The global config's pod-level fields win over what the node plugin passes on.
  const patch = patchFor(settings, mountPoint);
  const dnsPolicy = patch?.dnsPolicy ?? inherit.dnsPolicy;
  const dnsConfig = patch?.dnsConfig ?? inherit.dnsConfig;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: mountPodName(nodeName, settings.volumeId, hash),
      namespace: opts.namespace,
      labels: { ...mountPodLabels(settings, hash), [labels.nodeName]: labelValue(nodeName) },
      ...(Object.keys(settings.mountAnnotations).length || settings.globalConfigDigest
        ? {
            annotations: {
              ...settings.mountAnnotations,
              ...(settings.globalConfigDigest
                ? { [globalConfigDigestAnnotation]: settings.globalConfigDigest }
                : {}),
            },
          }
        : {}),
    },
    spec: {
      nodeName,
      restartPolicy: "Always",
      priorityClassName: mountPodPriorityClass,
      terminationGracePeriodSeconds: patch?.terminationGracePeriodSeconds ?? mountPodTerminationGraceSeconds,
      ...(patch?.hostNetwork !== undefined ? { hostNetwork: patch.hostNetwork } : {}),
      ...(patch?.hostPID !== undefined ? { hostPID: patch.hostPID } : {}),
      // The client needs no API access and no service links in its environment; a service account chosen
      // with juicefs/mount-service-account is chosen for its token (cloud workload identity), so it keeps it.
      automountServiceAccountToken: settings.serviceAccountName !== undefined,
      enableServiceLinks: false,
      // Without inherited tolerations, tolerate everything: the client must run wherever the app runs.
      tolerations: inherit.tolerations ?? [{ operator: "Exists" }],
      ...(dnsPolicy ? { dnsPolicy } : {}),
      ...(dnsConfig ? { dnsConfig } : {}),
      ...(inherit.imagePullSecrets?.length ? { imagePullSecrets: inherit.imagePullSecrets } : {}),
      ...(settings.serviceAccountName || inherit.serviceAccountName
        ? { serviceAccountName: settings.serviceAccountName ?? inherit.serviceAccountName }
        : {}),
      ...(patch?.initContainers ? { initContainers: patch.initContainers } : {}),
      containers: [container],
      volumes: [
        { name: mountDirVolumeName, hostPath: { path: settings.hostMountRoot, type: "DirectoryOrCreate" } },
        ...clientVolumes(settings),
        ...secretFileVolumes(settings, opts.secretName),
        ...(patch?.volumes ?? []),
      ],
    },
  };
}
