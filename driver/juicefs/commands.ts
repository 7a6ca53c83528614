// The client's command lines, as argv arrays: no shell ever parses user data.
// Secret values are never literals: each one is an env entry backed by a Secret key (secretKeyRef in pods)
// and the arguments reference it as a Kubernetes `$(VAR)` expansion. The meta URL is the exception: its
// argument is `metaUrlArg`, which the runner replaces by the URL without its password (the password goes
// to META_PASSWORD), so no password reaches a command line (container.ts for pods, process mode itself). Every literal piece of user data in
// an argument has its "$" doubled, which the kubelet's expansion turns back into one "$", so a value
// containing "$(JFS_METAURL)" reaches the client verbatim instead of pulling the metaurl into it.
import type { ClientCommands, ClientEnv, JuiceFSSettings } from "./api.ts";
import { ports, secretKeys } from "./constants.ts";
import { splitMetaPassword } from "./metaurl.ts";
import { fuseOptions } from "./options.ts";

/** Env vars the driver defines, each backed by a key of the volume's Secret (settings.secret). */
export const secretEnv = {
  metaurl: { name: "JFS_METAURL", secretKey: "metaurl" },
  storage: { name: "JFS_STORAGE", secretKey: "storage" },
  bucket: { name: "JFS_BUCKET", secretKey: "bucket" },
  accessKey: { name: "ACCESS_KEY", secretKey: "access-key" },
  secretKey: { name: "SECRET_KEY", secretKey: "secret-key" },
  token: { name: "TOKEN", secretKey: "token" },
  // ---- issue 13: encryption and the enterprise edition's second bucket (reference driver keys) ----
  bucket2: { name: "JFS_BUCKET2", secretKey: "bucket2" },
  accessKey2: { name: "ACCESS_KEY2", secretKey: "access-key2" },
  secretKey2: { name: "SECRET_KEY2", secretKey: "secret-key2" },
} as const;

/**
 * The RSA key's passphrase: the client reads this variable itself (no flag, so it is never an argument).
 * Not reserved: the reference driver's docs set it through `envs`; settings refuse both ways at once.
 */
export const passphraseEnv = { name: "JFS_RSA_PASSPHRASE", secretKey: "passphrase" } as const;

/** Files the client reads, each one Secret key (the reference driver's paths, so its docs still apply). */
export const secretFiles = {
  rsaKey: { dir: "/root/.rsa", file: "rsa-key.pem", secretKey: "encrypt_rsa_key" },
  /** Enterprise `initconfig`: `<name>.conf`, copied into the client's config dir instead of `juicefs auth`. */
  initConfig: { dir: "/etc/juicefs", secretKey: "initconfig" },
} as const;

/** Config dir of the enterprise client (where `juicefs auth` writes `<name>.conf`). */
const enterpriseConfDir = "/root/.juicefs";

/** The variable JuiceFS reads the meta engine's password from (see metaurl.ts). */
export const metaPasswordEnv = "META_PASSWORD";

/** The argument that stands for the meta URL (community edition): `$(JFS_METAURL)`. */
export const metaUrlArg = `$(${secretEnv.metaurl.name})`;

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
/**
 * `metricsPort`: where the client serves Prometheus metrics (default ports.mountMetrics). Set
 * explicitly, JuiceFS logs an error and runs without metrics when the port is taken (cmd/mount.go
 * exposeMetrics); it falls back to a free port only when --metrics is absent. So every client sharing
 * a network namespace needs its own port, chosen by whoever places them (the webhook for sidecars).
 */
