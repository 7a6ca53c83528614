// settingsHash: stable under key order, whitespace and irrelevant fields; changes with the running client.
import fc from "fast-check";
import t from "tap";
import type { SettingsInput } from "../../driver/juicefs/index.ts";
import { canonicalJson, keys, parseSettings, settingsHash } from "../../driver/juicefs/index.ts";
import { ceSecret, input, settingsOf } from "./fixtures.ts";

const hashOf = (over: Partial<SettingsInput> = {}): string => settingsHash(settingsOf(over));
const base = hashOf();

t.test("hash is label-safe", async (t) => {
  t.match(base, /^[0-9a-f]{63}$/);
  t.equal(hashOf(), base, "deterministic");
});

t.test("canonicalJson sorts keys at every depth and drops undefined", async (t) => {
  t.equal(
    canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: undefined } }),
    '{"a":{"d":[2,{"y":2,"z":1}]},"b":1}',
  );
  t.equal(canonicalJson([undefined]), "[null]");
});

const unchanged: [string, Partial<SettingsInput>][] = [
  ["secret key order", { secret: Object.fromEntries(Object.entries(ceSecret).reverse()) }],
  ["secret value whitespace", { secret: { ...ceSecret, metaurl: ` ${ceSecret.metaurl}\n` } }],
  [
    "legacy alias vs canonical key",
    {
      secret: {
        ...Object.fromEntries(Object.entries(ceSecret).filter(([k]) => k !== "access-key")),
        accesskey: ceSecret["access-key"]!,
      },
    },
  ],
  ["mount option order", { pvMountOptions: [] }],
  ["subPath (a bind detail)", { volumeContext: { subPath: "other/dir" } }],
  ["delete delay (a node plugin policy)", { volumeContext: { [keys.mountDeleteDelay]: "1h" } }],
  ["clean cache (a node plugin policy)", { volumeContext: { [keys.cleanCache]: "true" } }],
  [
    "object name and secret ref in messages",
    { objectName: "PV other", secretRef: { name: "x", namespace: "y" } },
  ],
  [
    "default resources written out",
    { volumeContext: { [keys.mountCpuRequest]: "1000m", [keys.mountMemoryLimit]: "5120Mi" } },
  ],
  ["default cache dir written out", { pvMountOptions: ["cache-dir=/var/jfsCache/"] }],
  ["dropped mount(8) noise", { pvMountOptions: ["rw", "_netdev"] }],
  ["unrelated attributes", { volumeContext: { "storage.kubernetes.io/csiProvisionerIdentity": "123" } }],
  [
    "unrelated PVC annotations",
    { pvcAnnotations: { "volume.beta.kubernetes.io/storage-provisioner": "csi.juicefs.com" } },
  ],
];
for (const [name, over] of unchanged)
  t.test(`hash unchanged by ${name}`, async (t) => t.equal(hashOf(over), base));

t.test("hash unchanged by mount option order and spacing", async (t) => {
  t.equal(hashOf({ pvMountOptions: ["a=1", "b"] }), hashOf({ pvMountOptions: ["b", " a=1 "] }));
  t.equal(hashOf({ pvMountOptions: ["a=1,b"] }), hashOf({ volumeContext: { mountOptions: "b, a=1" } }));
});

t.test("hash unchanged by YAML vs JSON envs/configs and their whitespace", async (t) => {
  const yaml = hashOf({ secret: { ...ceSecret, envs: "B: 2\nA: x\n", configs: "s: /etc/s" } });
  const json = hashOf({ secret: { ...ceSecret, envs: '{ "A": "x", "B": 2 }', configs: '{"s": "/etc/s/"}' } });
  t.equal(yaml, json);
});

t.test("hash unchanged by label/annotation key order", async (t) => {
  t.equal(
    hashOf({ volumeContext: { [keys.mountLabels]: "a: 1\nb: 2", [keys.mountAnnotations]: "x: 1\ny: 2" } }),
    hashOf({
      volumeContext: {
        [keys.mountLabels]: '{"b": "2", "a": "1"}',
        [keys.mountAnnotations]: '{"y": "2", "x": "1"}',
      },
    }),
  );
});

