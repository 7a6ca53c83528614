// The client's command lines, as argv arrays: no shell ever parses user data.
// Secret values are never literals: each one is an env entry backed by a Secret key (secretKeyRef in pods)
// and the arguments reference it as a Kubernetes `$(VAR)` expansion. Every literal piece of user data in
// an argument has its "$" doubled, which the kubelet's expansion turns back into one "$", so a value
// containing "$(JFS_METAURL)" reaches the client verbatim instead of pulling the metaurl into it.
import type { ClientCommands, ClientEnv, JuiceFSSettings } from "./api.ts";
import { ports } from "./constants.ts";
import { fuseOptions } from "./options.ts";

/** Env vars the driver defines, each backed by a key of the volume's Secret (settings.secret). */
export const secretEnv = {
  metaurl: { name: "JFS_METAURL", secretKey: "metaurl" },
  storage: { name: "JFS_STORAGE", secretKey: "storage" },
  bucket: { name: "JFS_BUCKET", secretKey: "bucket" },
  accessKey: { name: "ACCESS_KEY", secretKey: "access-key" },
  secretKey: { name: "SECRET_KEY", secretKey: "secret-key" },
  token: { name: "TOKEN", secretKey: "token" },
} as const;

/** Names a user's `envs` cannot use (they would shadow the driver's references). */
export const reservedEnvNames: ReadonlySet<string> = new Set(Object.values(secretEnv).map((e) => e.name));

/** The juicefs binary, resolved through the image's PATH (CE: /usr/local/bin, EE: /usr/bin). */
export const juicefsBinary = "juicefs";

/** Metrics address of the client: all interfaces, the port the pod declares. */
export const metricsAddress = `0.0.0.0:${ports.mountMetrics}`;

/** Escape a literal for the kubelet's `$(VAR)` expansion: "$" becomes "$$" (expanded back to "$"). */
export const escapeEnvRefs = (s: string): string => s.replaceAll("$", "$$$$");

const ref = (name: string): string => `$(${name})`;

/**
 * Expand `$(VAR)` references exactly like the kubelet (k8s.io/kubernetes third_party/forked/golang/expansion):
 * `$(VAR)` becomes env[VAR] when VAR is defined, `$$` becomes `$` (so `$$(VAR)` is the literal `$(VAR)`),
 * an undefined reference or an unterminated `$(` stays as written, and any other `$x` is kept.
 * The expansion is a single pass: values are never expanded again.
 */
export function expandEnvRefs(arg: string, env: Record<string, string>): string {
  let out = "";
  let checkpoint = 0;
  for (let cursor = 0; cursor < arg.length; cursor++) {
    if (arg[cursor] !== "$" || cursor + 1 >= arg.length) continue;
    out += arg.slice(checkpoint, cursor);
    const rest = arg.slice(cursor + 1);
    let advance = 1;
    if (rest[0] === "$") out += "$";
    else if (rest[0] === "(") {
      const close = rest.indexOf(")", 1);
      if (close === -1) out += "$(";
      else {
        const name = rest.slice(1, close);
        out += Object.hasOwn(env, name) ? env[name] : `$(${name})`;
        advance = close + 1;
      }
    } else out += `$${rest[0]}`;
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + arg.slice(checkpoint);
}

/** Translate one normalized mount option into juicefs argv: `--key[=value]`, or a FUSE option for `-o`. */
function optionArg(opt: string): { flag?: string; fuse?: string } {
  const eq = opt.indexOf("=");
  const key = eq === -1 ? opt : opt.slice(0, eq);
  if (fuseOptions.has(key.toLowerCase())) return { fuse: opt };
  return { flag: `--${escapeEnvRefs(opt)}` };
}

/**
 * The commands of a client for these settings, mounting at `mountPoint` (a path inside the client's
 * container, or on the host in process mode). Community edition: `juicefs format` (only when the Secret
 * names a storage or bucket: without them format would create a volume on the container's local disk)
 * then `juicefs mount META-URL MOUNTPOINT`. Enterprise edition: `juicefs auth NAME` then
 * `juicefs mount NAME MOUNTPOINT`.
 */
export function clientCommands(settings: JuiceFSSettings, mountPoint: string): ClientCommands {
  const s = settings.secret;
  const has = (k: string): boolean => typeof s[k] === "string" && s[k] !== "";
  const env: ClientEnv[] = [];
  const use = (e: { name: string; secretKey: string }): string => {
    env.push({ name: e.name, secretKey: e.secretKey });
    return ref(e.name);
  };
  const objectFlags: string[] = [];
  const community = settings.edition === "community";
  const source = community ? use(secretEnv.metaurl) : escapeEnvRefs(settings.name);
  const tokenRef = community ? undefined : use(secretEnv.token);
  if (community && has("storage")) objectFlags.push(`--storage=${use(secretEnv.storage)}`);
  if (has("bucket")) objectFlags.push(`--bucket=${use(secretEnv.bucket)}`);
  if (has("access-key")) objectFlags.push(`--access-key=${use(secretEnv.accessKey)}`);
  if (has("secret-key")) objectFlags.push(`--secret-key=${use(secretEnv.secretKey)}`);
  const formatFlags = settings.formatOptions.map(escapeEnvRefs);

  let prepare: string[] | undefined;
  if (community) {
    if (has("storage") || has("bucket"))
      prepare = [
        juicefsBinary,
        "format",
        ...formatFlags,
        ...objectFlags,
        source,
        escapeEnvRefs(settings.name),
      ];
  } else {
    prepare = [
      juicefsBinary,
      "auth",
      escapeEnvRefs(settings.name),
      `--token=${tokenRef}`,
      ...objectFlags,
      ...formatFlags,
    ];
  }

  for (const [name, value] of Object.entries(settings.envs)) env.push({ name, value });

  const flags: string[] = [];
  const fuse: string[] = [];
  for (const opt of settings.mountOptions) {
    const a = optionArg(opt);
    if (a.flag) flags.push(a.flag);
    if (a.fuse) fuse.push(a.fuse);
  }
  if (settings.readOnly) flags.push("--read-only");
  const mount = [
    juicefsBinary,
    "mount",
    "--foreground",
    ...(community ? [] : ["--no-update"]),
    `--metrics=${metricsAddress}`,
    ...flags,
  ];
  if (fuse.length > 0) mount.push("-o", escapeEnvRefs(fuse.join(",")));
  mount.push(source, escapeEnvRefs(mountPoint));
  const result: ClientCommands = { env, mount, umount: [juicefsBinary, "umount", escapeEnvRefs(mountPoint)] };
  if (prepare) result.prepare = prepare;
  return result;
}
