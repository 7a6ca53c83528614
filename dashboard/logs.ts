// Pod logs for the log viewer: read through the API server's pods/log (the kubelet's log), with every
// value of the volumes' Secrets and any URL password blanked (a client may print its meta URL).
// Follow mode polls the tail and sends only the lines after the part already sent: it needs nothing
// but GET pods/log, works through any proxy, and a restarted container's new log is sent whole.
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { redact } from "../driver/mount/redact.ts";

export interface LogRequest {
  namespace: string;
  name: string;
  container: string;
  previous: boolean;
  tailLines: number;
}

export type LogReader = (r: LogRequest) => Promise<string>;

export function apiLogReader(kc: KubeConfig): LogReader {
  const core = kc.makeApiClient(CoreV1Api);
  return async (r) =>
    (await core.readNamespacedPodLog({
      namespace: r.namespace,
      name: r.name,
      container: r.container,
      previous: r.previous,
      tailLines: r.tailLines,
    })) ?? "";
}

export const splitLines = (text: string): string[] => {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
};

/**
 * The lines of `cur` (a later tail of the same log) that `seen` (the previous tail) does not end
 * with: the longest suffix of `seen` that is a prefix of `cur` is the overlap. No overlap (a new
 * container instance, or more than a tail's worth of new lines) sends `cur` whole.
 */
export function newLines(seen: readonly string[], cur: readonly string[]): string[] {
  const max = Math.min(seen.length, cur.length);
  for (let k = max; k > 0; k--) {
    if (seen[seen.length - k] !== cur[0]) continue;
    let same = true;
    for (let i = 1; i < k; i++)
      if (seen[seen.length - k + i] !== cur[i]) {
        same = false;
        break;
      }
    if (same) return cur.slice(k);
  }
  return [...cur];
}

export const redactLine = (line: string, hide: readonly string[]): string => redact(line, hide);
