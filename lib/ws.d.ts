// The part of the `ws` package (8.x, https://github.com/websockets/ws) this project uses: the server
// side of the stand-in API server's pods/exec and the client socket under client-node's Exec. `ws`
// ships no types and @types/ws is not installed; these signatures follow its documentation (doc/ws.md).
declare module "ws" {
  import type { EventEmitter } from "node:events";
  import type { ClientRequest, IncomingMessage } from "node:http";
  import type { Duplex } from "node:stream";

  class WebSocket extends EventEmitter {
    static readonly CONNECTING: 0;
    static readonly OPEN: 1;
    static readonly CLOSING: 2;
    static readonly CLOSED: 3;
    constructor(address: string, protocols?: string | string[], options?: Record<string, unknown>);
    readonly protocol: string;
    readonly readyState: 0 | 1 | 2 | 3;
    send(data: Buffer | string, cb?: (err?: Error) => void): void;
    close(code?: number, reason?: string): void;
    terminate(): void;
    on(event: "message", listener: (data: Buffer, isBinary: boolean) => void): this;
    on(event: "close", listener: (code: number, reason: Buffer) => void): this;
    on(event: "error", listener: (err: Error) => void): this;
    on(event: "open", listener: () => void): this;
    on(event: "unexpected-response", listener: (req: ClientRequest, res: IncomingMessage) => void): this;
    on(event: string, listener: (...args: never[]) => void): this;
  }

  interface ServerOptions {
    noServer?: boolean;
    handleProtocols?: (protocols: Set<string>, request: IncomingMessage) => string | false;
    maxPayload?: number;
  }

  class WebSocketServer extends EventEmitter {
    constructor(options: ServerOptions);
    handleUpgrade(
      request: IncomingMessage,
      socket: Duplex,
      head: Buffer,
      callback: (ws: WebSocket, request: IncomingMessage) => void,
    ): void;
    close(cb?: (err?: Error) => void): void;
  }

  export { type ServerOptions, WebSocket, WebSocketServer };
  export default WebSocket;
}
