// Which volume capabilities a JuiceFS volume has: a shared POSIX file system, mounted (never a
// block device), usable from one node or many.
import { invalidArgument } from "./errors.ts";
import type { AccessModeName, VolumeCapability } from "./proto.ts";

export const supportedAccessModes: readonly AccessModeName[] = [
  "SINGLE_NODE_WRITER",
  "MULTI_NODE_MULTI_WRITER",
  "MULTI_NODE_READER_ONLY",
];

const readOnlyModes: readonly AccessModeName[] = ["SINGLE_NODE_READER_ONLY", "MULTI_NODE_READER_ONLY"];

/** Why a capability is not usable, or undefined when it is. Block access is an invalid argument. */
export function unsupportedReason(cap: VolumeCapability, field: string): string | undefined {
  const mode = cap.access_mode?.mode ?? "UNKNOWN";
  if (!supportedAccessModes.includes(mode)) {
    return `${field}: access mode ${mode} is not supported (supported: ${supportedAccessModes.join(", ")})`;
  }
  return undefined;
}

/** Checks presence and access type; throws InvalidArgument. */
export function checkCapabilityShape(
  cap: VolumeCapability | null | undefined,
  field: string,
): VolumeCapability {
  if (!cap) throw invalidArgument(`${field} is required`);
  if (cap.access_type === "block" || cap.block) {
    throw invalidArgument(`${field}: block access is not supported, JuiceFS volumes are file systems`);
  }
  if (cap.access_type !== "mount" && !cap.mount) {
    throw invalidArgument(`${field}: an access type (mount) is required`);
  }
  if (!cap.access_mode || (cap.access_mode.mode ?? "UNKNOWN") === "UNKNOWN") {
    throw invalidArgument(`${field}: access_mode is required`);
  }
  return cap;
}

/** A capability the node can publish: mount access, supported mode. Throws InvalidArgument. */
export function checkCapability(cap: VolumeCapability | null | undefined, field: string): VolumeCapability {
  const c = checkCapabilityShape(cap, field);
  const why = unsupportedReason(c, field);
  if (why) throw invalidArgument(why);
  return c;
}

export function isReadOnlyMode(cap: VolumeCapability): boolean {
  return readOnlyModes.includes(cap.access_mode?.mode ?? "UNKNOWN");
}
