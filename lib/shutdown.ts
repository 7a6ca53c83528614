// The servers' (webhook, dashboard) last act: serve until SIGTERM/SIGINT, then close gracefully within
// a bound (past it the kubelet's SIGKILL would come anyway; leave with a clear log line instead).
import type { Logger } from "pino";

export function untilSignal(
  close: () => Promise<void>,
  log: Logger,
  o: { graceMs: number; closing: string },
): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, o.closing);
      const force = setTimeout(() => {
        log.warn("shutdown took too long; exiting");
        resolve();
      }, o.graceMs);
      force.unref();
      close().then(
        () => {
          clearTimeout(force);
          resolve();
        },
        (err: unknown) => {
          log.error({ err: String(err) }, "error during shutdown");
          resolve();
        },
      );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}
