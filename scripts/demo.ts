// `npm run demo`: the webhook's job, offline, with the real CLI code. It injects the JuiceFS sidecar
// into the pods in examples/ (the same handler the API server calls, fed with the example PVC/PV/
// Secret/StorageClass), then validates a manifest with `writeback` to show the refusal.
import { join } from "node:path";
import { parse } from "yaml";
import { main } from "../cli/main.ts";
import { projectRoot } from "../lib/paths.ts";

const ex = (f: string) => join(projectRoot, "examples", f);
const context = ["secret.yaml", "storageclass.yaml", "pv.yaml", "pvc.yaml"].map(ex);
const rel = (args: string[]) => args.map((a) => a.replace(`${projectRoot}/`, "")).join(" ");

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { stdout: (s) => (out += s), stderr: (s) => (err += s) });
  return { code, out, err };
}

let failed = false;
const expect = (ok: boolean, what: string) => {
  if (!ok) {
    failed = true;
    console.log(`!! unexpected: ${what}`);
  }
};

// 1. A pod with one JuiceFS PVC: printed whole.
const podArgs = ["inject", "-f", ex("pod.yaml"), "--manifests", ...context];
console.log(`$ juicefs-csi ${rel(podArgs)}`);
const pod = await run(podArgs);
process.stdout.write(pod.out);
process.stderr.write(pod.err);
expect(pod.code === 0, "inject pod.yaml exits 0");
const injected = parse(pod.out) as { spec: { initContainers?: { name: string; restartPolicy?: string }[] } };
expect(
  injected.spec.initContainers?.some((c) => c.restartPolicy === "Always") === true,
  "the client is a native sidecar",
);

// 2. A Deployment with two JuiceFS volumes and an init container: summarised.
const depArgs = ["inject", "-f", ex("deployment.yaml"), "--manifests", ...context, "-o", "json"];
console.log(`\n$ juicefs-csi ${rel(depArgs)}   # summary of the pod template`);
const dep = await run(depArgs);
expect(dep.code === 0, "inject deployment.yaml exits 0");
if (dep.code === 0) {
  const d = JSON.parse(dep.out) as { spec: { template: { spec: Record<string, unknown> } } };
  const spec = d.spec.template.spec as {
    initContainers: {
      name: string;
      restartPolicy?: string;
      volumeMounts?: { name: string; mountPath: string; subPath?: string; mountPropagation?: string }[];
    }[];
    containers: {
      name: string;
      volumeMounts?: { name: string; mountPath: string; subPath?: string; mountPropagation?: string }[];
    }[];
    volumes: { name: string }[];
  };
  const rows = [
    ...spec.initContainers.map((c) => ({
      c,
      kind:
        c.restartPolicy === "Always" ? "native sidecar" : c.name.endsWith("-envs") ? "envs writer" : "init",
    })),
    ...spec.containers.map((c) => ({ c, kind: "app" })),
  ];
  for (const { c, kind } of rows) {
    console.log(`  ${kind.padEnd(14)} ${c.name}`);
    for (const m of c.volumeMounts ?? [])
      console.log(
        `    ${m.mountPath} <- volume ${m.name}${m.subPath ? ` subPath ${m.subPath}` : ""}${m.mountPropagation ? ` (${m.mountPropagation})` : ""}`,
      );
  }
  console.log(`  volumes: ${spec.volumes.map((v) => v.name).join(", ")}`);
}

// 3. Validation refuses writeback (and a broken Secret), naming the field.
const badArgs = ["validate", "-f", ex("bad-writeback.yaml")];
console.log(`\n$ juicefs-csi ${rel(badArgs)}`);
const bad = await run(badArgs);
process.stdout.write(bad.out);
console.log(`(exit code ${bad.code})`);
expect(bad.code === 1 && /"writeback" is refused/.test(bad.out), "writeback is refused");

console.log(failed ? "\ndemo: FAILED" : "\ndemo: ok (sidecar injected offline; writeback refused)");
process.exitCode = failed ? 1 : 0;