const changed: [string, Partial<SettingsInput>][] = [
  ["image", { volumeContext: { [keys.mountImage]: "juicedata/mount:ce-v1.2.0" } }],
  ["a mount option", { pvMountOptions: ["open-cache=1"] }],
  ["a mount option value", { pvMountOptions: ["cache-size=100"] }],
  ["read-only", { pvMountOptions: ["ro"] }],
  ["metaurl", { secret: { ...ceSecret, metaurl: "redis://other/1" } }],
  ["secret key", { secret: { ...ceSecret, "secret-key": "rotated" } }],
  ["token vs metaurl edition", { secret: { name: "myjfs", token: "t" } }],
  ["envs", { secret: { ...ceSecret, envs: "A: 1" } }],
  ["configs", { secret: { ...ceSecret, configs: "s: /etc/s" } }],
  ["format options", { secret: { ...ceSecret, "trash-days": "2" } }],
  ["cpu limit", { volumeContext: { [keys.mountCpuLimit]: "4" } }],
  ["memory request", { volumeContext: { [keys.mountMemoryRequest]: "2Gi" } }],
  ["limit removed", { volumeContext: { [keys.mountMemoryLimit]: "0" } }],
  ["cache dirs", { pvMountOptions: ["cache-dir=/ssd"] }],
  ["cache PVC", { volumeContext: { [keys.mountCachePvc]: "c" } }],
  ["host path", { volumeContext: { [keys.hostPath]: "/etc/x" } }],
  ["mount labels", { volumeContext: { [keys.mountLabels]: "a: b" } }],
  ["mount annotations", { volumeContext: { [keys.mountAnnotations]: "a: b" } }],
  ["host mount root", { driverConfig: { hostMountRoot: "/mnt/jfs" } }],
  ["volume id", { volumeId: "pvc-2" }],
  ["subdir option (the client's root)", { pvMountOptions: ["subdir=a"] }],
];
for (const [name, over] of changed)
  t.test(`hash changes with ${name}`, async (t) => t.not(hashOf(over), base));

t.test("property: hash is stable under any key order of any input map", async (t) => {
  const shuffle = <T>(xs: T[], seed: number): T[] => {
    const a = [...xs];
    let s = seed;
    for (let i = a.length - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) >>> 0;
      const j = s % (i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  };
  const reorder = (r: Record<string, string>, seed: number) =>
    Object.fromEntries(shuffle(Object.entries(r), seed));
  const labelKey = fc.stringMatching(/^[a-z][a-z0-9]{0,10}$/);
  fc.assert(
    fc.property(
      fc.dictionary(labelKey, fc.stringMatching(/^[a-z0-9]{0,10}$/), { maxKeys: 5 }),
      fc.dictionary(
        labelKey.map((k) => k.toUpperCase()),
        fc.string({ maxLength: 20 }),
        { maxKeys: 5 },
      ),
      fc.array(fc.stringMatching(/^[a-z][a-z-]{0,8}=[0-9]{1,3}$/), { maxLength: 5 }),
      fc.nat(),
      (lbls, envs, opts, seed) => {
        const uniqueOpts = [...new Map(opts.map((o) => [o.split("=")[0], o])).values()];
        const make = (sd: number) =>
          parseSettings(
            input({
              secret: reorder({ ...ceSecret, envs: JSON.stringify(reorder(envs, sd)) }, sd),
              pvMountOptions: shuffle(uniqueOpts, sd),
              volumeContext: reorder(
                { [keys.mountLabels]: JSON.stringify(reorder(lbls, sd)), [keys.mountCpuLimit]: "3" },
                sd,
              ),
            }),
          );
        const a = make(seed);
        const b = make(seed + 1);
        if (!a.ok || !b.ok) return !a.ok && !b.ok;
        return settingsHash(a.settings) === settingsHash(b.settings);
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});

t.test("property: different secret values give different hashes", async (t) => {
  fc.assert(
    fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (a, b) => {
      fc.pre(
        a.trim() !== b.trim() &&
          a.trim() !== "" &&
          b.trim() !== "" &&
          !a.includes("\u0000") &&
          !b.includes("\u0000"),
      );
      return (
        hashOf({ secret: { ...ceSecret, "secret-key": a } }) !==
        hashOf({ secret: { ...ceSecret, "secret-key": b } })
      );
    }),
    { numRuns: 300 },
  );
  t.pass();
});
