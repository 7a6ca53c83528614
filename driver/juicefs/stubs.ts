// Placeholder signatures until the domain issue replaces this file with real modules.
import type {
  ClientCommands,
  JuiceFSSettings,
  MountContainerOptions,
  MountPodOptions,
  SettingsInput,
  SettingsResult,
  V1Container,
  V1Pod,
} from "./api.ts";

const todo = (what: string): never => {
  throw new Error(`${what}: not implemented yet`);
};

export const parseSettings = (_i: SettingsInput): SettingsResult => todo("parseSettings");
export const settingsHash = (_s: JuiceFSSettings): string => todo("settingsHash");
export const hostMountPoint = (_s: JuiceFSSettings, _hash: string): string => todo("hostMountPoint");
export const mountPodName = (_node: string, _volumeId: string, _hash: string): string => todo("mountPodName");
export const mountPodLabels = (_s: JuiceFSSettings, _hash: string): Record<string, string> =>
  todo("mountPodLabels");
export const clientCommands = (_s: JuiceFSSettings, _mountPoint: string): ClientCommands =>
  todo("clientCommands");
export const expandEnvRefs = (_arg: string, _env: Record<string, string>): string => todo("expandEnvRefs");
export const buildMountContainer = (_s: JuiceFSSettings, _o: MountContainerOptions): V1Container =>
  todo("buildMountContainer");
export const buildMountPod = (_s: JuiceFSSettings, _node: string, _o: MountPodOptions): V1Pod =>
  todo("buildMountPod");
export const parseQuantity = (_q: string): number | undefined => todo("parseQuantity");
export const parseDuration = (_d: string): number | undefined => todo("parseDuration");
