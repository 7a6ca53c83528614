// OCI image layout (image-spec v1.1: image-layout.md, manifest.md, config.md, descriptor.md), written
// as one tar archive (what `skopeo copy oci-archive:`, `podman load` and `ctr images import` take),
// and read back for verification.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, readFileSync, statSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { gunzip as zlibGunzip } from "node:zlib";
import { extract, pack } from "tar-stream";
import { entryTime, type LayerBlob } from "./layer.ts";

export const mediaTypes = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

export interface ImageConfig {
  architecture: string;
  os: string;
  config: {
    User?: string;
    Env: string[];
    Entrypoint: string[];
    Cmd: string[];
    WorkingDir: string;
    Labels: Record<string, string>;
  };
  rootfs: { type: "layers"; diff_ids: string[] };
  history: { created_by: string; comment?: string }[];
}

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
/** JSON blobs are written compactly with keys in insertion order: same input, same bytes. */
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

export interface WrittenImage {
  file: string;
  /** Digest of the manifest: the image's identity (what `crane digest` / a registry reports). */
  manifestDigest: string;
  configDigest: string;
  index: { manifests: Descriptor[] };
}

/** Writes the archive: oci-layout, index.json (one manifest, tagged `ref`), blobs/sha256/*. */
export async function writeOciArchive(opts: {
  file: string;
  config: ImageConfig;
  layers: LayerBlob[];
  /** Full reference, e.g. docker.io/juicedata/juicefs-csi:0.1.0. */
  ref: string;
}): Promise<WrittenImage> {
  const configBlob = json(opts.config);
  const config: Descriptor = {
    mediaType: mediaTypes.config,
    digest: sha256(configBlob),
    size: configBlob.length,
  };
  const manifest = json({
    schemaVersion: 2,
    mediaType: mediaTypes.manifest,
    config,
    layers: opts.layers.map(
      (l): Descriptor => ({ mediaType: mediaTypes.layer, digest: l.digest, size: l.size }),
    ),
  });
  const manifestDigest = sha256(manifest);
  const tag = opts.ref.slice(opts.ref.lastIndexOf(":") + 1);
  const index = {
    schemaVersion: 2,
    mediaType: mediaTypes.index,
    manifests: [
      {
        mediaType: mediaTypes.manifest,
        digest: manifestDigest,
        size: manifest.length,
        platform: { architecture: opts.config.architecture, os: opts.config.os },
        annotations: {
          // The tag (image-layout's ref.name), and the full name containerd and podman import as.
          "org.opencontainers.image.ref.name": tag,
          "io.containerd.image.name": opts.ref,
        },
      },
    ],
  };
  const tar = pack();
  const mtime = entryTime();
  const head = { uid: 0, gid: 0, uname: "", gname: "", mtime };
  const out = pipeline(tar, createWriteStream(opts.file));
  const put = (name: string, data: Buffer) =>
    new Promise<void>((res, rej) =>
      tar.entry({ name, mode: 0o644, ...head }, data, (e) => (e ? rej(e) : res())),
    );
  await put("oci-layout", json({ imageLayoutVersion: "1.0.0" }));
  await put("index.json", json(index));
  for (const dir of ["blobs/", "blobs/sha256/"])
    await new Promise<void>((res, rej) =>
      tar.entry({ name: dir, type: "directory", mode: 0o755, ...head }, (e) => (e ? rej(e) : res())),
    );
  const blobs = new Map<string, Buffer | string>();
  blobs.set(config.digest, configBlob);
  blobs.set(manifestDigest, manifest);
  for (const l of opts.layers) blobs.set(l.digest, l.file);
  for (const [digest, blob] of [...blobs].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const name = `blobs/sha256/${digest.slice("sha256:".length)}`;
    if (typeof blob !== "string") await put(name, blob);
    else
      await new Promise<void>((res, rej) => {
        const sink = tar.entry({ name, mode: 0o644, size: statSync(blob).size, ...head }, (e) =>
          e ? rej(e) : res(),
        );
        createReadStream(blob).on("error", rej).pipe(sink);
      });
  }
  tar.finalize();
  await out;
  return { file: opts.file, manifestDigest, configDigest: config.digest, index };
}

export interface ReadImage {
  layout: unknown;
  index: { schemaVersion: number; mediaType?: string; manifests: Descriptor[] };
  manifest: { schemaVersion: number; mediaType: string; config: Descriptor; layers: Descriptor[] };
  config: ImageConfig;
  /** Every blob's bytes, by digest (layers too: the archive is read whole). */
  blobs: Map<string, Buffer>;
  /** Names of the archive's entries, in order. */
  names: string[];
}

