// No Secret value in anything the product renders: every pod and container it can build (Mount Pods
// of both editions, sidecars native and classic with their envs writer, the offline injector) and
// every process-mode command line, from Secrets full of marker values. Values may only reach a
// client through secretKeyRef, a Secret volume or the process environment. Then the sidecar is run
// for real: write-envs turns the Secret's envs into files, /bin/sh runs the start script, and a
// fake juicefs records what it got.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { writeEnvs } from "../../cli/write-envs.ts";
import {
  buildMountPod,
  buildSidecarContainer,
  expandEnvRefs,
  type JuiceFSSettings,
  mountSecretData,
  parseSettings,
  type V1Container,
  type V1Pod,
} from "../../driver/juicefs/index.ts";
import { resolveCommands } from "../../driver/mount/process-clients.ts";
import { planPod } from "../../webhook/inject.ts";
import { input } from "./fixtures.ts";

const markers = {
  password: "PWMARK-7d1e",
  bucket: "BUCKETMARK-0a2",
  ak: "AKMARK-33c",
  sk: "SKMARK-9e1",
  token: "TOKENMARK-5b7",
  env1: "ENVMARK-one",
  env2: "ENVMARK-two $(JFS_METAURL) `x`",
};
const envs = JSON.stringify({ MARK_A: markers.env1, "mark.b-c": markers.env2 });
const community = {
  name: "markfs",
  metaurl: `redis://default:${markers.password}@redis.example:6379/1`,
  storage: "s3",
  bucket: `https://${markers.bucket}.s3.example.com`,
  "access-key": markers.ak,
  "secret-key": markers.sk,
  envs,
};
const enterprise = {
  name: "markfs",
  token: markers.token,
  bucket: `https://${markers.bucket}.s3.example.com`,
  "access-key": markers.ak,
  "secret-key": markers.sk,
  envs,
};

function settingsOf(secret: Record<string, string>): JuiceFSSettings {
  const r = parseSettings(input({ volumeId: "pvc-mark", secret }));
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.settings;
}

/** Every marker value that appears in `what` (as JSON, so escaped forms are found too). */
function leaks(what: unknown): string[] {
  const text = JSON.stringify(what);
  return Object.values(markers).filter(
    (m) => text.includes(m) || text.includes(JSON.stringify(m).slice(1, -1)),
  );
}

const appPod = (): V1Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "app", namespace: "default" },
  spec: {
    containers: [{ name: "app", image: "busybox", volumeMounts: [{ name: "data", mountPath: "/data" }] }],
    volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data" } }],
  },
});

for (const [edition, secret] of [
  ["community", community],
  ["enterprise", enterprise],
] as const) {
  const s = settingsOf(secret);

  t.test(`${edition}: the Mount Pod holds no Secret value, only references`, async (t) => {
    const pod = buildMountPod(s, "node-1", { namespace: "kube-system", secretName: "juicefs-node-1-x" });
    t.same(leaks(pod), [], "no marker in the Mount Pod");
    const refs = pod.spec!.containers[0]!.env!.filter((e) => e.valueFrom?.secretKeyRef);
    t.ok(refs.length >= 4, "credentials and envs are secretKeyRefs");
    t.ok(
      refs.some((e) => e.name === "MARK_A" && e.valueFrom!.secretKeyRef!.key === "envs.MARK_A"),
      "envs variable → its own key of the driver's Secret",
    );
    t.same(
      Object.values(markers).filter(
        (m) => !JSON.stringify(mountSecretData(s)).includes(JSON.stringify(m).slice(1, -1)),
      ),
      edition === "community" ? [markers.token] : [markers.password],
      "the driver's Secret does hold the values (that is where they belong)",
    );
  });

  for (const native of [true, false])
    t.test(
      `${edition}: the ${native ? "native" : "classic"} sidecar pod holds no Secret value`,
      async (t) => {
        const sc = buildSidecarContainer(s, { secretName: "user-secret", productImage: "juicefs-csi:test" });
        t.same(leaks(sc), [], "no marker in the sidecar, its envs writer or their volumes");
        const plan = planPod(
          appPod(),
          [
            {
              ref: { volumeName: "data", claimName: "data" } as never,
              claimId: "PVC default/data",
              settings: s,
              secretName: "user-secret",
              secretKeys: Object.keys(secret),
            },
          ],
          { mode: "sidecar", native, allowClassic: true, productImage: "juicefs-csi:test" },
        );
        t.ok(plan.ok, plan.ok ? "planned" : plan.message);
        if (!plan.ok) return;
        t.same(leaks(plan.pod), [], "no marker anywhere in the mutated pod");
        const all = [...(plan.pod.spec!.initContainers ?? []), ...plan.pod.spec!.containers];
        t.ok(
          all.some((c) => c.args?.[0] === "write-envs"),
          "the envs writer is in the pod",
        );
        const envsVolume = plan.pod.spec!.volumes!.find((v) => v.secret?.secretName === "user-secret");
        t.same(envsVolume?.secret?.items, [{ key: "envs", path: "envs" }], "envs come from a Secret volume");
      },
    );
}

