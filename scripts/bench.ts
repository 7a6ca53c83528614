// `npm run bench`: runs every benchmark in scripts/bench/ (or the ones named: `npm run bench -- webhook`).
// Each benchmark measures its own baseline in the same run and prints ratios against it.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../lib/paths.ts";

const dir = join(projectRoot, "scripts", "bench");
const wanted = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".ts"))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();
if (files.length === 0) {
  console.error(`no benchmark matches ${wanted.join(", ") || "(none in scripts/bench)"}`);
  process.exit(2);
}
let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f} ===`);
  const r = spawnSync(process.execPath, ["--expose-gc", join(dir, f)], {
    stdio: "inherit",
    cwd: projectRoot,
  });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
