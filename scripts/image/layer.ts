// One image layer: a tar of file-system entries, gzip-compressed, written to a file while both the
// uncompressed (diff_id) and compressed (blob digest) SHA-256 are computed.
//
// tar-stream (a maintained streaming tar writer, already in the lockfile through @kubernetes/client-node)
// writes the headers: it gives full control of every header field, which is what reproducibility
// needs (node-tar's packer reads stat() of files on disk and is built around directories, not lists
// of entries from several sources). Reproducible: entries sorted by path, owner 0:0 with no names,
// one fixed mtime, and gzip through node:zlib, which writes no timestamp or file name in its header.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { pack } from "tar-stream";

export type Entry =
  | { path: string; type: "dir"; mode: number }
  | { path: string; type: "file"; mode: number; data: Buffer }
  | { path: string; type: "file"; mode: number; source: string; size: number }
  | { path: string; type: "symlink"; target: string };

export interface LayerBlob {
  file: string;
  /** sha256 of the gzip stream (the blob's digest). */
  digest: string;
  size: number;
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids). */
  diffId: string;
  entries: number;
}

/** A fixed timestamp for every entry; SOURCE_DATE_EPOCH (reproducible-builds.org) overrides it. */
export function entryTime(): Date {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? "0");
  return new Date((Number.isFinite(epoch) ? epoch : 0) * 1000);
}

function hashing(hash: ReturnType<typeof createHash>, count: { n: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      count.n += chunk.length;
      cb(null, chunk);
    },
  });
}

/**
 * Adds the parent directories that a list of entries lacks (mode 0755), drops duplicates (the last
 * entry for a path wins, as a later COPY would) and sorts by path, so a parent always precedes its
 * children and the same set of entries always makes the same bytes.
 */
export function normalize(entries: Entry[]): Entry[] {
  const byPath = new Map<string, Entry>();
  for (const e of entries) {
    const path = e.path.replace(/^\.?\/+/, "").replace(/\/+$/, "");
    if (path === "" || path.split("/").includes("..")) continue;
    byPath.set(path, { ...e, path });
  }
  for (const path of [...byPath.keys()]) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (!byPath.has(dir)) byPath.set(dir, { path: dir, type: "dir", mode: 0o755 });
    }
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export async function writeLayer(entries: Entry[], file: string, level = 6): Promise<LayerBlob> {
  const sorted = normalize(entries);
  const tar = pack();
  const mtime = entryTime();
  const owner = { uid: 0, gid: 0, uname: "", gname: "" };
  const produce = (async () => {
    for (const e of sorted) {
      if (e.type === "dir") {
        await add(tar, { name: `${e.path}/`, type: "directory", mode: e.mode, mtime, ...owner });
      } else if (e.type === "symlink") {
        await add(tar, { name: e.path, type: "symlink", linkname: e.target, mode: 0o777, mtime, ...owner });
      } else if ("data" in e) {
        await add(
          tar,
          { name: e.path, type: "file", mode: e.mode, size: e.data.length, mtime, ...owner },
          e.data,
        );
      } else {
        await new Promise<void>((resolve, reject) => {
          const sink = tar.entry(
            { name: e.path, type: "file", mode: e.mode, size: e.size, mtime, ...owner },
            (err) => (err ? reject(err) : resolve()),
          );
          createReadStream(e.source).on("error", reject).pipe(sink);
        });
      }
    }
    tar.finalize();
  })();
  const diff = createHash("sha256");
  const blob = createHash("sha256");
  const raw = { n: 0 };
  const gz = { n: 0 };
  await Promise.all([
    produce,
    pipeline(tar, hashing(diff, raw), createGzip({ level }), hashing(blob, gz), createWriteStream(file)),
  ]);
  return {
    file,
    digest: `sha256:${blob.digest("hex")}`,
    size: gz.n,
    diffId: `sha256:${diff.digest("hex")}`,
    entries: sorted.length,
  };
}

function add(
  tar: ReturnType<typeof pack>,
  header: Parameters<ReturnType<typeof pack>["entry"]>[0],
  data?: Buffer,
) {
  return new Promise<void>((resolve, reject) => {
    tar.entry(header, data ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
  });
}