/** Reads an archive back. Checks nothing: verifyImage does. */
export async function readOciArchive(file: string): Promise<ReadImage> {
  const files = new Map<string, Buffer>();
  const names: string[] = [];
  const ex = extract();
  ex.on("entry", (h, stream, next) => {
    names.push(h.name);
    const chunks: Buffer[] = [];
    stream.on("data", (c) => chunks.push(c as Buffer));
    stream.on("end", () => {
      if (h.type === "file") files.set(h.name, Buffer.concat(chunks));
      next();
    });
  });
  await pipeline(createReadStream(file), ex);
  const parse = (name: string) => {
    const b = files.get(name);
    if (!b) throw new Error(`${file}: no ${name}`);
    return JSON.parse(b.toString("utf8"));
  };
  const blobs = new Map<string, Buffer>();
  for (const [name, b] of files)
    if (name.startsWith("blobs/sha256/")) blobs.set(`sha256:${name.slice("blobs/sha256/".length)}`, b);
  const index = parse("index.json");
  const m = index.manifests?.[0] as Descriptor | undefined;
  const blob = (d: Descriptor | undefined) => {
    const b = d && blobs.get(d.digest);
    if (!b) throw new Error(`${file}: blob ${d?.digest} is missing`);
    return JSON.parse(b.toString("utf8"));
  };
  const manifest = blob(m);
  return { layout: parse("oci-layout"), index, manifest, config: blob(manifest.config), blobs, names };
}

/**
 * Problems with an image read back: every descriptor's digest and size against its blob, media types,
 * each layer's uncompressed digest against config.rootfs.diff_ids, and no blob without a reference.
 */
export async function verifyImage(img: ReadImage): Promise<string[]> {
  const problems: string[] = [];
  const check = (what: string, d: Descriptor, mediaType: string) => {
    const b = img.blobs.get(d.digest);
    if (d.mediaType !== mediaType) problems.push(`${what}: mediaType ${d.mediaType}, want ${mediaType}`);
    if (!b) return problems.push(`${what}: blob ${d.digest} missing`);
    if (sha256(b) !== d.digest) problems.push(`${what}: content digest ${sha256(b)} != ${d.digest}`);
    if (b.length !== d.size) problems.push(`${what}: size ${b.length} != ${d.size}`);
  };
  if ((img.layout as { imageLayoutVersion?: string })?.imageLayoutVersion !== "1.0.0")
    problems.push("oci-layout: imageLayoutVersion is not 1.0.0");
  if (img.index.schemaVersion !== 2) problems.push("index.json: schemaVersion is not 2");
  if (img.index.manifests.length !== 1) problems.push("index.json: expected one manifest");
  const m = img.index.manifests[0];
  if (m) check("index.json manifests[0]", m, mediaTypes.manifest);
  if (img.manifest.schemaVersion !== 2) problems.push("manifest: schemaVersion is not 2");
  if (img.manifest.mediaType !== mediaTypes.manifest) problems.push("manifest: mediaType");
  check("manifest config", img.manifest.config, mediaTypes.config);
  const diffIds = img.config.rootfs?.diff_ids ?? [];
  if (img.config.rootfs?.type !== "layers") problems.push("config: rootfs.type is not layers");
  if (diffIds.length !== img.manifest.layers.length)
    problems.push(`config: ${diffIds.length} diff_ids for ${img.manifest.layers.length} layers`);
  for (const [i, l] of img.manifest.layers.entries()) {
    check(`layer ${i}`, l, mediaTypes.layer);
    const b = img.blobs.get(l.digest);
    if (b) {
      const raw = await gunzip(b).catch((err: Error) => {
        problems.push(`layer ${i}: not a gzip stream (${err.message})`);
      });
      if (raw && sha256(raw) !== diffIds[i])
        problems.push(`layer ${i}: uncompressed digest ${sha256(raw)} != diff_ids[${i}] ${diffIds[i]}`);
    }
  }
  const referenced = new Set([
    m?.digest,
    img.manifest.config.digest,
    ...img.manifest.layers.map((l) => l.digest),
  ]);
  for (const d of img.blobs.keys()) if (!referenced.has(d)) problems.push(`blob ${d}: not referenced`);
  for (const k of ["architecture", "os"] as const) if (!img.config[k]) problems.push(`config: no ${k}`);
  return problems;
}

const gunzip = promisify(zlibGunzip);

/** The blob bytes of a file (tests compare archives built twice). */
export function fileDigest(file: string): string {
  return sha256(readFileSync(file));
}
