// The global config file as the node plugin and the webhook read it: a mounted optional ConfigMap
// that may be absent, appear, change, break and disappear while the process runs.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { GlobalConfigFile } from "../../driver/global-config-file.ts";

t.test("absent, created, swapped like the kubelet does, broken, removed", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "jfs-gc-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "config.yaml");
  const logged: string[] = [];
  const logger = {
    info: (_o: unknown, m: string) => logged.push(`info ${m}`),
    warn: (_o: unknown, m: string) => logged.push(`warn ${m}`),
    error: (_o: unknown, m: string) => logged.push(`error ${m}`),
  };
  const gc = new GlobalConfigFile(file, { logger: logger as never, intervalMs: 20 });
  await gc.start();
  t.teardown(() => gc.stop());
  t.equal(gc.current(), undefined, "no ConfigMap: no patches");
  t.equal(gc.problem(), undefined, "and no problem");

  // The kubelet writes a ConfigMap volume as ..data -> ..<timestamp>/ and config.yaml -> ..data/config.yaml.
  const version = (n: number, text: string) => {
    const d = join(dir, `..v${n}`);
    mkdirSync(d);
    writeFileSync(join(d, "config.yaml"), text);
    symlinkSync(`..v${n}`, join(dir, "..data.tmp"));
    renameSync(join(dir, "..data.tmp"), join(dir, "..data"));
  };
  version(1, "mountPodPatch: [{ceMountImage: example.com/mount:one}]\n");
  symlinkSync("..data/config.yaml", file);
  const g0 = gc.generation;
  const waitGen = async (n: number) => {
    const g = g0 + n;
    for (let i = 0; i < 200 && gc.generation < g; i++) await new Promise((r) => setTimeout(r, 10));
    return gc.generation >= g;
  };
  t.ok(await waitGen(1), "picked up by the timer");
  t.equal(gc.current()?.mountPodPatch[0]?.ceMountImage, "example.com/mount:one");
  const first = gc.current();
  await gc.reload();
  t.equal(gc.current(), first, "an unchanged file keeps the same object (the webhook's memo stays)");

  version(2, "mountPodPatch: [{ceMountImage: example.com/mount:two}]\n");
  t.ok(await waitGen(2), "the symlink swap is seen");
  t.equal(gc.current()?.mountPodPatch[0]?.ceMountImage, "example.com/mount:two");

  version(3, "mountPodPatch: [{ceMountImage: 'not an image!'}]\n");
  await gc.reload();
  t.match(gc.problem(), /mountPodPatch\[0\]\.ceMountImage: "not an image!" is not a container image/);
  t.equal(gc.current()?.mountPodPatch[0]?.ceMountImage, "example.com/mount:two", "the last good one stays");
  t.ok(
    logged.some((l) => l.startsWith("error global config is invalid")),
    "and the operator is told",
  );

  version(4, "mountPodPatch: []\n");
  await gc.reload();
  t.equal(gc.problem(), undefined);
  t.equal(gc.current(), undefined, "an empty list: no patches");

  version(5, "mountPodPatch: [{hostPID: true}]\n");
  await gc.reload();
  t.equal(gc.current()?.mountPodPatch[0]?.hostPID, true);
  rmSync(file);
  await gc.reload();
  t.equal(gc.current(), undefined, "the ConfigMap deleted (optional volume emptied): no patches");
});
