// Structured JSON logging (pino). Secrets are removed by path before a line is written, so a
// request or settings object can be logged whole without leaking credentials.
import { type LevelWithSilent, type Logger, pino } from "pino";

/** Object keys that hold credentials anywhere in a logged object (CSI secrets, JuiceFS Secret keys). */
export const secretKeys = [
  "secrets",
  "secret",
  "metaurl",
  "token",
  "access-key",
  "secret-key",
  "accesskey",
  "secretkey",
  "password",
  "authorization",
  "envs",
  "tls-key",
  "key",
] as const;

/** pino redaction paths: each secret key at the top level and up to three levels deep. */
export const redactPaths: string[] = secretKeys.flatMap((k) => {
  const q = /^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `["${k}"]`;
  return [q.replace(/^\./, ""), `*${q}`, `*.*${q}`, `*.*.*${q}`];
});

export const logLevels: readonly LevelWithSilent[] = [
  "fatal",
  "error",
  "warn",
  "info",
  "debug",
  "trace",
  "silent",
];

export function isLogLevel(v: string): v is LevelWithSilent {
  return (logLevels as readonly string[]).includes(v);
}

export interface LogOptions {
  /** Explicit level (e.g. from --log-level); falls back to $LOG_LEVEL, then "info". */
  level?: string | undefined;
  name?: string;
  /** Where lines go; defaults to stderr so stdout stays free for command output. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? process.env.LOG_LEVEL ?? "info";
  if (!isLogLevel(level)) throw new Error(`log level "${level}" is not one of ${logLevels.join(", ")}`);
  return pino(
    {
      level,
      name: opts.name ?? "juicefs-csi",
      redact: { paths: redactPaths, censor: "[REDACTED]" },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}
