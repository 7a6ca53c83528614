// gRPC status errors chosen per the CSI spec. Messages are shown to users (kubectl describe), so
// they name the field or object at fault and never carry a secret.
import { status } from "@grpc/grpc-js";
import { ClientError } from "../mount/clients.ts";

export class CsiError extends Error {
  override name = "CsiError";
  readonly code: status;

  constructor(code: status, message: string) {
    super(message);
    this.code = code;
  }
}

export const invalidArgument = (m: string) => new CsiError(status.INVALID_ARGUMENT, m);
export const notFound = (m: string) => new CsiError(status.NOT_FOUND, m);
export const alreadyExists = (m: string) => new CsiError(status.ALREADY_EXISTS, m);
export const failedPrecondition = (m: string) => new CsiError(status.FAILED_PRECONDITION, m);
export const aborted = (m: string) => new CsiError(status.ABORTED, m);
export const unimplemented = (m: string) => new CsiError(status.UNIMPLEMENTED, m);
export const internal = (m: string) => new CsiError(status.INTERNAL, m);
export const deadlineExceeded = (m: string) => new CsiError(status.DEADLINE_EXCEEDED, m);

/** Maps a thrown value to a CSI error (client failures keep their meaning). */
export function toCsiError(err: unknown): CsiError {
  if (err instanceof CsiError) return err;
  if (err instanceof ClientError) {
    if (err.kind === "invalid") return invalidArgument(err.message);
    if (err.kind === "timeout") return deadlineExceeded(err.message);
    return internal(err.message);
  }
  return internal(err instanceof Error ? err.message : String(err));
}

export { status };
