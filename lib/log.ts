// Structured JSON logging (pino). Secrets are removed by key, at any depth, before a line is written, so a
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

const secretKeySet: ReadonlySet<string> = new Set(secretKeys);
export const censor = "[REDACTED]";

/**
 * A copy of `value` with every secret key's value replaced, at any depth and inside arrays. pino's own
 * `redact` takes fixed paths (fast-redact has no recursive wildcard), so a credential nested one level
 * deeper than the paths would be logged in clear; this walks the whole object instead. Objects are
 * copied only where something changes; cycles and shared objects are visited once.
 */
export function redactDeep(value: unknown, seen: WeakMap<object, unknown> = new WeakMap()): unknown {
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) return seen.get(value);
  // Errors, Buffers, Dates...: pino's serializers handle them; their own fields are walked below only
  // for plain objects and arrays, which is where request and settings data lives.
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    seen.set(value, out);
    let changed = false;
    for (const v of value) {
      const r = redactDeep(v, seen);
      if (r !== v) changed = true;
      out.push(r);
    }
    if (!changed) seen.set(value, value);
    return changed ? out : value;
  }
  const proto = Object.getPrototypeOf(value);
  const plain = proto === Object.prototype || proto === null || value instanceof Error;
  if (!plain) return value;
  const out: Record<string, unknown> = {};
  seen.set(value, out);
  let changed = false;
  for (const k of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[k];
    const r = secretKeySet.has(k.toLowerCase()) && v !== undefined ? censor : redactDeep(v, seen);
    if (r !== v) changed = true;
    out[k] = r;
  }
  if (value instanceof Error) {
    // Keep what pino's error serializer reads (message, stack, type) when a nested field changed.
    if (!changed) return value;
    Object.assign(out, { message: value.message, stack: value.stack, type: value.name });
    return out;
  }
  if (!changed) seen.set(value, value);
  return changed ? out : value;
}

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
  const logger = pino(
    {
      level,
      name: opts.name ?? "juicefs-csi",
      formatters: {
        log: (o) => redactDeep(o) as Record<string, unknown>,
        bindings: (o) => redactDeep(o) as Record<string, unknown>,
      },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? pino.destination({ fd: 2, sync: false }),
  );
  // pino applies formatters.bindings to the root's bindings only (children reset it): redact a child's
  // bindings before pino sees them. Children are Object.create(parent), so they inherit this override.
  const child = logger.child;
  logger.child = function (this: Logger, bindings, options) {
    return child.call(this, redactDeep(bindings) as typeof bindings, options);
  } as Logger["child"];
  return logger;
}
