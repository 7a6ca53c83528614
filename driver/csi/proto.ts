// Loads driver/proto/csi.proto and types the messages the way @grpc/proto-loader decodes them:
// snake_case field names, enums as their names, int64 as decimal strings, defaults filled in
// (unset messages are null), and the name of the set oneof member (e.g. `access_type`).
import { fileURLToPath } from "node:url";
import { type GrpcObject, loadPackageDefinition, type ServiceDefinition } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";

export const protoPath = fileURLToPath(new URL("../proto/csi.proto", import.meta.url));

export const loaderOptions = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

interface CsiPackage {
  Identity: { service: ServiceDefinition };
  Controller: { service: ServiceDefinition };
  Node: { service: ServiceDefinition };
}

let loaded: { csi: CsiPackage; grpc: GrpcObject } | undefined;

/** The csi.v1 package (services usable with Server.addService and as client constructors). */
export function csiPackage(): { csi: CsiPackage; grpc: GrpcObject } {
  if (!loaded) {
    const grpc = loadPackageDefinition(loadSync(protoPath, loaderOptions));
    const csi = (grpc.csi as GrpcObject).v1 as unknown as CsiPackage;
    loaded = { csi, grpc };
  }
  return loaded;
}

// ---- message shapes (requests as decoded, responses as we build them) ----

export type Int64 = string | number;
export type StringMap = Record<string, string>;

export type AccessModeName =
  | "UNKNOWN"
  | "SINGLE_NODE_WRITER"
  | "SINGLE_NODE_READER_ONLY"
  | "MULTI_NODE_READER_ONLY"
  | "MULTI_NODE_SINGLE_WRITER"
  | "MULTI_NODE_MULTI_WRITER"
  | "SINGLE_NODE_SINGLE_WRITER"
  | "SINGLE_NODE_MULTI_WRITER";

export interface VolumeCapability {
  block?: Record<string, never> | null;
  mount?: { fs_type?: string; mount_flags?: string[]; volume_mount_group?: string } | null;
  access_mode?: { mode?: AccessModeName } | null;
  access_type?: "block" | "mount";
}

export interface CapacityRange {
  required_bytes?: Int64;
  limit_bytes?: Int64;
}

export interface Volume {
  capacity_bytes: Int64;
  volume_id: string;
  volume_context: StringMap;
}

export interface CreateVolumeRequest {
  name: string;
  capacity_range?: CapacityRange | null;
  volume_capabilities?: VolumeCapability[];
  parameters?: StringMap;
  secrets?: StringMap;
  volume_content_source?: { type?: string } | null;
  accessibility_requirements?: unknown;
  mutable_parameters?: StringMap;
}

export interface DeleteVolumeRequest {
  volume_id: string;
  secrets?: StringMap;
}

export interface ValidateVolumeCapabilitiesRequest {
  volume_id: string;
  volume_context?: StringMap;
  volume_capabilities?: VolumeCapability[];
  parameters?: StringMap;
  secrets?: StringMap;
}

export interface ValidateVolumeCapabilitiesResponse {
  confirmed?: { volume_context: StringMap; volume_capabilities: VolumeCapability[]; parameters: StringMap };
  message: string;
}

export interface ControllerExpandVolumeRequest {
  volume_id: string;
  capacity_range?: CapacityRange | null;
  secrets?: StringMap;
  volume_capability?: VolumeCapability | null;
}

export interface NodePublishVolumeRequest {
  volume_id: string;
  publish_context?: StringMap;
  staging_target_path?: string;
  target_path: string;
  volume_capability?: VolumeCapability | null;
  readonly?: boolean;
  secrets?: StringMap;
  volume_context?: StringMap;
}

export interface NodeUnpublishVolumeRequest {
  volume_id: string;
  target_path: string;
}

export interface NodeGetVolumeStatsRequest {
  volume_id: string;
  volume_path: string;
  staging_target_path?: string;
}

export interface VolumeUsage {
  available: Int64;
  total: Int64;
  used: Int64;
  unit: "BYTES" | "INODES";
}

export interface NodeGetVolumeStatsResponse {
  usage: VolumeUsage[];
  volume_condition: { abnormal: boolean; message: string };
}

/** A unary handler: plain request in, plain response out; throw CsiError for a gRPC status. */
export type Handler<Req = unknown, Res = unknown> = (req: Req) => Promise<Res>;
export type ServiceHandlers = Record<string, Handler<never, unknown>>;