export function clientCommands(
  settings: JuiceFSSettings,
  mountPoint: string,
  metricsPort: number = ports.mountMetrics,
): ClientCommands {
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
  // Community edition: the keys reach `juicefs format` only through ACCESS_KEY / SECRET_KEY, which it
  // reads itself when it creates a volume (cmd/format.go), so they are in no argument: a `$(VAR)` in
  // args is expanded by the kubelet into the runtime's container config and every /proc/PID/cmdline.
  // format does not rewrite the keys of an existing volume from the environment: rotating them is
  // `juicefs config META-URL --access-key ... --secret-key ...`, a file-system-wide change (README).
  // The enterprise `juicefs auth` has no documented variable for them, so there they stay flags.
  if (community) {
    if (has("access-key")) use(secretEnv.accessKey);
    if (has("secret-key")) use(secretEnv.secretKey);
  } else {
    if (has("access-key")) objectFlags.push(`--access-key=${use(secretEnv.accessKey)}`);
    if (has("secret-key")) objectFlags.push(`--secret-key=${use(secretEnv.secretKey)}`);
  }
  if (!community) {
    if (has("bucket2")) objectFlags.push(`--bucket2=${use(secretEnv.bucket2)}`);
    if (has("access-key2")) objectFlags.push(`--access-key2=${use(secretEnv.accessKey2)}`);
    if (has("secret-key2")) objectFlags.push(`--secret-key2=${use(secretEnv.secretKey2)}`);
  }
  if (has(passphraseEnv.secretKey)) use(passphraseEnv);
  const files: { dir: string; file: string; secretKey: string }[] = [];
  const rsaKeyPath = `${secretFiles.rsaKey.dir}/${secretFiles.rsaKey.file}`;
  if (has(secretFiles.rsaKey.secretKey)) files.push({ ...secretFiles.rsaKey });
  const initConfig = !community && has(secretFiles.initConfig.secretKey);
  const confFile = `${settings.name}.conf`;
  if (initConfig)
    files.push({
      dir: secretFiles.initConfig.dir,
      file: confFile,
      secretKey: secretFiles.initConfig.secretKey,
    });
  const formatFlags = settings.formatOptions.map(escapeEnvRefs);
  // Community edition: a new file system is formatted with the key (reference driver --encrypt-rsa-key).
  if (community && has(secretFiles.rsaKey.secretKey)) formatFlags.push(`--encrypt-rsa-key=${rsaKeyPath}`);

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
  } else if (initConfig) {
    // The reference driver copies the given config instead of running `juicefs auth` (no API call).
    prepare = [
      "install",
      "-D",
      "-m",
      "0600",
      escapeEnvRefs(`${secretFiles.initConfig.dir}/${confFile}`),
      escapeEnvRefs(`${enterpriseConfDir}/${confFile}`),
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

  // A password in the meta URL wins over an `envs` META_PASSWORD, as it did when the URL carried it
  // (JuiceFS only fills an empty password slot): the client's META_PASSWORD comes from the URL then.
  const urlPassword = community && splitMetaPassword(s[secretKeys.metaurl] ?? "").password !== undefined;
  for (const name of Object.keys(settings.envs))
    if (!(urlPassword && name === metaPasswordEnv)) env.push({ name, envsEntry: name });

  const flags: string[] = [];
  const fuse: string[] = [];
  for (const opt of settings.mountOptions) {
    const a = optionArg(opt);
    if (a.flag) flags.push(a.flag);
    if (a.fuse) fuse.push(a.fuse);
  }
  if (settings.readOnly) flags.push("--read-only");
  // Enterprise edition: the key decrypts data at mount (reference driver mount option rsa-key=...).
  if (!community && has(secretFiles.rsaKey.secretKey)) flags.push(`--rsa-key=${rsaKeyPath}`);
  const mount = [
    juicefsBinary,
    "mount",
    "--foreground",
    ...(community ? [] : ["--no-update"]),
    metricsPort === ports.mountMetrics ? `--metrics=${metricsAddress}` : `--metrics=0.0.0.0:${metricsPort}`,
    ...flags,
  ];
  if (fuse.length > 0) mount.push("-o", escapeEnvRefs(fuse.join(",")));
  mount.push(source, escapeEnvRefs(mountPoint));
  const result: ClientCommands = { env, mount, umount: [juicefsBinary, "umount", escapeEnvRefs(mountPoint)] };
  if (prepare) result.prepare = prepare;
  if (files.length) result.files = files;
  return result;
}
