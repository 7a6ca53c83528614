// Client command lines: exact argv per edition, the kubelet's $(VAR) rules, and no-injection properties
// (checked by expanding like the kubelet and by running the container's command with a real /bin/sh).
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import t from "tap";
import type { ClientCommands, JuiceFSSettings, V1Container } from "../../driver/juicefs/index.ts";
import {
  buildMountContainer,
  buildMountPod,
  clientCommands,
  escapeEnvRefs,
  expandEnvRefs,
  mountSecretData,
  parseSettings,
  splitMetaPassword,
} from "../../driver/juicefs/index.ts";
import { ceSecret, eeSecret, input, settingsOf } from "./fixtures.ts";

const mp = "/var/lib/juicefs/volume/pvc-1-abc";

t.test(
  "community: format then mount, secrets only as $(VAR), object storage keys only in the environment",
  async (t) => {
    const c = clientCommands(settingsOf({ secret: { ...ceSecret, "trash-days": "1" } }), mp);
    t.same(c.prepare, [
      "juicefs",
      "format",
      "--trash-days=1",
      "--storage=$(JFS_STORAGE)",
      "--bucket=$(JFS_BUCKET)",
      "$(JFS_METAURL)",
      "myjfs",
    ]);
    t.same(c.mount, [
      "juicefs",
      "mount",
      "--foreground",
      "--metrics=0.0.0.0:9567",
      "--cache-dir=/var/jfsCache",
      "$(JFS_METAURL)",
      mp,
    ]);
    t.same(c.umount, ["juicefs", "umount", mp]);
    t.same(c.env, [
      { name: "JFS_METAURL", secretKey: "metaurl" },
      { name: "JFS_STORAGE", secretKey: "storage" },
      { name: "JFS_BUCKET", secretKey: "bucket" },
      { name: "ACCESS_KEY", secretKey: "access-key" },
      { name: "SECRET_KEY", secretKey: "secret-key" },
    ]);
  },
);

t.test("enterprise: auth then mount by name, --no-update", async (t) => {
  const c = clientCommands(
    settingsOf({ secret: { ...eeSecret, bucket: "b", "format-options": "subdomain=x" } }),
    mp,
  );
  t.same(c.prepare, [
    "juicefs",
    "auth",
    "myjfs",
    "--token=$(TOKEN)",
    "--bucket=$(JFS_BUCKET)",
    "--access-key=$(ACCESS_KEY)",
    "--secret-key=$(SECRET_KEY)",
    "--subdomain=x",
  ]);
  t.same(c.mount, [
    "juicefs",
    "mount",
    "--foreground",
    "--no-update",
    "--metrics=0.0.0.0:9567",
    "--cache-dir=/var/jfsCache",
    "myjfs",
    mp,
  ]);
  t.same(
    c.env.map((e) => e.name),
    ["TOKEN", "JFS_BUCKET", "ACCESS_KEY", "SECRET_KEY"],
  );
});

t.test("community without storage/bucket: no format", async (t) => {
  const { storage: _s, bucket: _b, ...rest } = ceSecret;
  const c = clientCommands(settingsOf({ secret: rest }), mp);
  t.equal(c.prepare, undefined);
  t.same(
    c.env.map((e) => e.name),
    ["JFS_METAURL", "ACCESS_KEY", "SECRET_KEY"],
  );
});

t.test("mount options: JuiceFS flags as --k=v, FUSE options in one -o", async (t) => {
  const c = clientCommands(
    settingsOf({
      pvMountOptions: ["allow_other", "cache-size=1024", "enable-xattr", "user_id=1000", "subdir=a"],
    }),
    mp,
  );
  t.same(c.mount, [
    "juicefs",
    "mount",
    "--foreground",
    "--metrics=0.0.0.0:9567",
    "--cache-dir=/var/jfsCache",
    "--cache-size=1024",
    "--enable-xattr",
    "--subdir=a",
    "-o",
    "allow_other,user_id=1000",
    "$(JFS_METAURL)",
    mp,
  ]);
});

t.test("read-only adds --read-only", async (t) => {
  t.ok(clientCommands(settingsOf({ pvMountOptions: ["ro"] }), mp).mount.includes("--read-only"));
  t.notOk(clientCommands(settingsOf(), mp).mount.includes("--read-only"));
});

