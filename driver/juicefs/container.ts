// The JuiceFS client container, the same for Mount Pods and sidecars: only where the mount point lives
// (a hostPath for Mount Pods, an emptyDir shared with the app for sidecars) differs, and that is an option.
import type { V1Container, V1EnvVar, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { JuiceFSSettings, MountContainerOptions } from "./api.ts";
import { clientCommands, escapeEnvRefs, metaUrlArg } from "./commands.ts";
import { ports } from "./constants.ts";
import { fillPatchVars, type PodPatch } from "./global-config.ts";
import { safePathSegment } from "./names.ts";

/** The reference driver's Mount Pod container name (its docs' `kubectl logs -c jfs-mount` must work). */
export const defaultContainerName = "jfs-mount";
export const defaultSidecarContainerName = "jfs-mount";
/** Volume holding the mount point (Bidirectional): hostPath for Mount Pods, emptyDir for sidecars. */
export const mountDirVolumeName = "jfs-dir";
/** Where sidecars mount volumes inside the emptyDir: `<root>/<volume>`. */
export const defaultSidecarMountRoot = "/jfs";

/**
 * The client's start script, fixed text: no user data is ever parsed as shell code. Arguments:
 *   $1  number of prepare words (juicefs format / auth), 0 for none
 *   $2  comma list of the word positions that stand for the meta URL ("" for none)
 *   $3  folder with one file per `envs` variable, named after it ("" for none; sidecars)
 *   then the prepare words, then the mount words.
 * The meta URL comes from $JFS_METAURL (a secretKeyRef); the script removes it from the environment,
 * moves its password to $META_PASSWORD (same rule as metaurl.ts splitMetaPassword) and passes the URL
 * without it where the positions say, so the password is never part of any process's arguments.
 * `eval` only ever sees text built from integers and the fixed words "$meta" and "$eN": each word is
 * passed as one argument, verbatim. Variables read from files are set with `env NAME=VALUE` (their
 * names may hold "-" or ".", which `export` refuses). Written with "$$" because the kubelet expands
 * `$(VAR)` in command and args ("$$" becomes "$").
 */
export const startScript = escapeEnvRefs(
  [
    "set -e",
    "n=$1; pos=$2; envdir=$3; shift 3",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, not a JS template
    "meta=${JFS_METAURL-}; unset JFS_METAURL",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, not a JS template
    "rest=${meta#*://}; authority=${rest%%/*}",
    "case $meta in *://*) case $authority in *@*)",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, not a JS template
    "  userinfo=${authority%@*}",
    "  case $userinfo in *:?*)",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, not a JS template
    "    META_PASSWORD=${userinfo#*:}; export META_PASSWORD",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, not a JS template
    '    meta="${meta%%://*}://${userinfo%%:*}:@${rest#"$userinfo"@}" ;; esac ;;',
    "esac ;; esac",
    'envs=""; k=0',
    'if [ -n "$envdir" ]; then',
    '  for f in "$envdir"/*; do',
    '    [ -f "$f" ] || continue',
    '    v=$(cat "$f"; echo x); k=$((k + 1))',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, not a JS template
    '    eval "e$k=\\"\\${f##*/}=\\${v%x}\\""; envs="$envs \\"\\$e$k\\""',
    "  done",
    '  if [ "$k" -gt 0 ]; then envs="env$envs"; fi',
    "fi",
    'i=1; total=$#; pre=""; run=""',
    'while [ "$i" -le "$total" ]; do',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, not a JS template
    '  case ",$pos," in *",$i,"*) w=\'"$meta"\' ;; *) w="\\"\\${$i}\\"" ;; esac',
    '  if [ "$i" -le "$n" ]; then pre="$pre $w"; else run="$run $w"; fi',
    "  i=$((i + 1))",
    "done",
    'if [ -n "$pre" ]; then eval "$envs $pre"; fi',
    'eval "exec $envs $run"',
  ].join("\n"),
);

/** The word passed where the meta URL goes; the start script replaces it (no value of it is in the spec). */
export const metaUrlPlaceholder = "<metaurl>";

/**
 * FUSE-served check: the root of a JuiceFS mount has inode 1, a plain directory does not, and a dead FUSE
 * mount makes stat fail (ENOTCONN). The script uses only "$1", never "$(" or "$$", so it means the same
 * whether or not the kubelet expands `$(VAR)` in probe commands; the mount point is an argument.
 */
export const mountReadyScript = 'stat -c %i "$1" | grep -qx 1';

function assertMountPoint(p: string): void {
  // Mount points are built by the driver; refuse anything a probe argument or the kubelet could misread.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are refused
  if (!p.startsWith("/") || p === "/" || /[$\u0000-\u001f\u007f]/.test(p) || p.split("/").includes(".."))
    throw new Error(`mount point "${p}" must be an absolute path without "$", "..", or control characters`);
}

const parentDir = (p: string): string => p.replace(/\/+$/, "").replace(/\/[^/]*$/, "") || "/";

/** Volumes the client container needs besides its mount-point volume: cache dirs, cache PVCs, configs, host paths. */
export function clientVolumes(settings: JuiceFSSettings): V1Volume[] {
  return [
    ...settings.cacheDirs.map((path, i) => ({
      name: `jfs-cache-${i}`,
      hostPath: { path, type: "DirectoryOrCreate" },
    })),
    ...settings.cachePvcs.map((c, i) => ({
      name: `jfs-cache-pvc-${i}`,
      persistentVolumeClaim: { claimName: c.claimName },
    })),
    ...Object.keys(settings.configs).map((secretName, i) => ({
      name: `jfs-config-${i}`,
      secret: { secretName },
    })),
    ...settings.hostPaths.map((path, i) => ({ name: `jfs-host-path-${i}`, hostPath: { path } })),
  ];
}

function clientVolumeMounts(settings: JuiceFSSettings): V1VolumeMount[] {
  return [
    ...settings.cacheDirs.map((mountPath, i) => ({ name: `jfs-cache-${i}`, mountPath })),
    ...settings.cachePvcs.map((c, i) => ({ name: `jfs-cache-pvc-${i}`, mountPath: c.mountPath })),
    ...Object.values(settings.configs).map((mountPath, i) => ({
      name: `jfs-config-${i}`,
      mountPath,
      readOnly: true,
    })),
    ...settings.hostPaths.map((mountPath, i) => ({ name: `jfs-host-path-${i}`, mountPath })),
  ];
}

/** Volume name of the Secret file(s) the client reads in `dir` (encryption key, enterprise init config). */
const secretFileVolumeName = (i: number): string => `jfs-secret-file-${i}`;

/**
 * Secret-backed files of the client (`encrypt_rsa_key`, `initconfig`): one secret volume per folder,
 * projecting only that key, read-only, mode 0400. `secretName` is the Secret the container's env reads.
 */
export function secretFileVolumes(settings: JuiceFSSettings, secretName: string): V1Volume[] {
  return (clientCommands(settings, "/jfs/x").files ?? []).map((f, i) => ({
    name: secretFileVolumeName(i),
    secret: { secretName, defaultMode: 0o400, items: [{ key: f.secretKey, path: f.file }] },
  }));
}

/**
 * The Secret data a client container expects in `opts.secretName`: settings.secret as is (canonical keys,
 * normalized values) plus one key per `envs` variable. Create/refresh that Secret with exactly this data.
 */
export const mountSecretData = (settings: JuiceFSSettings): Record<string, string> => {
  const data: Record<string, string> = { ...settings.secret };
  for (const [name, value] of Object.entries(settings.envs)) data[envsSecretKey(name)] = value;
  return data;
};

/**
 * The key of the driver's per-volume Secret that holds one `envs` variable (Secret keys allow the same
 * characters as env names: letters, digits, "-", "_", ".").
 */
export const envsSecretKey = (name: string): string => `envs.${name}`;

/** The settings' global-config patch with `${MOUNT_POINT}` filled (the other variables already are). */
export function patchFor(settings: JuiceFSSettings, mountPoint: string): PodPatch | undefined {
  if (!settings.podPatch) return undefined;
  return fillPatchVars(settings.podPatch, {
    MOUNT_POINT: mountPoint,
    VOLUME_ID: settings.volumeId,
    VOLUME_NAME: settings.name,
    SUB_PATH: settings.subPath,
  });
}

export function buildMountContainer(settings: JuiceFSSettings, opts: MountContainerOptions): V1Container {
  assertMountPoint(opts.mountPoint);
  const mountRoot = opts.mountRoot ?? parentDir(opts.mountPoint);
  const metricsPort = opts.metricsPort ?? ports.mountMetrics;
  const cmds = clientCommands(settings, opts.mountPoint, metricsPort);
  const env: V1EnvVar[] = [];
  for (const e of cmds.env) {
    if ("secretKey" in e)
      env.push({ name: e.name, valueFrom: { secretKeyRef: { name: opts.secretName, key: e.secretKey } } });
    else if ("envsEntry" in e) {
      // Mount Pods: one key per variable in the driver's own Secret (mountSecretData). Sidecars: the
      // files written from the user's Secret by the envs init container, read by the start script.
      if (!opts.envsDir)
        env.push({
          name: e.name,
          valueFrom: { secretKeyRef: { name: opts.secretName, key: envsSecretKey(e.envsEntry) } },
        });
    }
    // Literal values are driver-made; the kubelet expands them too (references to earlier variables).
    else env.push({ name: e.name, value: escapeEnvRefs(e.value) });
  }
  const prepare = cmds.prepare ?? [];
  const words = [...prepare, ...cmds.mount];
  const metaPositions = words.flatMap((w, i) => (w === metaUrlArg ? [i + 1] : []));
  const command = ["/bin/sh", "-c", startScript, "juicefs-mount"];
  const args = [
    String(prepare.length),
    metaPositions.join(","),
    opts.envsDir ?? "",
    ...words.map((w) => (w === metaUrlArg ? metaUrlPlaceholder : w)),
  ];
  const probe = (periodSeconds: number, failureThreshold: number) => ({
    exec: { command: ["/bin/sh", "-c", mountReadyScript, "mount-ready", opts.mountPoint] },
    periodSeconds,
    failureThreshold,
    timeoutSeconds: 5,
  });
  const patch = patchFor(settings, opts.mountPoint);
  return {
    name: opts.name ?? defaultContainerName,
    image: settings.image,
    ...(patch?.imagePullPolicy ? { imagePullPolicy: patch.imagePullPolicy } : {}),
    command,
    args,
    // The global config's env comes after the driver's (its names never clash: parseGlobalConfig).
    env: [...env, ...(patch?.env ?? [])],
    resources: {
      ...(Object.keys(settings.resources.requests).length
        ? { requests: { ...settings.resources.requests } }
        : {}),
      ...(Object.keys(settings.resources.limits).length ? { limits: { ...settings.resources.limits } } : {}),
    },
    ports: [{ name: opts.metricsPortName ?? "metrics", containerPort: metricsPort, protocol: "TCP" }],
    volumeMounts: [
      {
        name: opts.mountVolumeName ?? mountDirVolumeName,
        mountPath: mountRoot,
        mountPropagation: "Bidirectional",
      },
      ...clientVolumeMounts(settings),
      ...(cmds.files ?? []).map((f, i) => ({
        name: secretFileVolumeName(i),
        mountPath: f.dir,
        readOnly: true,
      })),
      ...(patch?.volumeMounts ?? []),
    ],
    ...(patch?.volumeDevices ? { volumeDevices: patch.volumeDevices } : {}),
    securityContext: { privileged: true, runAsUser: 0 },
    // Startup: up to 5 minutes for format/auth and the first mount (the node plugin reports after 60 s
    // on its own); readiness: the mount keeps being served. The global config may replace either.
    startupProbe: patch?.startupProbe ?? probe(1, 300),
    readinessProbe: patch?.readinessProbe ?? probe(5, 3),
    ...(patch?.livenessProbe ? { livenessProbe: patch.livenessProbe } : {}),
    ...(patch?.lifecycle ? { lifecycle: patch.lifecycle } : {}),
    // No preStop hook: the kubelet's SIGTERM is how the client stops. juicefs unmounts its mount point
    // (lazily) on SIGTERM and exits (cmd/mount_unix.go installHandler; it force-exits 30 s later at the
    // latest). A preStop `juicefs umount` ended the client — PID 1 — while the hook still ran, so every
    // deletion logged FailedPreStopHook. A client killed before it could unmount leaves a dead mount,
    // which the node plugin removes once the Mount Pod is gone (driver/mount/pod-clients.ts).
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
}

export interface SidecarOptions {
  /** Secret in the app pod's namespace: the user's Secret, whose keys the sidecar references. */
  secretName: string;
  /** Container name; default "jfs-mount". */
  name?: string;
  /** Folder of the emptyDir inside the sidecar; default "/jfs". */
  mountRoot?: string;
  /** Name of the emptyDir volume; default "jfs-dir". */
  volumeName?: string;
  /**
   * Image of this product (`juicefs-csi` entrypoint), for the init container that turns the Secret's
   * `envs` value into one file per variable. The webhook passes its own image (same version);
   * default defaultProductImage.
   */
  productImage?: string;
  /** Metrics port and its name: each client sharing the pod's network needs its own (the webhook picks). */
  metricsPort?: number;
  metricsPortName?: string;
}

export interface Sidecar {
  container: V1Container;
  /**
   * Runs before the sidecar when the Secret has `envs` (else absent): reads the Secret's `envs` key from
   * a Secret volume and writes one file per variable into a memory emptyDir the sidecar reads, so no
   * value is ever in the pod spec (in sidecar mode the webhook creates no objects, so there is no
   * per-volume Secret with one key per variable as for Mount Pods).
   */
  envsInit?: V1Container;
  /** Volumes to add to the app pod: the emptyDir holding the mount point, then clientVolumes(settings). */
  volumes: V1Volume[];
  /** The FUSE mount point inside the sidecar (inside the emptyDir). */
  mountPoint: string;
  /** The mount point relative to the emptyDir (a subPath for app containers). */
  subPath: string;
}

/** The product image without a tag, when the caller names none (the webhook always does). */
export const defaultProductImage = "juicedata/juicefs-csi";

/** Where the envs files are, inside the sidecar and its envs init container. */
export const sidecarEnvsDir = "/jfs-envs";
const sidecarEnvsSource = "/jfs-envs-secret";

const dnsLabel = (s: string): string => s.slice(0, 63).replace(/-+$/, "");

/** The sidecar variant: the same container, with the mount point inside an emptyDir shared with the app. */
export function buildSidecarContainer(settings: JuiceFSSettings, opts: SidecarOptions): Sidecar {
  const mountRoot = (opts.mountRoot ?? defaultSidecarMountRoot).replace(/\/+$/, "");
  const subPath = safePathSegment(settings.volumeId);
  const mountPoint = `${mountRoot}/${subPath}`;
  const volumeName = opts.volumeName ?? mountDirVolumeName;
  const hasEnvs = Object.keys(settings.envs).length > 0;
  const container = buildMountContainer(settings, {
    mountPoint,
    secretName: opts.secretName,
    name: opts.name ?? defaultSidecarContainerName,
    mountRoot,
    mountVolumeName: volumeName,
    ...(hasEnvs ? { envsDir: sidecarEnvsDir } : {}),
    ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort } : {}),
    ...(opts.metricsPortName !== undefined ? { metricsPortName: opts.metricsPortName } : {}),
  });
  const volumes: V1Volume[] = [
    { name: volumeName, emptyDir: {} },
    ...clientVolumes(settings),
    ...secretFileVolumes(settings, opts.secretName),
    // The global config's volumes (its pod-level fields are for Mount Pods only: webhook warns).
    ...(patchFor(settings, mountPoint)?.volumes ?? []),
  ];
  if (!hasEnvs) return { container, volumes, mountPoint, subPath };

  const filesVolume = dnsLabel(`${volumeName}-envs`);
  const sourceVolume = dnsLabel(`${volumeName}-envs-secret`);
  volumes.push(
    // Memory-backed: the values never touch the node's disk; 1 MiB is the most a Secret can hold.
    { name: filesVolume, emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
    { name: sourceVolume, secret: { secretName: opts.secretName, items: [{ key: "envs", path: "envs" }] } },
  );
  container.volumeMounts = [
    ...(container.volumeMounts ?? []),
    { name: filesVolume, mountPath: sidecarEnvsDir, readOnly: true },
  ];
  const envsInit: V1Container = {
    name: dnsLabel(`${container.name}-envs`),
    image: opts.productImage ?? defaultProductImage,
    args: ["write-envs", "--from", `${sidecarEnvsSource}/envs`, "--to", sidecarEnvsDir],
    volumeMounts: [
      { name: sourceVolume, mountPath: sidecarEnvsSource, readOnly: true },
      { name: filesVolume, mountPath: sidecarEnvsDir },
    ],
    resources: { requests: { cpu: "10m", memory: "64Mi" }, limits: { memory: "128Mi" } },
    // The image's `node` user (numeric, so a pod's runAsNonRoot can verify it); the sidecar (root)
    // reads the files it writes.
    securityContext: {
      runAsUser: 1000,
      runAsGroup: 1000,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    },
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
  return { container, envsInit, volumes, mountPoint, subPath };
}

export type { V1Volume };
