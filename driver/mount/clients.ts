// What the node service needs from "wherever JuiceFS clients run": one client per
// (volume, settings hash), mounted at a host path, kept while mounts reference it.
// Process mode (ProcessClientManager) runs `juicefs mount` itself; Mount Pod mode plugs in a
// second implementation backed by the Kubernetes API.
import type { JuiceFSSettings } from "../juicefs/index.ts";
import type { MountEntry, MountTable } from "./mountinfo.ts";

export interface ClientRequest {
  settings: JuiceFSSettings;
  /** settingsHash(settings): clients with different settings never share. */
  hash: string;
  /** The app pod of a publish (CSI podInfoOnMount): Mount Pod mode reports failures on it as Events. */
  pod?: { name: string; namespace: string; uid?: string };
}

/** A client made ready for one operation; it is not stopped while the lease is held. */
export interface ClientLease {
  /** Host path where the client's file system is served. */
  mountPoint: string;
  /** The mount table as read when the client was found healthy or made ready (saves a re-read); optional. */
  table?: MountTable;
  /** Ends the lease (idempotent); from then on mount-table references keep the client. */
  done(): void;
}

export interface ClientInfo {
  /** Empty when the client was found in the mount table without a record. */
  volumeId: string;
  hash: string;
  mountPoint: string;
  /** The client's own mount (absent: not mounted). */
  entry?: MountEntry;
  pid?: number;
  healthy: boolean;
  /** Human-readable state ("pid 42 serving", "client process 42 exited", ...). */
  status: string;
  /** Mount points that show this client's tree (bind mounts onto targets): its references. */
  targets: string[];
}

export type ReleaseResult = "stopped" | "in-use" | "absent";

export interface ClientManager {
  /** Finds a healthy client (adopting one found in the mount table) or starts one, and waits until it serves. */
  ensure(req: ClientRequest): Promise<ClientLease>;
  /** Stops the client at `mountPoint` unless a lease or a mount still references it. */
  release(mountPoint: string): Promise<ReleaseResult>;
  /** Known clients with their health and references, from one mount table snapshot. */
  list(table?: MountTable): Promise<ClientInfo[]>;
  /** Stops every client (the controller's mounts at shutdown). */
  stopAll(): Promise<void>;
}

export type ClientErrorKind = "invalid" | "timeout" | "failed";

/** A client could not be made ready; the message is already free of secrets. */
export class ClientError extends Error {
  override name = "ClientError";
  readonly kind: ClientErrorKind;

  constructor(kind: ClientErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}
