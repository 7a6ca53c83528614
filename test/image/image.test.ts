// `npm run image`: the OCI archive read back and checked against the image spec, its rootfs run in a
// chroot, reproducibility, and the Dockerfile / builder / chart staying in step.
// The full image is built once for this file, with gzip level 0 (stored blocks: still gzip, and the
// level changes only the ratio, while compressing 250 MB costs 10-20 s of CPU on this machine);
// reproducibility is checked at the default level on a small variant (os and app layers) built twice:
// the same code paths (packages, streamed files, gzip, archive).
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import t from "tap";
import { extract } from "tar-stream";
import { projectRoot } from "../../lib/paths.ts";
import { version } from "../../lib/version.ts";
import { envList, parseDockerfile } from "../../scripts/image/dockerfile.ts";
import { fileDigest, type ReadImage, readOciArchive, verifyImage } from "../../scripts/image/oci.ts";
import { canBuildRootfs, debianPackages } from "../../scripts/image/rootfs.ts";
import { type BuiltImage, buildImage, imageReference, nodeBinary } from "../../scripts/image.ts";
import { render } from "../chart/helpers.ts";

const isRoot = process.getuid?.() === 0;
const skip = !canBuildRootfs()
  ? "needs dpkg-deb and apt-get (a Debian machine) to assemble the rootfs"
  : !isRoot
    ? "needs root to chroot into the built rootfs"
    : false;

