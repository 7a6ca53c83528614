// Public surface of the JuiceFS domain. Implementations live in sibling modules; this file only re-exports.
// CONTRACT (other modules code against these signatures):
//   parseSettings(input: SettingsInput): SettingsResult
//   settingsHash(settings: JuiceFSSettings): string                      label-safe, <= 63 chars
//   hostMountPoint(settings: JuiceFSSettings, hash: string): string     `<hostMountRoot>/<volumeId>-<hash12>`, unique per (volume, hash)
//   mountPodName(nodeName: string, volumeId: string, hash: string): string   DNS-1123, <= 63 chars
//   mountPodLabels(settings: JuiceFSSettings, hash: string): Record<string, string>
//   clientCommands(settings: JuiceFSSettings, mountPoint: string): ClientCommands
//   expandEnvRefs(arg: string, env: Record<string, string>): string     the kubelet's $(VAR) expansion rules
//   buildMountContainer(settings: JuiceFSSettings, opts: MountContainerOptions): V1Container
//   buildMountPod(settings: JuiceFSSettings, nodeName: string, opts: MountPodOptions): V1Pod
//   parseQuantity(q: string): number | undefined                         Kubernetes quantity → number (cores / bytes)
//   parseDuration(d: string): number | undefined                         Go duration → milliseconds
// Additions:
//   buildSidecarContainer(settings, {secretName, name?, mountRoot?, volumeName?}): {container, volumes, mountPoint, subPath}
//   clientVolumes(settings): V1Volume[]          volumes the client container mounts besides its mount-point volume
//   mountSecretData(settings): Record<string,string>   the data the Secret named by opts.secretName must hold
//   splitMetaPassword(url): {url, password?}     the meta URL without its password (client reads META_PASSWORD)
//   metaUrlProblem(url): string | undefined      why a meta URL is refused (never repeats the value)
//   validateMountOptions(options, origin?, field?): {errors, warnings}
//   volumeIdLabelValue(volumeId) / labelValue(s): label-safe values to select Mount Pods by volume-id / node
export * from "./api.ts";
export {
  clientCommands,
  escapeEnvRefs,
  expandEnvRefs,
  metaPasswordEnv,
  metaUrlArg,
  reservedEnvNames,
  secretEnv,
} from "./commands.ts";
export * from "./constants.ts";
export {
  buildMountContainer,
  buildSidecarContainer,
  clientVolumes,
  defaultSidecarContainerName,
  envsSecretKey,
  metaUrlPlaceholder,
  mountReadyScript,
  mountSecretData,
  type Sidecar,
  type SidecarOptions,
  startScript,
} from "./container.ts";
export { parseDuration } from "./duration.ts";
export {
  type GlobalConfig,
  type GlobalConfigResult,
  globalConfigKey,
  globalConfigName,
  type MountPodPatch,
  mergePatches,
  type PodPatch,
  parseGlobalConfig,
  patchMatches,
  patchNeeds,
  podLevelFields,
} from "./global-config.ts";
export { canonicalJson, hashedSettings, settingsHash } from "./hash.ts";
export { metaSchemes, metaUrlProblem, splitMetaPassword } from "./metaurl.ts";
export { hostMountPoint, labelValue, mountPodLabels, mountPodName, volumeIdLabelValue } from "./names.ts";
export { driverOwnedOptions, parseSizeMiB, validateMountOptions, writebackReason } from "./options.ts";
export { buildMountPod, mountPodTerminationGraceSeconds } from "./pod.ts";
export { formatCpu, formatMemory, parseQuantity } from "./quantity.ts";
export { bufferMemoryFit, bufferSizeOf, parseSettings, redacted } from "./settings.ts";
export * from "./templates.ts";
