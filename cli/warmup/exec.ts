// A command in a container through the API server's pods/exec, as kubectl exec runs it:
// @kubernetes/client-node's Exec (a WebSocket offering v5.channel.k8s.io, then v4..., channel-prefixed
// frames, the command's end as a metav1.Status on channel 3). The argv goes as separate `command=`
// query parameters: no shell ever parses it.
//
// One addition to client-node: when the API server refuses the upgrade (403 RBAC, 400 container not
// running, 404 pod gone), `ws` reports only "Unexpected server response: 403"; the socket factory here
// reads the refusal's Status body first, so the user sees the server's own message.
import { Readable, Writable } from "node:stream";
import * as k8s from "@kubernetes/client-node";
// Not re-exported by the package index; the constructor's socket factory is the hook used below.
import { WebSocketHandler } from "@kubernetes/client-node/dist/web-socket-handler.js";
import { WebSocket } from "ws";

export interface ExecOptions {
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  /** Ask for a terminal (kubectl exec -t): the command then sees isatty(), stderr arrives on stdout. */
  tty?: boolean;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

export interface ExecResult {
  /** 0, or the command's non-zero exit code (Status reason NonZeroExitCode, cause ExitCode). */
  exitCode: number;
  status: k8s.V1Status;
  /** The negotiated subprotocol (v5.channel.k8s.io or v4.channel.k8s.io). */
  protocol: string;
}

/** The API server refused the exec request (before any command ran). */
export class ExecRefused extends Error {
  override name = "ExecRefused";
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

const sink = (fn?: (b: Buffer) => void) =>
  new Writable({
    write(chunk: Buffer, _enc, cb) {
      fn?.(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      cb();
    },
  });

/** The exit code a finished command's Status carries (undefined: the Status is not an exit). */
export function exitCodeOf(status: k8s.V1Status): number | undefined {
  if (status.status === "Success") return 0;
  if (status.reason !== "NonZeroExitCode") return undefined;
  const cause = status.details?.causes?.find((c) => c.reason === "ExitCode");
  const n = Number(cause?.message);
  return Number.isInteger(n) ? n : undefined;
}

export async function execInContainer(kc: k8s.KubeConfig, o: ExecOptions): Promise<ExecResult> {
  let refused: ExecRefused | undefined;
  let refusal: Promise<void> = Promise.resolve();
  const factory = (uri: string, protocols: string[], opts: Record<string, unknown>) => {
    const ws = new WebSocket(uri, protocols, opts);
    ws.on("unexpected-response", (req, res) => {
      refusal = new Promise<void>((resolve) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let message = text.trim() || `HTTP ${res.statusCode}`;
          try {
            message = (JSON.parse(text) as { message?: string }).message ?? message;
          } catch {}
          refused = new ExecRefused(res.statusCode ?? 0, message);
          req.destroy();
          ws.emit("error", refused);
          resolve();
        });
        res.on("error", () => resolve());
      });
    });
    return ws;
  };
  const stdout = sink(o.onStdout);
  const stderr = sink(o.onStderr);
  const handler = new WebSocketHandler(kc, factory as never, {
    // Never process.stdin: the session has no stdin, and touching it would open fd 0.
    stdin: Readable.from([]),
    stdout,
    stderr,
  });
  let status: k8s.V1Status | undefined;
  let conn: WebSocket;
  try {
    conn = (await new k8s.Exec(kc, handler).exec(
      o.namespace,
      o.pod,
      o.container,
      o.command,
      stdout,
      o.tty ? null : stderr,
      null,
      o.tty === true,
      (s) => {
        status = s;
      },
    )) as unknown as WebSocket;
  } catch (e) {
    await refusal;
    if (refused) throw refused;
    throw new Error(`pods/exec ${o.namespace}/${o.pod}: ${describeSocketError(e)}`);
  }
  const protocol = conn.protocol;
  await new Promise<void>((resolve) => {
    if (conn.readyState === WebSocket.CLOSED) resolve();
    conn.on("close", () => resolve());
    conn.on("error", () => resolve());
  });
  if (!status)
    throw new Error(
      `pods/exec ${o.namespace}/${o.pod}: the session ended without the command's status (connection lost); the command may still run in container ${o.container}`,
    );
  const exitCode = exitCodeOf(status);
  if (exitCode === undefined)
    throw new Error(`pods/exec ${o.namespace}/${o.pod}: ${status.message ?? status.reason ?? "failed"}`);
  return { exitCode, status, protocol };
}

function describeSocketError(e: unknown): string {
  const ev = e as { message?: string; error?: Error };
  return ev.error?.message ?? ev.message ?? String(e);
}