t.test("envs are Secret references after the driver's own, never literal values", async (t) => {
  const s = settingsOf({ secret: { ...ceSecret, envs: "B: 2\nA: $(JFS_METAURL)" } });
  const c = clientCommands(s, mp);
  t.same(c.env.slice(-2), [
    { name: "A", envsEntry: "A" },
    { name: "B", envsEntry: "B" },
  ]);
  // Mount Pods: one key per variable in the driver's per-volume Secret, referenced by secretKeyRef.
  const container = buildMountContainer(s, { mountPoint: mp, secretName: "jfs-x" });
  t.same(container.env!.slice(-2), [
    { name: "A", valueFrom: { secretKeyRef: { name: "jfs-x", key: "envs.A" } } },
    { name: "B", valueFrom: { secretKeyRef: { name: "jfs-x", key: "envs.B" } } },
  ]);
  t.match(mountSecretData(s), { "envs.A": "$(JFS_METAURL)", "envs.B": "2" });
});

t.test(
  "a password in the meta URL wins over an envs META_PASSWORD (as JuiceFS itself decides)",
  async (t) => {
    const withPw = clientCommands(
      settingsOf({ secret: { ...ceSecret, metaurl: "redis://:pw@h:6379/1", envs: "META_PASSWORD: other" } }),
      mp,
    );
    t.notOk(
      withPw.env.some((e) => e.name === "META_PASSWORD"),
      "the URL's password is used; the envs entry is dropped",
    );
    const without = clientCommands(
      settingsOf({ secret: { ...ceSecret, metaurl: "redis://h:6379/1", envs: "META_PASSWORD: mine" } }),
      mp,
    );
    t.same(
      without.env.filter((e) => e.name === "META_PASSWORD"),
      [{ name: "META_PASSWORD", envsEntry: "META_PASSWORD" }],
    );
  },
);

t.test("a $ in a literal is escaped so the kubelet gives it back verbatim", async (t) => {
  const c = clientCommands(settingsOf({ pvMountOptions: ["fsname=$(JFS_METAURL)", "heartbeat=$$x$"] }), mp);
  t.ok(c.mount.includes("--heartbeat=$$$$x$$"));
  const env = { JFS_METAURL: "redis://secret" };
  const expanded = c.mount.map((a) => expandEnvRefs(a, env));
  t.ok(expanded.includes("--heartbeat=$$x$"));
  t.ok(expanded.includes("fsname=$(JFS_METAURL)"));
  t.equal(
    expanded.filter((a) => a === "redis://secret").length,
    1,
    "only the source positional is the metaurl",
  );
});

// ---- expandEnvRefs: the kubelet's rules ----
const env = { A: "x", B: "$(A)", EMPTY: "", "WITH SPACE": "s" };
const expansions: [string, string][] = [
  ["$(A)", "x"],
  ["pre-$(A)-post", "pre-x-post"],
  ["$(A)$(A)", "xx"],
  ["$(B)", "$(A)"],
  ["$(EMPTY)", ""],
  ["$(UNDEFINED)", "$(UNDEFINED)"],
  ["$$(A)", "$(A)"],
  ["$$$(A)", "$x"],
  ["$$$$(A)", "$$(A)"],
  ["$$", "$"],
  ["$", "$"],
  ["a$", "a$"],
  ["$a", "$a"],
  ["$(A", "$(A"],
  ["$(", "$("],
  ["$()", "$()"],
  ["$(WITH SPACE)", "s"],
  ["$(toString)", "$(toString)"],
  ["$(__proto__)", "$(__proto__)"],
  ["no refs", "no refs"],
  ["", ""],
  ["$(A)$", "x$"],
  ["(A)", "(A)"],
  ["$((i+1))", "$((i+1))"],
];
for (const [arg, want] of expansions)
  t.test(`expandEnvRefs(${JSON.stringify(arg)})`, async (t) => t.equal(expandEnvRefs(arg, env), want));

t.test("property: escapeEnvRefs is undone by expandEnvRefs, whatever the env", async (t) => {
  fc.assert(
    fc.property(
      fc.string(),
      fc.dictionary(fc.string(), fc.string()),
      (s, e) => expandEnvRefs(escapeEnvRefs(s), e) === s,
    ),
    { numRuns: 2000 },
  );
  t.pass();
});

// ---- no-injection properties ----
const hostileChar = fc.constantFrom(
  ";",
  "$",
  "(",
  ")",
  "`",
  "'",
  '"',
  "\\",
  "|",
  "&",
  "<",
  ">",
  "*",
  "?",
  " ",
  "\n",
  "\t",
  "#",
  "~",
  "{",
  "}",
  "%",
  "!",
  "a",
  "Z",
  "0",
  "é",
  "ü",
);
const hostile = fc
  .string({ unit: fc.oneof(hostileChar, fc.string({ minLength: 1, maxLength: 1 })), maxLength: 40 })
  .map((s) => s.replaceAll("\u0000", ""));