// Builds are CPU-bound: on a machine shared with other work they can take several times longer.
t.setTimeout(300_000);
const dir = mkdtempSync(join(tmpdir(), "image-test-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const dockerfile = parseDockerfile(join(projectRoot, "Dockerfile"));

let built: BuiltImage | undefined;
let img: ReadImage | undefined;
let rootfs = "";

t.before(async () => {
  if (skip) return;
  built = await buildImage({ out: join(dir, "image.oci.tar"), gzipLevel: 0 });
  img = await readOciArchive(built.file);
  rootfs = join(dir, "rootfs");
  mkdirSync(rootfs);
  // Layers applied in order, as a runtime applies changesets (GNU tar keeps modes and owners as root).
  img.manifest.layers.forEach((l, i) => {
    const f = join(dir, `layer-${i}.tar.gz`);
    writeFileSync(f, img!.blobs.get(l.digest)!);
    const r = spawnSync("tar", ["-xzpf", f, "-C", rootfs], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
    rmSync(f);
  });
});

t.test(
  "the Dockerfile's run-time metadata is the image config's (one source, no drift)",
  { skip },
  async (t) => {
    const c = img!.config.config;
    t.same(c.Entrypoint, dockerfile.entrypoint);
    t.same(c.Cmd, dockerfile.cmd);
    t.same(c.Env, envList(dockerfile.env));
    t.equal(c.User, dockerfile.user);
    t.equal(c.WorkingDir, dockerfile.workdir);
    t.same(c.Labels, dockerfile.labels);
    // What the Dockerfile states directly, so a parser bug cannot make both sides agree on nothing.
    t.same(c.Entrypoint, ["node", "/app/bin/juicefs-csi.js"]);
    t.equal(c.User, "root");
    t.equal(c.WorkingDir, "/app");
    t.match(c.Env, [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "NODE_ENV=production",
    ]);
    t.equal(c.Labels["org.opencontainers.image.version"], version, "the label follows package.json");
    t.same(
      img!.config.rootfs.diff_ids,
      built!.layers.map((l) => l.diffId),
    );
    t.equal(img!.config.architecture, "amd64");
    t.equal(img!.config.os, "linux");
  },
);

t.test("the packages the Dockerfile installs are the ones the builder unpacks", async (t) => {
  const text = readFileSync(join(projectRoot, "Dockerfile"), "utf8");
  const install = /apt-get install -y --no-install-recommends ([^\n&\\]+)/
    .exec(text)?.[1]
    ?.trim()
    .split(/\s+/);
  t.ok(install && install.length > 0, "the Dockerfile has an apt-get install line");
  for (const p of install ?? [])
    t.ok((debianPackages as readonly string[]).includes(p), `${p} is in the image too`);
  // Every COPY source exists and lands under WORKDIR.
  for (const c of dockerfile.copies) t.match(c.dest, /^\/app(\/|$)/);
});

t.test("the archive is an OCI image layout whose every digest and size is right", { skip }, async (t) => {
  t.same(await verifyImage(img!), []);
  t.same(img!.names.slice(0, 2), ["oci-layout", "index.json"]);
  t.same(img!.layout, { imageLayoutVersion: "1.0.0" });
  const m = img!.index.manifests[0]!;
  t.equal(m.digest, built!.manifestDigest);
  t.same(m.annotations, {
    "org.opencontainers.image.ref.name": imageReference().tag,
    "io.containerd.image.name": imageReference().ref,
  });
  t.equal(img!.manifest.layers.length, 4);
});

t.test(
  "layers are reproducible tars: sorted, owner 0:0, one mtime, no gzip timestamp",
  { skip },
  async (t) => {
    const l = img!.manifest.layers[3]!;
    const gz = img!.blobs.get(l.digest)!;
    t.equal(gz.readUInt32LE(4), 0, "gzip MTIME field is 0");
    const names: string[] = [];
    const ex = extract();
    ex.on("entry", (h, s, next) => {
      names.push(h.name);
      t.equal(h.uid, 0);
      t.equal(h.gid, 0);
      t.equal(h.mtime?.getTime(), 0);
      s.on("end", next).resume();
    });
    const done = new Promise<void>((res) => ex.on("finish", () => res()));
    ex.end(gunzipSync(gz));
    await done;
    t.ok(names.length > 50);
    t.same(names, [...names].sort(), "entries in path order");
    t.ok(names.includes("app/bin/juicefs-csi.js"));
    t.notOk(
      names.some((n) => n.includes("/test/") || n.startsWith("app/node_modules")),
      "only what the Dockerfile COPYs",
    );
  },
);

t.test("same inputs, same digest; and the verification can fail", { skip }, async (t) => {
  const a = await buildImage({ out: join(dir, "a.oci.tar"), layers: ["os", "app"] });
  const b = await buildImage({ out: join(dir, "b.oci.tar"), layers: ["os", "app"] });
  t.equal(a.manifestDigest, b.manifestDigest);
  t.equal(fileDigest(a.file), fileDigest(b.file), "byte-identical archives");
  // The same tars as the full image's os and app layers (built separately, at another gzip level).
  t.same(
    a.layers.map((l) => l.diffId),
    [built!.layers[0]!.diffId, built!.layers[3]!.diffId],
  );
  const small = await readOciArchive(a.file);
  t.same(await verifyImage(small), []);
  // One changed byte in a layer, a wrong diff_id list: both are reported.
  const layer = small.manifest.layers[1]!;
  const blob = Buffer.from(small.blobs.get(layer.digest)!);
  blob[blob.length - 9] = (blob[blob.length - 9] ?? 0) ^ 0xff;
  const problems = await verifyImage({ ...small, blobs: new Map(small.blobs).set(layer.digest, blob) });
  t.ok(
    problems.some((p) => /^layer 1: content digest sha256:\w+ != /.test(p)),
    problems.join("\n"),
  );
  const badConfig = {
    ...small,
    config: { ...small.config, rootfs: { type: "layers" as const, diff_ids: [] } },
  };
  t.match(await verifyImage(badConfig), [/0 diff_ids for 2 layers/]);
});

/** Runs the image's entrypoint in the rootfs: own mount namespace, chroot, the config's env and workdir. */
function runInImage(args: string[], user = "0") {
  const c = img!.config.config;
  // env -i: exactly the config's environment (the test runner adds NODE_OPTIONS to every child's).
  const unshare = ["unshare", "--mount", "--fork", `--root=${rootfs}`, `--wd=${c.WorkingDir}`];
  const ids = [`--setuid=${user}`, `--setgid=${user}`];
  return spawnSync("env", ["-i", ...c.Env, ...unshare, ...ids, ...args], { encoding: "utf8" });
}

t.test(
  "the rootfs runs juicefs-csi version (entrypoint, as root and as the webhook's uid 1000)",
  async (t) => {
    const c = img!.config.config;
    for (const user of ["0", "1000"]) {
      const r = runInImage([...c.Entrypoint, "version"], user);
      t.equal(r.status, 0, r.stderr);
      t.equal(r.stdout, `juicefs-csi ${version} (node v24.21.0)\n`, `as uid ${user}`);
    }
    const help = runInImage([...c.Entrypoint, ...c.Cmd]);
    t.equal(help.status, 0);
    t.match(help.stdout, /Usage: juicefs-csi/);
    // The offline tools work there too (production node_modules are complete for them).
    writeFileSync(
      join(rootfs, "tmp", "bad.yaml"),
      readFileSync(join(projectRoot, "examples", "bad-writeback.yaml")),
    );
    const validate = runInImage([...c.Entrypoint, "validate", "-f", "/tmp/bad.yaml"]);
    t.equal(validate.status, 1, validate.stderr);
    t.match(validate.stdout, /invalid .*writeback/);
  },
);

t.test("the tools the node plugin execs run in the rootfs, with their libraries", { skip }, async (t) => {
  t.match(runInImage(["mount", "--version"]).stdout, /^mount from util-linux/);
  t.match(runInImage(["umount", "--version"]).stdout, /^umount from util-linux/);
  t.match(runInImage(["fusermount3", "--version"]).stdout, /^fusermount3 version: 3\./);
  t.ok(readFileSync(join(rootfs, "etc/ssl/certs/ca-certificates.crt"), "utf8").includes("BEGIN CERTIFICATE"));
  t.equal(fileDigest(join(rootfs, "usr/local/bin/node")), fileDigest(nodeBinary), "the project's own Node");
  const node = runInImage([
    "node",
    "-e",
    "require('node:tls').createSecureContext(); console.log(process.versions.openssl)",
  ]);
  t.equal(node.status, 0, node.stderr);
});

t.test("the chart's default image is the reference the build tags", async (t) => {
  const objs = await render();
  const images = new Set<string>();
  for (const o of objs) {
    const spec = (
      o as { spec?: { template?: { spec?: { containers?: { name: string; image: string }[] } } } }
    ).spec;
    for (const c of spec?.template?.spec?.containers ?? [])
      if (c.name === "juicefs-plugin" || c.name === "webhook") images.add(c.image);
  }
  const { repository, tag, ref } = imageReference();
  t.same([...images], [`${repository}:${tag}`]);
  t.equal(tag, version, "appVersion follows package.json");
  t.equal(ref, `docker.io/${repository}:${version}`);
  if (built) t.equal(built.ref, ref);
});
