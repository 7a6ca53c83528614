// Table-driven tests of parseSettings: every key, default, override order, error and warning.
import t from "tap";
import type { JuiceFSSettings, SettingsInput } from "../../driver/juicefs/index.ts";
import { defaultMountImages, keys, parseSettings } from "../../driver/juicefs/index.ts";
import { ceSecret, eeSecret, input } from "./fixtures.ts";

interface Case {
  name: string;
  in: Partial<SettingsInput>;
  /** Fields of the settings that must equal these values (deep). */
  want?: Partial<JuiceFSSettings>;
  /** Errors that must be present: field and a pattern of the message. */
  errors?: [field: string, message: RegExp][];
  /** Patterns that must each match one warning. */
  warnings?: RegExp[];
  /** Exact number of warnings, when it matters. */
  warningCount?: number;
}

const sec = (over: Record<string, string>, base = ceSecret): Record<string, string> => ({ ...base, ...over });
const without = (base: Record<string, string>, ...ks: string[]) =>
  Object.fromEntries(Object.entries(base).filter(([k]) => !ks.includes(k)));
const vc = (ctx: Record<string, string>): Partial<SettingsInput> => ({ volumeContext: ctx });
const pvOpts = (...o: string[]): Partial<SettingsInput> => ({ pvMountOptions: o });
const mem = (limit: string) => ({ [keys.mountMemoryLimit]: limit });

