// Public surface of the JuiceFS domain. Implementations live in sibling modules; this file only re-exports.
// CONTRACT (other modules code against these signatures):
//   parseSettings(input: SettingsInput): SettingsResult
//   settingsHash(settings: JuiceFSSettings): string                      label-safe, <= 63 chars
//   hostMountPoint(settings: JuiceFSSettings, hash: string): string     `<hostMountRoot>/<volumeId>-<hash-prefix>` style, unique per (volume, hash)
//   mountPodName(nodeName: string, volumeId: string, hash: string): string   DNS-1123, <= 63 chars
//   mountPodLabels(settings: JuiceFSSettings, hash: string): Record<string, string>
//   clientCommands(settings: JuiceFSSettings, mountPoint: string): ClientCommands
//   expandEnvRefs(arg: string, env: Record<string, string>): string     the kubelet's $(VAR) expansion rules
//   buildMountContainer(settings: JuiceFSSettings, opts: MountContainerOptions): V1Container
//   buildMountPod(settings: JuiceFSSettings, nodeName: string, opts: MountPodOptions): V1Pod
//   parseQuantity(q: string): number | undefined                         Kubernetes quantity → number (cores / bytes)
//   parseDuration(d: string): number | undefined                         Go duration → milliseconds
export * from "./api.ts";
export * from "./constants.ts";
export * from "./stubs.ts";