/** Unique marker so "does not appear in the pod spec" is meaningful even for short values. */
const secretValue = hostile.map((s) => `Zq9X${s}`.trim());
const optionValue = hostile.map(
  (s) =>
    [...s]
      .filter((ch) => ch !== "," && ch !== "=" && ch.charCodeAt(0) > 0x1f && ch !== "\u007f")
      .join("")
      .trim() || "v",
);

type Values = {
  metaurl: string;
  bucket: string;
  ak: string;
  sk: string;
  opt: string;
  fuse: string;
  envv: string;
};
/** Characters a meta URL may hold (metaurl.ts refuses the rest): URL syntax, sub-delims, escapes. */
const urlChar = fc.constantFrom(..."!$&'()*+,;=%~#?:@/[]-._aZ09".split(""));
const password = fc
  .string({ unit: urlChar, minLength: 1, maxLength: 30 })
  .map((s) => `Zq9X${s.replaceAll("/", "")}`);
const valuesArb: fc.Arbitrary<Values> = fc.record({
  metaurl: fc
    .tuple(fc.constantFrom("", "user", "default"), password, fc.constantFrom("h:6379/1", "m,s1:26379,s2/2"))
    .map(([u, p, h]) => `redis://${u}:${p}@${h}`),
  bucket: secretValue,
  ak: secretValue,
  sk: secretValue,
  opt: optionValue,
  fuse: optionValue,
  envv: hostile,
});

function settingsFor(v: Values): JuiceFSSettings {
  const r = parseSettings(
    input({
      secret: {
        ...ceSecret,
        metaurl: v.metaurl,
        bucket: v.bucket,
        "access-key": v.ak,
        "secret-key": v.sk,
        envs: JSON.stringify({ USER_ENV: v.envv }),
      },
      pvMountOptions: [`heartbeat=${v.opt}`, `fsname=${v.fuse}`],
    }),
  );
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.settings;
}

/** What the kubelet hands to the runtime: env resolved (secretKeyRef → Secret data), $(VAR) expanded. */
function kubeletView(c: V1Container, s: JuiceFSSettings) {
  const secretData = mountSecretData(s);
  const vars: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.valueFrom?.secretKeyRef) vars[e.name] = secretData[e.valueFrom.secretKeyRef.key] ?? "";
    else vars[e.name] = expandEnvRefs(e.value ?? "", vars);
  }
  return {
    vars,
    command: (c.command ?? []).map((a) => expandEnvRefs(a, vars)),
    args: (c.args ?? []).map((a) => expandEnvRefs(a, vars)),
  };
}

/** argv as the client receives it: the meta URL without its password (which goes to META_PASSWORD). */
function expectedArgv(s: JuiceFSSettings, v: Values, cmds: ClientCommands) {
  const sec: Record<string, string> = { ...s.secret, metaurl: splitMetaPassword(s.secret.metaurl!).url };
  if (s.secret.metaurl !== v.metaurl.trim()) throw new Error(`metaurl changed: ${s.secret.metaurl}`);
  const prepare = [
    "juicefs",
    "format",
    `--storage=${sec.storage}`,
    `--bucket=${sec.bucket}`,
    sec.metaurl!,
    "myjfs",
  ];
  const flags = [`--cache-dir=/var/jfsCache`, `--heartbeat=${v.opt}`];
  const mount = [
    "juicefs",
    "mount",
    "--foreground",
    "--metrics=0.0.0.0:9567",
    ...flags,
    "-o",
    `fsname=${v.fuse}`,
    sec.metaurl!,
    cmds.mount.at(-1)!,
  ];
  return { prepare, mount };
}

