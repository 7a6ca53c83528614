// What the e2e runner and `npm test` collect: the *.test.ts files, never harness.ts (a module the
// tests import; as a test file it would start a cluster and report nothing).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import t from "tap";
import { projectRoot } from "../../lib/paths.ts";
import { e2eTestFiles } from "../../scripts/e2e.ts";

t.test("harness.ts is not a test file, for npm run e2e nor for npm test", async (t) => {
  const files = e2eTestFiles();
  t.ok(files.includes("test/e2e/mount-pod.test.ts"));
  t.ok(files.includes("test/e2e/figures.test.ts"));
  t.notOk(files.some((f) => f.endsWith("harness.ts")));
  // tap's own view of the project's test files (package.json "tap.include").
  const list = spawnSync(join(projectRoot, "node_modules", ".bin", "tap"), ["list"], {
    cwd: projectRoot,
    encoding: "utf8",
  });
  t.equal(list.status, 0, list.stderr);
  const listed = list.stdout.split("\n").filter((l) => l.startsWith("test/e2e/"));
  t.same(listed.sort(), [...files].sort());
});
