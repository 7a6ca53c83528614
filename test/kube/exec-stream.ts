// pods/exec over WebSocket, as the API server and the kubelet speak it to a client (kubectl,
// @kubernetes/client-node's Exec). Tests only. What it follows, from the Kubernetes source:
//   - k8s.io/apimachinery/pkg/util/httpstream/wsstream/conn.go: one binary WebSocket message per write,
//     its first byte the channel; the subprotocol is chosen from the client's Sec-WebSocket-Protocol
//     list; v5.channel.k8s.io adds the CLOSE signal (first byte 255, second the channel) a client
//     sends to end its stdin. The server never sends CLOSE.
//   - kubelet cri streaming remotecommand (websocket.go createWebSocketStreams): channels 0 stdin
//     (read), 1 stdout, 2 stderr (ignored with a TTY: the terminal carries both), 3 error (write),
//     4 resize (read, JSON {"Width":..,"Height":..}); once open, an empty message on the lowest
//     writable channel tells the client the session is up.
//   - remotecommand httpstream.go / the v4 protocol: the error channel carries one metav1.Status JSON:
//     {"metadata":{},"status":"Success"}, or Failure with reason NonZeroExitCode and the exit code in
//     details.causes[{reason:"ExitCode",message:"<code>"}]; then the connection closes.
// Only v5 and v4 are served (what client-node offers first); older protocols are refused at the handshake.
import type { IncomingMessage } from "node:http";
import type { WebSocket } from "ws";

export const execProtocols = ["v5.channel.k8s.io", "v4.channel.k8s.io"] as const;

export const channels = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

/** The exec request as the API server decodes its query (PodExecOptions). */
export interface ExecRequest {
  namespace: string;
  name: string;
  container: string;
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** What the runtime side of a session sees. */
export interface ExecStreams {
  stdout(data: Buffer | string): void;
  /** Dropped when the session has a TTY (stderr goes to the terminal, i.e. stdout). */
  stderr(data: Buffer | string): void;
  onStdin(fn: (data: Buffer) => void): void;
  onStdinEnd(fn: () => void): void;
  onResize(fn: (size: { Width: number; Height: number }) => void): void;
  /** Resolves when the client goes away before the command ended. */
  readonly clientGone: Promise<void>;
}

/** The runtime's answer: the command's exit code, or an error running it at all. */
export type ExecRun = (streams: ExecStreams) => Promise<number>;

/** Decodes the exec query (repeated `command=` parameters, one argv element each, never a shell string). */
export function parseExecQuery(q: URLSearchParams, namespace: string, name: string): ExecRequest {
  const flag = (k: string) => q.get(k) === "true" || q.get(k) === "1";
  return {
    namespace,
    name,
    container: q.get("container") ?? "",
    command: q.getAll("command"),
    stdin: flag("stdin"),
    stdout: flag("stdout"),
    stderr: flag("stderr"),
    tty: flag("tty"),
  };
}

/** The Sec-WebSocket-Protocol the server picks: the first of the client's list it serves. */
export function pickProtocol(offered: Iterable<string>): string | false {
  for (const p of offered) if ((execProtocols as readonly string[]).includes(p)) return p;
  return false;
}

const frame = (channel: number, data: Buffer | string) =>
  Buffer.concat([Buffer.from([channel]), typeof data === "string" ? Buffer.from(data) : data]);

/** metav1.Status of a finished command, as the kubelet writes it on the error channel. */
export function exitStatus(command: string[], code: number): Record<string, unknown> {
  if (code === 0) return { metadata: {}, status: "Success" };
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: error executing command [${command.join(" ")}], exit code ${code}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(code) }] },
  };
}

/** Runs one exec session on an upgraded WebSocket. */
export function serveExecSession(
  ws: WebSocket,
  req: ExecRequest,
  run: ExecRun,
  _http?: IncomingMessage,
): void {
  const v5 = ws.protocol === "v5.channel.k8s.io";
  let open = true;
  const send = (channel: number, data: Buffer | string) => {
    if (open && ws.readyState === 1) ws.send(frame(channel, data));
  };
  const stdinFns: ((d: Buffer) => void)[] = [];
  const stdinEndFns: (() => void)[] = [];
  const resizeFns: ((s: { Width: number; Height: number }) => void)[] = [];
  let stdinEnded = false;
  const endStdin = () => {
    if (stdinEnded) return;
    stdinEnded = true;
    for (const f of stdinEndFns) f();
  };
  let gone!: () => void;
  const clientGone = new Promise<void>((r) => {
    gone = r;
  });
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (!isBinary || data.length === 0) return;
    const ch = data[0]!;
    const body = data.subarray(1);
    if (ch === channels.stdin && req.stdin && !stdinEnded) for (const f of stdinFns) f(body);
    else if (ch === channels.resize && req.tty) {
      try {
        const size = JSON.parse(body.toString("utf8")) as { Width: number; Height: number };
        for (const f of resizeFns) f(size);
      } catch {
        // the real server logs and ignores a bad size message
      }
    } else if (ch === channels.close && v5 && body[0] === channels.stdin) endStdin();
  });
  ws.on("close", () => {
    open = false;
    endStdin();
    gone();
  });
  ws.on("error", () => {
    open = false;
    gone();
  });

  // The session is up: an empty message on the lowest writable channel.
  send(
    req.stdout ? channels.stdout : req.stderr && !req.tty ? channels.stderr : channels.error,
    Buffer.alloc(0),
  );

  const streams: ExecStreams = {
    stdout: (d) => {
      if (req.stdout) send(channels.stdout, d);
    },
    stderr: (d) => {
      if (req.stderr && !req.tty) send(channels.stderr, d);
    },
    onStdin: (f) => stdinFns.push(f),
    onStdinEnd: (f) => {
      if (!req.stdin || stdinEnded) queueMicrotask(f);
      else stdinEndFns.push(f);
    },
    onResize: (f) => resizeFns.push(f),
    clientGone,
  };
  run(streams).then(
    (code) => finish(exitStatus(req.command, code)),
    (err: unknown) =>
      finish({
        metadata: {},
        status: "Failure",
        message: `Internal error occurred: error executing command in container: ${(err as Error).message}`,
        reason: "InternalError",
        details: { causes: [{ message: `error executing command in container: ${(err as Error).message}` }] },
        code: 500,
      }),
  );
  function finish(status: Record<string, unknown>) {
    send(channels.error, JSON.stringify(status));
    if (ws.readyState === 1) ws.close(1000);
    open = false;
  }
}