t.test("property: hostile secret and option values arrive verbatim as single arguments", async (t) => {
  fc.assert(
    fc.property(valuesArb, (v) => {
      const s = settingsFor(v);
      const pod = buildMountPod(s, "node-1", { namespace: "kube-system", secretName: "jfs-secret-x" });
      const c = pod.spec!.containers[0]!;
      const cmds = clientCommands(s, c.args!.at(-1)!);
      const want = expectedArgv(s, v, cmds);
      const view = kubeletView(c, s);
      // command = sh -c <fixed script> juicefs-mount; args = n, meta positions, envs dir, prepare..., mount...
      const n = Number(view.args[0]);
      const pos = view.args[1]!.split(",").filter(Boolean).map(Number);
      t.same(view.args[2], "", "Mount Pods take envs from Secret keys, not files");
      const words = view.args
        .slice(3)
        .map((w, i) => (pos.includes(i + 1) ? splitMetaPassword(view.vars.JFS_METAURL!).url : w));
      t.same(words.slice(0, n), want.prepare);
      t.same(words.slice(n), want.mount);
      t.equal(view.vars.USER_ENV, v.envv, "envs value arrives verbatim");
      // Secret values never appear as literals in the pod spec.
      const json = JSON.stringify(pod);
      for (const secretVal of [
        s.secret.metaurl!,
        splitMetaPassword(s.secret.metaurl!).password!,
        s.secret.bucket!,
        s.secret["access-key"]!,
        s.secret["secret-key"]!,
      ]) {
        if (json.includes(JSON.stringify(secretVal).slice(1, -1)))
          throw new Error(`secret value in pod spec: ${secretVal}`);
      }
      return true;
    }),
    { numRuns: 300 },
  );
});

t.test("property: a real /bin/sh runs the container command without interpreting any value", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "jfs-argv-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, "argv.log");
  // A fake juicefs that records its argv, NUL-separated, one record per call.
  writeFileSync(
    join(dir, "juicefs"),
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text
    '#!/bin/sh\n{ printf \'%s\\0\' "PW=${META_PASSWORD-<unset>}" "URL=${JFS_METAURL-<unset>}"; for a in "$@"; do printf \'%s\\0\' "$a"; done; printf \'END-OF-CALL\\0\'; } >> "$JFS_ARGV_LOG"\n',
  );
  chmodSync(join(dir, "juicefs"), 0o755);
  const run = (v: Values): void => {
    const s = settingsFor(v);
    const c = buildMountContainer(s, { mountPoint: mp, secretName: "x" });
    const view = kubeletView(c, s);
    rmSync(log, { force: true });
    const argv = [...view.command, ...view.args];
    const r = spawnSync(argv[0]!, argv.slice(1), {
      env: { ...view.vars, PATH: `${dir}:/usr/bin:/bin`, JFS_ARGV_LOG: log },
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`sh failed: ${r.stderr}`);
    const calls = readFileSync(log, "utf8")
      .split("\u0000END-OF-CALL\u0000")
      .filter((x) => x !== "");
    const got = calls.map((x) => {
      const [pw, url, ...argv] = x
        .split("\u0000")
        .filter((_, i, a) => i < a.length - (x.endsWith("\u0000") ? 1 : 0));
      return { pw, url, argv: ["juicefs", ...argv] };
    });
    const want = expectedArgv(s, v, clientCommands(s, mp));
    t.same(
      got.map((g) => g.argv),
      [want.prepare, want.mount],
      "prepare then mount, verbatim",
    );
    const pw = splitMetaPassword(s.secret.metaurl!).password;
    for (const g of got) {
      t.equal(g.pw, `PW=${pw ?? "<unset>"}`, "the password arrives in META_PASSWORD");
      t.equal(g.url, "URL=<unset>", "the full URL is not left in the client's environment");
    }
  };
  fc.assert(
    fc.property(valuesArb, (v) => {
      run(v);
      return true;
    }),
    { numRuns: 40 },
  );
  // And a classic: a metaurl that tries every way out.
  run({
    metaurl: "redis://u:';$(touch$IFS.pwned)&!*@h:6379/1",
    bucket: "b;$(reboot)",
    ak: "`rm -rf /`",
    sk: "$$(SECRET_KEY)",
    opt: "$(ACCESS_KEY)",
    fuse: "x;y",
    envv: "$(JFS_METAURL)",
  });
});

t.test("without a prepare step the start script runs only the mount (no prepare words)", async (t) => {
  const { storage: _s, bucket: _b, ...rest } = ceSecret;
  const c = buildMountContainer(settingsOf({ secret: rest }), { mountPoint: mp, secretName: "x" });
  t.same(c.command!.slice(0, 2), ["/bin/sh", "-c"]);
  t.same(c.args!.slice(0, 5), ["0", "6", "", "juicefs", "mount"], "n = 0, the meta URL is word 6");
  t.equal(c.args![3 + 5], "<metaurl>", "a placeholder stands where the meta URL goes");
});