const cases: Case[] = [
  // ---- Secret: editions, names, aliases ----
  {
    name: "community edition from metaurl",
    in: {},
    want: { edition: "community", name: "myjfs", image: defaultMountImages.community, volumeId: "pvc-1" },
    warningCount: 0,
  },
  {
    name: "metaurl without scheme means redis://",
    in: { secret: sec({ metaurl: "redis-host:6379/1" }) },
    want: { secret: { ...ceSecret, metaurl: "redis://redis-host:6379/1" } },
  },
  {
    name: "metaurl with another scheme is kept",
    in: { secret: sec({ metaurl: "tikv://h:2379/jfs" }) },
    want: { secret: { ...ceSecret, metaurl: "tikv://h:2379/jfs" } },
  },
  {
    name: "secret values are trimmed (kubectl --from-file newline)",
    in: { secret: sec({ metaurl: "redis://h/1\n", name: " myjfs " }) },
    want: { name: "myjfs", secret: { ...ceSecret, metaurl: "redis://h/1" } },
  },
  {
    name: "enterprise edition from token",
    in: { secret: eeSecret },
    want: { edition: "enterprise", image: defaultMountImages.enterprise },
  },
  {
    name: "metaurl and token: community, token ignored with a warning",
    in: { secret: sec({ token: "T" }) },
    want: { edition: "community" },
    warnings: [/token.*ignored/],
  },
  {
    name: "neither metaurl nor token",
    in: { secret: { name: "myjfs" } },
    errors: [["secret.metaurl", /Secret default\/jfs-secret: neither "metaurl".*nor "token"/]],
  },
  {
    name: "name missing",
    in: { secret: without(ceSecret, "name") },
    errors: [["secret.name", /"name".*missing/]],
  },
  {
    name: "community name must be a JuiceFS volume name",
    in: { secret: sec({ name: "My_FS" }) },
    errors: [["secret.name", /not a valid JuiceFS volume name/]],
  },
  {
    name: "community name too short",
    in: { secret: sec({ name: "ab" }) },
    errors: [["secret.name", /3-63/]],
  },
  {
    name: "enterprise name may use dots and capitals",
    in: { secret: sec({ name: "My.FS" }, eeSecret) },
    want: { name: "My.FS" },
  },
  {
    name: "enterprise name cannot start with -",
    in: { secret: sec({ name: "-x" }, eeSecret) },
    errors: [["secret.name", /not a valid/]],
  },
  {
    name: "legacy accesskey alias",
    in: { secret: { ...without(ceSecret, "access-key"), accesskey: "AK2" } },
    want: { secret: { ...ceSecret, "access-key": "AK2" } },
  },
  {
    name: "legacy secretkey alias",
    in: { secret: { ...without(ceSecret, "secret-key"), secretkey: "SK2" } },
    want: { secret: { ...ceSecret, "secret-key": "SK2" } },
  },
  {
    name: "canonical key beats its alias",
    in: { secret: sec({ accesskey: "OLD" }) },
    want: { secret: ceSecret },
    warnings: [/both "accesskey" and "access-key"/],
  },
  {
    name: "empty secret values are dropped",
    in: { secret: sec({ "access-key": "", "secret-key": "  " }) },
    want: { secret: without(ceSecret, "access-key", "secret-key") },
  },
  {
    name: "metaurl starting with - is refused (it would become a flag)",
    in: { secret: sec({ metaurl: "--cache-dir=/" }) },
    errors: [["secret.metaurl", /starts with "-"/]],
  },
  {
    name: "NUL in bucket is refused",
    in: { secret: sec({ bucket: "https://b\u0000x" }) },
    errors: [["secret.bucket", /NUL/]],
  },
  {
    name: "no storage/bucket: format skipped, warning",
    in: { secret: without(ceSecret, "storage", "bucket") },
    warnings: [/must already be formatted/],
  },
  {
    name: "metaurl with URL sub-delims in the password is accepted verbatim (never parsed by a shell)",
    in: { secret: sec({ metaurl: "redis://u:p;$(whoami)'&!*@h:6379/1" }) },
    want: { secret: { ...ceSecret, metaurl: "redis://u:p;$(whoami)'&!*@h:6379/1" } },
  },
  {
    name: "metaurl with shell metacharacters outside URL syntax is refused, naming Secret and key",
    in: { secret: sec({ metaurl: "redis://h/1;rm -rf /`id`" }) },
    errors: [["secret.metaurl", /^Secret default\/jfs-secret: "metaurl" contains a space/]],
  },

  // ---- Secret: format settings ----
  {
    name: "trash-days becomes a format flag",
    in: { secret: sec({ "trash-days": "1" }) },
    want: { formatOptions: ["--trash-days=1"] },
  },
  {
    name: "block-size, capacity, inodes, shards, compress",
    in: {
      secret: sec({ "block-size": "4096", capacity: "100", inodes: "1000", shards: "0", compress: "zstd" }),
    },
    want: {
      formatOptions: [
        "--block-size=4096",
        "--capacity=100",
        "--compress=zstd",
        "--inodes=1000",
        "--shards=0",
      ],
    },
  },
  {
    name: "trash-days must be a number",
    in: { secret: sec({ "trash-days": "one" }) },
    errors: [["secret.trash-days", /whole number of days/]],
  },
  {
    name: "capacity must be a number",
    in: { secret: sec({ capacity: "1Ti" }) },
    errors: [["secret.capacity", /whole number of GiB/]],
  },
  {
    name: "compress must be none, lz4 or zstd",
    in: { secret: sec({ compress: "gzip" }) },
    errors: [["secret.compress", /none, lz4 or zstd/]],
  },
  {
    name: "format-options: k=v and bare flags",
    in: { secret: sec({ "format-options": "hash-prefix, enable-acl=true" }) },
    want: { formatOptions: ["--enable-acl=true", "--hash-prefix"] },
  },
  {
    name: "format-options merged with dedicated keys",
    in: { secret: sec({ "format-options": "enable-acl", "trash-days": "0" }) },
    want: { formatOptions: ["--enable-acl", "--trash-days=0"] },
  },
  {
    name: "format-options with two =",
    in: { secret: sec({ "format-options": "a=b=c" }) },
    errors: [["secret.format-options", /more than one "="/]],
  },
  {
    name: "format-options cannot carry credentials",
    in: { secret: sec({ "format-options": "secret-key=x" }) },
    errors: [["secret.format-options", /use the Secret key "secret-key"/]],
  },
  {
    name: "format-options cannot repeat a dedicated key",
    in: { secret: sec({ "format-options": "trash-days=2", "trash-days": "1" }) },
    errors: [["secret.format-options", /already sets/]],
  },
  {
    name: "format-options invalid name",
    in: { secret: sec({ "format-options": ";rm -rf /" }) },
    errors: [["secret.format-options", /invalid name/]],
  },
  {
    name: "format-options control character in value",
    in: { secret: sec({ "format-options": "a=b\nc" }) },
    errors: [["secret.format-options", /control character/]],
  },
  {
    name: "enterprise: community format keys ignored",
    in: { secret: sec({ "trash-days": "1" }, eeSecret) },
    want: { formatOptions: [] },
    warnings: [/"trash-days" is a community edition/],
  },
  {
    name: "enterprise: format-options become auth flags",
    in: { secret: sec({ "format-options": "subdomain=x" }, eeSecret) },
    want: { formatOptions: ["--subdomain=x"] },
  },

  // ---- Secret: envs and configs ----
  {
    name: "envs as YAML",
    in: { secret: sec({ envs: "TZ: Asia/Shanghai\nDEBUG: 1\n" }) },
    want: { envs: { DEBUG: "1", TZ: "Asia/Shanghai" } },
  },
  {
    name: "envs as JSON, scalars to strings",
    in: { secret: sec({ envs: '{"A": true, "B": 2.5, "C": null}' }) },
    want: { envs: { A: "true", B: "2.5", C: "" } },
  },
  {
    name: "envs invalid YAML",
    in: { secret: sec({ envs: "a: [" }) },
    errors: [["secret.envs", /not valid YAML or JSON/]],
  },
  {
    name: "envs must be a map",
    in: { secret: sec({ envs: "- a\n- b" }) },
    errors: [["secret.envs", /must be a map/]],
  },
  {
    name: "envs values must be scalars",
    in: { secret: sec({ envs: "A: {b: c}" }) },
    errors: [["secret.envs", /nested value/]],
  },
  {
    name: "envs cannot shadow the driver's variables",
    in: { secret: sec({ envs: "ACCESS_KEY: x" }) },
    errors: [["secret.envs", /"ACCESS_KEY", which the driver defines/]],
  },
  {
    name: "envs invalid variable name",
    in: { secret: sec({ envs: '"1A": x' }) },
    errors: [["secret.envs", /invalid variable name "1A"/]],
  },
  {
    name: "configs as YAML",
    in: { secret: sec({ configs: "ca-secret: /etc/jfs/ca\nkeys: /etc/jfs/keys/" }) },
    want: { configs: { "ca-secret": "/etc/jfs/ca", keys: "/etc/jfs/keys" } },
  },
  {
    name: "configs relative directory",
    in: { secret: sec({ configs: "ca: etc/ca" }) },
    errors: [["secret.configs", /absolute path/]],
  },
  {
    name: "configs with ..",
    in: { secret: sec({ configs: "ca: /etc/../root" }) },
    errors: [["secret.configs", /without "\.\."/]],
  },
  {
    name: "configs key must be a Secret name",
    in: { secret: sec({ configs: "Bad_Name: /etc/x" }) },
    errors: [["secret.configs", /not a Secret name/]],
  },
  {
    name: "configs two Secrets in one directory",
    in: { secret: sec({ configs: "a: /etc/x\nb: /etc/x/" }) },
    errors: [["secret.configs", /two Secrets at "\/etc\/x"/]],
  },

  // ---- Image ----
  {
    name: "image from StorageClass parameter",
    in: { storageClass: { name: "sc", parameters: { [keys.mountImage]: "my/mount:1" } } },
    want: { image: "my/mount:1" },
  },
  {
    name: "driver config default image per edition",
    in: { driverConfig: { mountImage: { community: "mirror/mount:ce" } } },
    want: { image: "mirror/mount:ce" },
  },
  {
    name: "PVC annotation image beats volumeContext",
    in: { ...vc({ [keys.mountImage]: "a/b:1" }), pvcAnnotations: { [keys.mountImage]: "a/b:2" } },
    want: { image: "a/b:2" },
  },
  {
    name: "driver override image beats PVC annotation",
    in: {
      pvcAnnotations: { [keys.mountImage]: "a/b:2" },
      driverConfig: { overrides: { [keys.mountImage]: "forced/img:3" } },
    },
    want: { image: "forced/img:3" },
  },
  {
    name: "invalid image",
    in: vc({ [keys.mountImage]: "a b; rm" }),
    errors: [["juicefs/mount-image", /attribute "juicefs\/mount-image".*not a container image/]],
  },

  // ---- Resources ----
  {
    name: "default resources",
    in: {},
    want: { resources: { requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "5", memory: "5Gi" } } },
  },
  {
    name: "cpu request 500m",
    in: vc({ [keys.mountCpuRequest]: "500m" }),
    want: { resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { cpu: "5", memory: "5Gi" } } },
  },
  {
    name: "memory request 1.5Gi canonical",
    in: vc({ [keys.mountMemoryRequest]: "1.5Gi" }),
    want: { resources: { requests: { cpu: "1", memory: "1536Mi" }, limits: { cpu: "5", memory: "5Gi" } } },
  },
  {
    name: "memory limit 1e10 canonical",
    in: vc({ [keys.mountMemoryLimit]: "1e10" }),
    want: { resources: { requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "5", memory: "10G" } } },
  },
  {
    name: "cpu limit 2000m is 2",
    in: vc({ [keys.mountCpuLimit]: "2000m" }),
    want: { resources: { requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "2", memory: "5Gi" } } },
  },
  {
    name: "memory limit 0 removes the limit",
    in: vc(mem("0")),
    want: { resources: { requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "5" } } },
  },
  {
    name: "cpu limit -1 removes the limit",
    in: vc({ [keys.mountCpuLimit]: "-1" }),
    want: { resources: { requests: { cpu: "1", memory: "1Gi" }, limits: { memory: "5Gi" } } },
  },
  {
    name: "request 0 is kept",
    in: vc({ [keys.mountCpuRequest]: "0" }),
    want: { resources: { requests: { cpu: "0", memory: "1Gi" }, limits: { cpu: "5", memory: "5Gi" } } },
  },
  {
    name: "bad quantity names the key",
    in: vc({ [keys.mountCpuLimit]: "two" }),
    errors: [["juicefs/mount-cpu-limit", /"two" is not a Kubernetes quantity/]],
  },
  {
    name: "bad memory quantity 1GB",
    in: vc({ [keys.mountMemoryRequest]: "1GB" }),
    errors: [["juicefs/mount-memory-request", /not a Kubernetes quantity/]],
  },
  {
    name: "request above limit",
    in: vc({ [keys.mountCpuRequest]: "6" }),
    errors: [["juicefs/mount-cpu-request", /cpu request 6 is above the cpu limit 5/]],
  },
  {
    name: "memory request above lowered limit",
    in: vc({ [keys.mountMemoryLimit]: "512Mi" }),
    errors: [["juicefs/mount-memory-request", /memory request 1Gi is above the memory limit 512Mi/]],
  },
  {
    name: "request above removed limit is fine",
    in: vc({ [keys.mountCpuRequest]: "8", [keys.mountCpuLimit]: "0" }),
    want: { resources: { requests: { cpu: "8", memory: "1Gi" }, limits: { memory: "5Gi" } } },
  },
  {
    name: "negative request",
    in: vc({ [keys.mountCpuRequest]: "-1" }),
    errors: [["juicefs/mount-cpu-request", /cannot be negative/]],
  },
  {
    name: "PVC annotation overrides StorageClass resources",
    in: {
      storageClass: { name: "sc", parameters: { [keys.mountCpuLimit]: "2" } },
      pvcAnnotations: { [keys.mountCpuLimit]: "3" },
    },
    want: { resources: { requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "3", memory: "5Gi" } } },
  },
  {
    name: "volumeContext overrides StorageClass parameters",
    in: {
      storageClass: { name: "sc", parameters: { [keys.mountCpuLimit]: "2" } },
      ...vc({ [keys.mountCpuLimit]: "4" }),
    },
    want: { resources: { requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "4", memory: "5Gi" } } },
  },
  {
    name: "driver override beats PVC annotation",
    in: {
      pvcAnnotations: { [keys.mountCpuLimit]: "3" },
      driverConfig: { overrides: { [keys.mountCpuLimit]: "2" } },
    },
    want: { resources: { requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "2", memory: "5Gi" } } },
  },
  {
    name: "error message names the PVC annotation",
    in: { pvcAnnotations: { [keys.mountMemoryLimit]: "lots" } },
    errors: [
      ["juicefs/mount-memory-limit", /PersistentVolumeClaim annotation "juicefs\/mount-memory-limit"/],
    ],
  },
  {
    name: "error message names the StorageClass",
    in: { storageClass: { name: "fast", parameters: { [keys.mountCpuRequest]: "x" } } },
    errors: [["juicefs/mount-cpu-request", /StorageClass fast parameter/]],
  },

  // ---- PVC annotations policy ----
  {
    name: "PVC annotation not in the allowed list is ignored with a warning",
    in: { pvcAnnotations: { [keys.mountLabels]: "a: b" } },
    want: { mountLabels: {} },
    warnings: [/annotation "juicefs\/mount-labels" is ignored/],
  },
  {
    name: "driver config can allow more PVC annotations",
    in: {
      pvcAnnotations: { [keys.mountLabels]: "team: a" },
      driverConfig: { pvcAnnotationKeys: [keys.mountLabels] },
    },
    want: { mountLabels: { team: "a" } },
  },
  {
    name: "driver config allow-list replaces the default one",
    in: {
      pvcAnnotations: { [keys.mountCpuLimit]: "2" },
      driverConfig: { pvcAnnotationKeys: [keys.mountLabels] },
    },
    want: { resources: { requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "5", memory: "5Gi" } } },
    warnings: [/ignored/],
  },
  {
    name: "unrelated PVC annotations are ignored silently",
    in: { pvcAnnotations: { "pv.kubernetes.io/bind-completed": "yes" } },
    warningCount: 0,
  },
  {
    name: "unknown juicefs/ parameter warns (typo)",
    in: vc({ "juicefs/mount-cpu-limt": "1" }),
    warnings: [
      /"juicefs\/mount-cpu-limt" is not a key this driver knows; did you mean "juicefs\/mount-cpu-limit"/,
    ],
  },
  {
    name: "unrelated volume attributes are ignored",
    in: vc({ "storage.kubernetes.io/csiProvisionerIdentity": "x", [keys.pathPattern]: "$" + "{.pvc.name}" }),
    warningCount: 0,
  },

  // ---- Delete delay, clean cache ----
  { name: "default delete delay and clean cache", in: {}, want: { deleteDelayMs: 0, cleanCache: false } },
  {
    name: "delete delay 1m30s",
    in: vc({ [keys.mountDeleteDelay]: "1m30s" }),
    want: { deleteDelayMs: 90_000 },
  },
  { name: "delete delay 90s", in: vc({ [keys.mountDeleteDelay]: "90s" }), want: { deleteDelayMs: 90_000 } },
  {
    name: "delete delay without unit",
    in: vc({ [keys.mountDeleteDelay]: "90" }),
    errors: [["juicefs/mount-delete-delay", /not a duration/]],
  },
  {
    name: "negative delete delay",
    in: vc({ [keys.mountDeleteDelay]: "-1s" }),
    errors: [["juicefs/mount-delete-delay", /negative/]],
  },
  { name: "clean cache true", in: vc({ [keys.cleanCache]: "true" }), want: { cleanCache: true } },
  { name: "clean cache TRUE", in: vc({ [keys.cleanCache]: "TRUE" }), want: { cleanCache: true } },
  { name: "clean cache false", in: vc({ [keys.cleanCache]: "false" }), want: { cleanCache: false } },
  {
    name: "clean cache yes is an error",
    in: vc({ [keys.cleanCache]: "yes" }),
    errors: [["juicefs/clean-cache", /"true" or "false"/]],
  },

  // ---- Labels, annotations, host paths, cache PVCs, subPath, host mount root ----
  {
    name: "mount labels YAML",
    in: vc({ [keys.mountLabels]: "team: storage\ntier: gold" }),
    want: { mountLabels: { team: "storage", tier: "gold" } },
  },
  {
    name: "mount labels JSON with prefix",
    in: vc({ [keys.mountLabels]: '{"example.com/owner": "a-b_c.d"}' }),
    want: { mountLabels: { "example.com/owner": "a-b_c.d" } },
  },
  {
    name: "mount label invalid key",
    in: vc({ [keys.mountLabels]: '{"bad key": "x"}' }),
    errors: [["juicefs/mount-labels", /"bad key" is not a valid label key/]],
  },
  {
    name: "mount label invalid value",
    in: vc({ [keys.mountLabels]: '{"a": "has space"}' }),
    errors: [["juicefs/mount-labels", /invalid value/]],
  },
  {
    name: "mount label value too long",
    in: vc({ [keys.mountLabels]: `{"a": "${"x".repeat(64)}"}` }),
    errors: [["juicefs/mount-labels", /invalid value/]],
  },
  {
    name: "mount label cannot replace the driver's labels",
    in: vc({ [keys.mountLabels]: "volume-id: other" }),
    errors: [["juicefs/mount-labels", /set by the driver/]],
  },
  {
    name: "mount labels not a map",
    in: vc({ [keys.mountLabels]: "a=b,c=d" }),
    errors: [["juicefs/mount-labels", /must be a map/]],
  },
  {
    name: "mount annotations JSON",
    in: vc({ [keys.mountAnnotations]: '{"prometheus.io/scrape": "true", "note": "any: value"}' }),
    want: { mountAnnotations: { note: "any: value", "prometheus.io/scrape": "true" } },
  },
  {
    name: "mount annotation invalid key",
    in: vc({ [keys.mountAnnotations]: '{"a/b/c": "x"}' }),
    errors: [["juicefs/mount-annotations", /not a valid annotation key/]],
  },
  {
    name: "host paths normalized, deduplicated, sorted",
    in: vc({ [keys.hostPath]: "/etc/jfs/, /data//certs,/etc/jfs" }),
    want: { hostPaths: ["/data/certs", "/etc/jfs"] },
  },
  {
    name: "host path must be absolute",
    in: vc({ [keys.hostPath]: "etc/jfs" }),
    errors: [["juicefs/host-path", /absolute path/]],
  },
  {
    name: "host path cannot be /",
    in: vc({ [keys.hostPath]: "/" }),
    errors: [["juicefs/host-path", /not "\/"/]],
  },
  {
    name: "cache PVC replaces the default cache dir",
    in: vc({ [keys.mountCachePvc]: "cache-a,cache-b" }),
    want: {
      cacheDirs: [],
      cachePvcs: [
        { claimName: "cache-a", mountPath: "/var/jfsCache-0" },
        { claimName: "cache-b", mountPath: "/var/jfsCache-1" },
      ],
      mountOptions: ["cache-dir=/var/jfsCache-0:/var/jfsCache-1"],
    },
  },
  {
    name: "cache PVC with explicit cache-dir keeps both",
    in: { ...vc({ [keys.mountCachePvc]: "cache-a" }), ...pvOpts("cache-dir=/ssd") },
    want: { cacheDirs: ["/ssd"], mountOptions: ["cache-dir=/ssd:/var/jfsCache-0"] },
  },
  {
    name: "cache PVC invalid name",
    in: vc({ [keys.mountCachePvc]: "Cache_A" }),
    errors: [["juicefs/mount-cache-pvc", /not a PersistentVolumeClaim name/]],
  },
  {
    name: "cache PVC with cache-dir=memory",
    in: { ...vc({ [keys.mountCachePvc]: "cache-a" }), ...pvOpts("cache-dir=memory") },
    errors: [["juicefs/mount-cache-pvc", /cache-dir=memory/]],
  },
  { name: "subPath normalized", in: vc({ subPath: "/pvc-1//data/" }), want: { subPath: "pvc-1/data" } },
  {
    name: "subPath with .. refused",
    in: vc({ subPath: "../other" }),
    errors: [["subPath", /contains "\.\."/]],
  },
  {
    name: "host mount root from driver config",
    in: { driverConfig: { hostMountRoot: "/mnt/jfs/" } },
    want: { hostMountRoot: "/mnt/jfs" },
  },
  { name: "default host mount root", in: {}, want: { hostMountRoot: "/var/lib/juicefs/volume" } },
  {
    name: "relative host mount root refused",
    in: { driverConfig: { hostMountRoot: "var/jfs" } },
    errors: [["driverConfig.hostMountRoot", /absolute path/]],
  },
  { name: "read-only publish", in: { readOnly: true }, want: { readOnly: true } },
  { name: "empty volume id", in: { volumeId: "" }, errors: [["volumeId", /empty/]] },

  // ---- Mount options ----
  {
    name: "default cache dir",
    in: {},
    want: { cacheDirs: ["/var/jfsCache"], mountOptions: ["cache-dir=/var/jfsCache"] },
  },
  {
    name: "PV mount options pass through, sorted",
    in: pvOpts("open-cache=1", "allow_other", "attr-cache=2"),
    want: { mountOptions: ["allow_other", "attr-cache=2", "cache-dir=/var/jfsCache", "open-cache=1"] },
  },
  {
    name: "comma-separated entries are split",
    in: pvOpts("a=1,b"),
    want: { mountOptions: ["a=1", "b", "cache-dir=/var/jfsCache"] },
  },
  {
    name: "volumeContext mountOptions string",
    in: vc({ mountOptions: "enable-xattr, max-uploads=50" }),
    want: { mountOptions: ["cache-dir=/var/jfsCache", "enable-xattr", "max-uploads=50"] },
  },
  {
    name: "StorageClass < PV < volumeContext mount options",
    in: {
      storageClass: { name: "sc", mountOptions: ["max-uploads=10", "a=sc"] },
      pvMountOptions: ["max-uploads=20"],
      volumeContext: { mountOptions: "max-uploads=30" },
    },
    want: { mountOptions: ["a=sc", "cache-dir=/var/jfsCache", "max-uploads=30"] },
    warnings: [/overrides "max-uploads=10"/, /overrides "max-uploads=20"/],
  },
  {
    name: "same option twice with the same value: no warning",
    in: { storageClass: { name: "sc", mountOptions: ["a=1"] }, pvMountOptions: ["a=1"] },
    warningCount: 0,
  },
  {
    name: "driver override of mountOptions replaces the volume's string",
    in: { ...vc({ mountOptions: "a=1" }), driverConfig: { overrides: { mountOptions: "b=2" } } },
    want: { mountOptions: ["b=2", "cache-dir=/var/jfsCache"] },
  },
  {
    name: "cache-dir colon list normalized",
    in: pvOpts("cache-dir=/ssd1/:/ssd2//jfs:/ssd1"),
    want: { cacheDirs: ["/ssd1", "/ssd2/jfs"], mountOptions: ["cache-dir=/ssd1:/ssd2/jfs"] },
  },
  {
    name: "cache-dir=memory: no directory",
    in: pvOpts("cache-dir=memory"),
    want: { cacheDirs: [], mountOptions: ["cache-dir=memory"] },
  },
  {
    name: "cache-dir relative",
    in: pvOpts("cache-dir=cache"),
    errors: [["mountOptions", /cache-dir "cache" must be an absolute path/]],
  },
  {
    name: "cache-dir with ..",
    in: pvOpts("cache-dir=/var/../etc"),
    errors: [["mountOptions", /without "\.\."/]],
  },
  {
    name: "cache-dir memory mixed with dirs",
    in: pvOpts("cache-dir=memory:/ssd"),
    errors: [["mountOptions", /cannot be combined/]],
  },
  { name: "cache-dir wildcard", in: pvOpts("cache-dir=/data*/jfs"), errors: [["mountOptions", /wildcard/]] },
  { name: "cache-dir root", in: pvOpts("cache-dir=/"), errors: [["mountOptions", /node's root/]] },
  { name: "cache-dir without value", in: pvOpts("cache-dir"), errors: [["mountOptions", /needs a value/]] },
  {
    name: "subdir normalized",
    in: pvOpts("subdir=/team//data/"),
    want: { mountOptions: ["cache-dir=/var/jfsCache", "subdir=team/data"] },
  },
  {
    name: "subdir / means the root",
    in: pvOpts("subdir=/"),
    want: { mountOptions: ["cache-dir=/var/jfsCache"] },
  },
  {
    name: "subdir with ..",
    in: pvOpts("subdir=.."),
    errors: [["mountOptions", /subdir "\.\." contains "\.\."/]],
  },
  {
    name: "subdir escaping the volume",
    in: pvOpts("subdir=a/../../b"),
    errors: [["mountOptions", /must stay inside/]],
  },
  {
    name: "buffer-size within the limit",
    in: pvOpts("buffer-size=1024"),
    want: { mountOptions: ["buffer-size=1024", "cache-dir=/var/jfsCache"] },
    warningCount: 0,
  },
  {
    name: "buffer-size above the memory limit is an error",
    in: { ...pvOpts("buffer-size=2048"), ...vc({ ...mem("1Gi"), [keys.mountMemoryRequest]: "512Mi" }) },
    errors: [["mountOptions", /buffer-size 2048 MiB is above the client's memory limit 1Gi.*OOM-killed/]],
  },
  {
    name: "buffer-size with a unit above the limit",
    in: pvOpts("buffer-size=6G"),
    errors: [["mountOptions", /above the client's memory limit 5Gi/]],
  },
  { name: "buffer-size near the limit warns", in: pvOpts("buffer-size=4500"), warnings: [/more than 80%/] },
  {
    name: "buffer-size without memory limit is fine",
    in: { ...pvOpts("buffer-size=100000"), ...vc(mem("0")) },
    warningCount: 0,
  },
  {
    name: "buffer-size not a size",
    in: pvOpts("buffer-size=lots"),
    errors: [["mountOptions", /buffer-size "lots" is not a size/]],
  },
  { name: "buffer-size 0", in: pvOpts("buffer-size=0"), errors: [["mountOptions", /greater than 0/]] },
  {
    name: "small memory limit below the default buffer warns",
    in: vc({ ...mem("256Mi"), [keys.mountMemoryRequest]: "128Mi" }),
    warnings: [/below JuiceFS's default buffer-size/],
  },
  {
    name: "cache-size with unit is passed in MiB",
    in: pvOpts("cache-size=10G"),
    want: { mountOptions: ["cache-dir=/var/jfsCache", "cache-size=10240"] },
  },
  {
    name: "cache-size with a non-whole MiB is kept as written",
    in: pvOpts("cache-size=1.5M"),
    want: { mountOptions: ["cache-dir=/var/jfsCache", "cache-size=1.5M"] },
  },
  {
    name: "enterprise: storage ignored with a warning",
    in: { secret: { ...eeSecret, storage: "s3" } },
    warnings: [/"storage" is a community edition setting/],
  },
  {
    name: "empty canonical key falls back to its alias",
    in: { secret: { ...ceSecret, "access-key": "", accesskey: "AK3" } },
    want: { secret: { ...ceSecret, "access-key": "AK3" } },
    warningCount: 0,
  },
  {
    name: "cache-size not a size",
    in: pvOpts("cache-size=big"),
    errors: [["mountOptions", /cache-size "big" is not a size/]],
  },
  {
    name: "writeback refused with the data-loss reason",
    in: pvOpts("writeback"),
    errors: [
      [
        "mountOptions",
        /PersistentVolume pvc-1 mountOptions: mount option "writeback" is refused: .*Mount Pod or sidecar.*lost/,
      ],
    ],
  },
  {
    name: "writeback=true refused",
    in: pvOpts("writeback=true"),
    errors: [["mountOptions", /"writeback=true" is refused/]],
  },
  {
    name: "writeback=false allowed",
    in: pvOpts("writeback=false"),
    want: { mountOptions: ["cache-dir=/var/jfsCache", "writeback=false"] },
  },
  {
    name: "writeback in volumeContext names the attribute",
    in: vc({ mountOptions: "writeback" }),
    errors: [["mountOptions", /attribute "mountOptions": mount option "writeback" is refused/]],
  },
  {
    name: "writeback in StorageClass mountOptions",
    in: { storageClass: { name: "fast", mountOptions: ["writeback"] } },
    errors: [["mountOptions", /StorageClass fast mountOptions/]],
  },
  {
    name: "writeback_size relative refused",
    in: pvOpts("writeback_size=100"),
    errors: [["mountOptions", /write-back mode/]],
  },
  {
    name: "writeback-size relative refused",
    in: pvOpts("writeback-size=100"),
    errors: [["mountOptions", /write-back mode/]],
  },
  {
    name: "upload-delay refused",
    in: pvOpts("upload-delay=1h"),
    errors: [["mountOptions", /delays uploads/]],
  },
  {
    name: "upload-delay=0 allowed",
    in: pvOpts("upload-delay=0"),
    want: { mountOptions: ["cache-dir=/var/jfsCache", "upload-delay=0"] },
  },
  {
    name: "upload-hours refused",
    in: pvOpts("upload-hours=1"),
    errors: [["mountOptions", /delays uploads/]],
  },
  {
    name: "writeback_cache (FUSE) allowed",
    in: pvOpts("writeback_cache"),
    want: { mountOptions: ["cache-dir=/var/jfsCache", "writeback_cache"] },
  },
  ...["foreground", "background", "d", "no-update", "metrics=0.0.0.0:1", "rsa-key=/k", "update-fstab"].map(
    (o): Case => ({
      name: `driver-owned option ${o}`,
      in: pvOpts(o),
      errors: [["mountOptions", /set by the driver and cannot be overridden/]],
    }),
  ),
  {
    name: "option with more than one =",
    in: pvOpts("a=b=c"),
    errors: [["mountOptions", /more than one "="/]],
  },
  { name: "option with an empty name", in: pvOpts("=x"), errors: [["mountOptions", /empty name/]] },
  { name: "option with an empty value", in: pvOpts("heartbeat="), errors: [["mountOptions", /empty value/]] },
  {
    name: "option with leading dashes",
    in: pvOpts("--cache-size=1"),
    errors: [["mountOptions", /without dashes/]],
  },
  {
    name: "option name with shell characters",
    in: pvOpts("a;b=1"),
    errors: [["mountOptions", /option name "a;b" is not valid/]],
  },
  {
    name: "option value with a newline",
    in: pvOpts("a=b\nc"),
    errors: [["mountOptions", /control character/]],
  },
  { name: "option value with NUL", in: pvOpts("a=b\u0000"), errors: [["mountOptions", /control character/]] },
  {
    name: "option value with shell characters is kept verbatim",
    in: pvOpts("fsname=$(id);`x`'\"&|"),
    want: { mountOptions: ["cache-dir=/var/jfsCache", "fsname=$(id);`x`'\"&|"] },
  },
  {
    name: "ro makes the client read-only",
    in: pvOpts("ro"),
    want: { readOnly: true, mountOptions: ["cache-dir=/var/jfsCache"] },
  },
  { name: "read-only option", in: pvOpts("read-only"), want: { readOnly: true } },
  { name: "ro=maybe is an error", in: pvOpts("ro=maybe"), errors: [["mountOptions", /takes no value/]] },
  {
    name: "rw, _netdev, defaults are dropped",
    in: pvOpts("rw", "_netdev", "defaults"),
    want: { readOnly: false, mountOptions: ["cache-dir=/var/jfsCache"] },
  },
  {
    name: "empty entries are skipped",
    in: pvOpts("", " , ,a"),
    want: { mountOptions: ["a", "cache-dir=/var/jfsCache"] },
  },

  // ---- All errors at once ----
  {
    name: "all problems are reported together",
    in: {
      secret: without(ceSecret, "name"),
      pvMountOptions: ["writeback", "a=b=c"],
      volumeContext: { [keys.mountCpuLimit]: "x", [keys.mountDeleteDelay]: "soon" },
    },
    errors: [
      ["secret.name", /missing/],
      ["mountOptions", /writeback/],
      ["mountOptions", /more than one/],
      ["juicefs/mount-cpu-limit", /quantity/],
      ["juicefs/mount-delete-delay", /duration/],
    ],
  },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const r = parseSettings(input(c.in));
    if (c.errors) {
      t.equal(r.ok, false, "refused");
      if (r.ok) return;
      for (const [field, re] of c.errors)
        t.ok(
          r.errors.some((e) => e.field === field && re.test(e.message)),
          `error on ${field} matching ${re}; got ${JSON.stringify(r.errors)}`,
        );
      for (const e of r.errors)
        t.ok(e.message.length > 20 && typeof e.value === "string", "message and value present");
    } else {
      t.equal(r.ok, true, r.ok ? "accepted" : JSON.stringify(r.errors));
      if (!r.ok) return;
      for (const [k, v] of Object.entries(c.want ?? {})) t.same(r.settings[k as keyof JuiceFSSettings], v, k);
    }
    for (const re of c.warnings ?? [])
      t.ok(
        r.warnings.some((w) => re.test(w)),
        `warning ${re}; got ${JSON.stringify(r.warnings)}`,
      );
    if (c.warningCount !== undefined) t.equal(r.warnings.length, c.warningCount, JSON.stringify(r.warnings));
  });
}

t.test("secret values are redacted in errors and never appear in messages", async (t) => {
  const hostile = {
    metaurl: "-redis://user:HUNTER2@h",
    token: "TOK-HUNTER2",
    "access-key": "AK-HUNTER2\u0000",
    "secret-key": "SK-HUNTER2\u0000",
    bucket: "https://HUNTER2\u0000",
    envs: "HUNTER2: [",
    "format-options": "a=HUNTER2=b",
  };
  const r = parseSettings(input({ secret: { name: "myjfs", ...hostile } }));
  t.equal(r.ok, false);
  if (r.ok) return;
  t.ok(r.errors.length >= 6);
  for (const e of r.errors) {
    if (e.field.startsWith("secret.")) t.equal(e.value, "[REDACTED]", `${e.field} redacted`);
    t.notMatch(e.message, /HUNTER2/, `${e.field} message has no secret`);
  }
});

t.test("non-secret fields keep their value in errors", async (t) => {
  const r = parseSettings(input({ volumeContext: { [keys.mountCpuLimit]: "two" } }));
  t.equal(r.ok, false);
  if (!r.ok)
    t.same(r.errors[0], { field: "juicefs/mount-cpu-limit", value: "two", message: r.errors[0]!.message });
});

t.test("messages name the Secret, or the volume when the Secret is unnamed", async (t) => {
  const named = parseSettings(input({ secret: {} }));
  t.ok(!named.ok && named.errors.every((e) => e.message.startsWith("Secret default/jfs-secret:")));
  const anon = parseSettings({ volumeId: "pv-x", secret: {} });
  t.ok(!anon.ok && anon.errors.every((e) => e.message.includes("volume pv-x")));
});

t.test("non-string inputs are errors, not crashes", async (t) => {
  const r = parseSettings(
    input({
      secret: { ...ceSecret, capacity: 5 as unknown as string },
      volumeContext: { [keys.mountCpuLimit]: 2 as unknown as string },
    }),
  );
  t.equal(r.ok, false);
  if (!r.ok) {
    t.ok(r.errors.some((e) => e.field === "secret.capacity"));
    t.ok(r.errors.some((e) => e.field === keys.mountCpuLimit));
  }
});

t.test("parseSettings does not modify its input", async (t) => {
  const i = input({ secret: { ...ceSecret, accesskey: "x", metaurl: "h:1" }, pvMountOptions: ["b", "a"] });
  const copy = structuredClone(i);
  parseSettings(i);
  t.same(i, copy);
});