t.test("process mode: command lines hold no Secret value; the environment carries them", async (t) => {
  for (const secret of [community, enterprise]) {
    const r = resolveCommands(settingsOf(secret), "/var/lib/juicefs/volume/pvc-mark");
    const argv = [...(r.prepare ?? []), ...r.mount, ...r.umount];
    t.notOk(argv.join(" ").includes(markers.password), "no meta password in any argument");
    t.notOk(argv.join(" ").includes(markers.env1), "no envs value in any argument");
    t.equal(r.env.MARK_A, markers.env1, "envs in the environment");
    if (secret === community) {
      t.equal(r.env.META_PASSWORD, markers.password, "the password in META_PASSWORD");
      t.ok(r.mount.includes("redis://default:@redis.example:6379/1"), "the URL without its password");
      for (const m of [markers.ak, markers.sk])
        t.notOk(argv.join(" ").includes(m), "no object storage key in any argument (community)");
      t.equal(r.env.ACCESS_KEY, markers.ak, "the access key in ACCESS_KEY");
      t.equal(r.env.SECRET_KEY, markers.sk, "the secret key in SECRET_KEY");
    }
  }
});

t.test("a real sidecar start: envs files and META_PASSWORD reach juicefs, never its arguments", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "jfs-cred-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The Secret volume (one file per key) and the envs writer, as the kubelet would run it.
  const secretDir = join(dir, "secret");
  const envsDir = join(dir, "envs");
  mkdirSync(secretDir);
  writeFileSync(join(secretDir, "envs"), envs);
  await writeEnvs({ from: join(secretDir, "envs"), to: envsDir });

  const s = settingsOf(community);
  const sc = buildSidecarContainer(s, { secretName: "user-secret" });
  // A fake juicefs that records its arguments and the variables that matter, NUL-separated.
  const log = join(dir, "calls");
  writeFileSync(
    join(dir, "juicefs"),
    [
      "#!/bin/sh",
      `{ printf 'ARGS\\0'; for a in "$@"; do printf '%s\\0' "$a"; done`,
      // The environment as exec'd (a shell drops names such as "mark.b-c" from its own table).
      "  printf 'ENV\\0'; tr '\\0' '\\n' < /proc/$$/environ | grep -E '^(META_PASSWORD|MARK_A|mark[.]b-c|JFS_METAURL|ACCESS_KEY|SECRET_KEY)=' | tr '\\n' '\\0'",
      `  printf 'END\\0'; } >> "${log}"`,
    ].join("\n"),
  );
  chmodSync(join(dir, "juicefs"), 0o755);
  // The kubelet: secretKeyRef from the user's Secret, $(VAR) expansion, the envs folder where mounted.
  const c: V1Container = sc.container;
  const vars: Record<string, string> = {};
  for (const e of c.env ?? [])
    vars[e.name] = e.valueFrom?.secretKeyRef
      ? (community as Record<string, string>)[e.valueFrom.secretKeyRef.key]!
      : expandEnvRefs(e.value ?? "", vars);
  const argv = [...c.command!, ...c.args!]
    .map((a) => expandEnvRefs(a, vars))
    .map((a) => (a === "/jfs-envs" ? envsDir : a));
  const r = spawnSync(argv[0]!, argv.slice(1), {
    env: { ...vars, PATH: `${dir}:/usr/bin:/bin` },
    encoding: "utf8",
  });
  t.equal(r.status, 0, r.stderr);
  const calls = readFileSync(log, "utf8").split("END\u0000").filter(Boolean);
  t.equal(calls.length, 2, "format, then mount");
  for (const call of calls) {
    const [args, envPart] = call.slice("ARGS\u0000".length).split("ENV\u0000") as [string, string];
    const got = Object.fromEntries(
      envPart
        .split("\u0000")
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    // `juicefs format` reads the object storage keys from ACCESS_KEY / SECRET_KEY (cmd/format.go).
    const argText = args.split("\u0000").join(" ");
    for (const m of [markers.password, markers.env1, markers.env2, markers.ak, markers.sk])
      t.notOk(
        argText.includes(m),
        "no meta password, object storage key or envs value in juicefs's arguments",
      );
    t.ok(args.split("\u0000").includes("redis://default:@redis.example:6379/1"), "URL without password");
    t.same(
      got,
      {
        META_PASSWORD: markers.password,
        MARK_A: markers.env1,
        "mark.b-c": markers.env2,
        ACCESS_KEY: markers.ak,
        SECRET_KEY: markers.sk,
      },
      "password and envs (verbatim, even with $( and `) in the environment; JFS_METAURL removed",
    );
  }
});
