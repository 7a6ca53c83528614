// Cache warm-up end to end: a claim bound to a JuiceFS PV, a real Mount Pod made by the node service
// (the stand-in juicefs serving a FUSE mount), files written through an app's target; then
// `juicefs-csi warmup` finds the Mount Pod, runs `juicefs warmup` in it through pods/exec (the
// stand-in's WebSocket protocol) and the client reads the files through the mount. Also the refusals:
// a path outside the volume, a claim not bound, exec not allowed. With no running client, the Job
// path: the stand-in scheduler and Job controller run a Job whose pod mounts the claim (the kubelet
// stand-in publishes it through the real node service, which starts a Mount Pod), the client's
// warmup reads the files there, and the command reports and deletes the Job; its failure, --background
// and a node that cannot take it.
import "../csi/mount-namespace.ts";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import t from "tap";
import { main } from "../../cli/main.ts";
import { type WarmupOptions, warmupCommand } from "../../cli/warmup/command.ts";
import { WarmupError } from "../../cli/warmup/plan.ts";
import { doctorAccess, doctorWarmupAccess } from "../../driver/doctor/access.ts";
import { type E2E, secretFor, standInOnly, startE2E, step } from "./harness.ts";

const skip = process.getuid?.() === 0 ? standInOnly : "needs root (CAP_SYS_ADMIN) for FUSE and bind mounts";

let e: E2E;
let ns: string;
let kubeconfig: string;
const pv = "pv-warm";

async function claim(name: string, volumeName: string, bound = true) {
  await e.admin.core.createNamespacedPersistentVolumeClaim({
    namespace: ns,
    body: {
      metadata: { name },
      spec: {
        accessModes: ["ReadWriteMany"],
        storageClassName: "",
        volumeName,
        resources: { requests: { storage: "10Gi" } },
      },
    },
  });
  if (bound)
    await e.admin.core.patchNamespacedPersistentVolumeClaimStatus(
      { namespace: ns, name, body: { status: { phase: "Bound" } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
}

async function volume(name: string, claimName: string, attributes: Record<string, string> = {}) {
  // The harness deletes it at the end of the run, as it does every PV it makes.
  await e.createPV(name, { claim: claimName, attributes });
}

const files = {
  "models/a.bin": 300_000,
  "models/b.bin": 5_000,
  "models/deep/c.txt": 12,
  "logs/x.log": 1_000,
};
let target = "";
/** Kubelet volume dir → the volume id published there (by the kubelet stand-in's volume plugin). */
const published = new Map<string, string>();

t.before(async () => {
  if (skip) return;
  e = await startE2E({
    controllers: true,
    kubelet: {
      // As the real kubelet: a PVC volume is its PV's NodePublishVolume (volume context = the PV's
      // attributes) before the containers start, NodeUnpublishVolume after they stopped.
      volumePlugin: {
        async mount(pod, v, dir) {
          const claimName = v.persistentVolumeClaim?.claimName;
          if (!claimName) throw new Error(`volume ${v.name}: only PVC volumes here`);
          const pvc = await e.admin.core.readNamespacedPersistentVolumeClaim({
            namespace: pod.metadata!.namespace!,
            name: claimName,
          });
          const vol = await e.admin.core.readPersistentVolume({ name: pvc.spec!.volumeName! });
          const id = vol.spec!.csi!.volumeHandle;
          published.set(dir, id);
          await e.node.NodePublishVolume!({
            volume_id: id,
            target_path: dir,
            volume_capability: {
              mount: { fs_type: "", mount_flags: [`cache-dir=${join(e.dir, "cache")}`] },
              access_mode: { mode: "MULTI_NODE_MULTI_WRITER" },
            },
            readonly: false,
            secrets: secretFor(id),
            volume_context: {
              "csi.storage.k8s.io/pod.name": pod.metadata!.name!,
              "csi.storage.k8s.io/pod.namespace": pod.metadata!.namespace!,
              "csi.storage.k8s.io/pod.uid": pod.metadata!.uid!,
              ...vol.spec!.csi!.volumeAttributes,
            },
          } as never);
        },
        async unmount(_pod, _v, dir) {
          // The volume published there (the claim may be gone by now, e.g. with its namespace).
          const id = published.get(dir);
          if (id === undefined) return;
          published.delete(dir);
          // At the harness's stop the node service is gone before the kubelet: detach what is left.
          await e.unpublish(dir, id).catch(() => spawnSync("umount", ["-l", dir]));
        },
      },
    },
  });
  ns = e.appNamespace;
  kubeconfig = e.cluster!.kubeconfig;
  await volume(pv, "data", { subPath: "vol-dir" });
  await claim("data", pv);
  // An app that mounts the claim at /data (never started here: the test publishes for it, as the kubelet would).
  const app = await e.admin.core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: "app" },
      spec: {
        nodeName: e.nodeName,
        containers: [{ name: "app", image: "app", volumeMounts: [{ name: "data", mountPath: "/data" }] }],
        volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data" } }],
      },
    },
  });
  target = await e.publish(app, pv, { context: { subPath: "vol-dir" } });
  for (const [p, size] of Object.entries(files)) {
    mkdirSync(join(target, p, ".."), { recursive: true });
    writeFileSync(join(target, p), Buffer.alloc(size, 7));
  }
  // The Mount Pod serves (publish waited for the mount); its readiness probe reports it a moment later.
  await step("Mount Pod ready", async () =>
    (await e.mountPods(pv)).some((p) => p.status?.containerStatuses?.[0]?.ready === true),
  );
});
t.teardown(async () => {
  if (process.env.WARMUP_DEBUG && e) {
    console.error(e.logs.join(""));
    console.error(
      JSON.stringify(
        (await e.mountPods(pv)).map((p) => [p.metadata?.name, p.status]),
        null,
        1,
      ),
    );
    console.error(e.kubelet?.errors);
  }
  // The app's target is below the kubelet stand-in's pod folder: unpublished first, as the kubelet would.
  if (target) await e.unpublish(target, pv).catch(() => spawnSync("umount", ["-l", target]));
  await e?.stop();
});

function run(paths: string[] | undefined, more: Partial<WarmupOptions> = {}, claimArg = "pvc/data") {
  let out = "";
  let err = "";
  return warmupCommand(claimArg, {
    namespace: ns,
    kubeconfig,
    paths,
    stdout: (s) => {
      out += s;
    },
    stderr: (s) => {
      if (process.env.WARMUP_DEBUG) process.stderr.write(s);
      err += s;
    },
    ...more,
  }).then((r) => ({ ...r, out, err }));
}

const warmupCalls = () =>
  readFileSync(join(e.standinRoot, "calls.log"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { cmd: string; paths?: string[]; threads?: number; background?: boolean })
    .filter((c) => c.cmd === "warmup");

t.test(
  "warms up a directory in the Mount Pod: the client reads every file through the mount",
  { skip },
  async (t) => {
    const [mountPod] = await e.mountPods(pv);
    const mountPoint = mountPod!.metadata!.annotations!["juicefs.com/mount-point"]!;
    const r = await run(["models"], { threads: 4 });
    t.ok(r.ok, r.out);
    t.equal(r.results.length, 1);
    const res = r.results[0]!;
    t.equal(res.client.kind, "Mount Pod");
    t.equal(res.client.pod, mountPod!.metadata!.name);
    t.equal(res.outcome?.files, 3, "three files below models/");
    t.equal(res.outcome?.bytes, 305_012, "their bytes, read through the FUSE mount");
    t.match(res.outcome?.summary, /^warmup: 3 files \(298 KiB bytes\)$/, "the client's own summary line");
    t.match(
      r.out,
      new RegExp(
        `^pvc/data: warmed up 3 files, 298 KiB \\(305012 bytes\\) in Mount Pod kube-system/${mountPod!.metadata!.name} \\(node node-1\\)`,
      ),
    );
    const call = warmupCalls().at(-1)!;
    t.same(
      call.paths,
      [join(mountPoint, "vol-dir", "models")],
      "the path inside the Mount Pod: mount point, the volume's subPath, --path",
    );
    t.equal(call.threads, 4);
    t.ok(e.cluster!.api.accessLog.get("admin")?.has("create /pods/exec kube-system"), "through pods/exec");
  },
);

t.test(
  "no --path: the whole volume; an absolute path under the app's mount maps into the volume",
  { skip },
  async (t) => {
    const all = await run(undefined);
    t.equal(all.results[0]!.outcome?.files, 4);
    const logs = await run(["/data/logs", "logs/"]);
    t.equal(logs.results[0]!.outcome?.files, 1, "/data/logs (the app's view) and logs/ are one path");
    t.equal(warmupCalls().at(-1)!.paths!.length, 1);
  },
);

t.test("progress: a bar on a terminal, plain lines otherwise", { skip }, async (t) => {
  // Long enough per file that, under load, a progress update with 1-3 files still lands after the
  // 100 ms interval (with 120 ms they could all arrive at once and only "0 files so far" be printed).
  e.setFailure("warmup=slow-file:400");
  t.teardown(() => e.setFailure(""));
  const bar = await run(["models"], { tty: true });
  t.ok(bar.ok);
  t.match(
    bar.err,
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's erase-line sequence is the point
    /\r\x1b\[2K. juicefs-node-1-pv-warm-\w{6}: [1-3] files, [\d.]+ \w*B {2}[\d.]+ \w*B\/s/,
    "redrawn in place",
  );
  const plain = await run(["models"], { tty: false, progressIntervalMs: 100 });
  t.ok(plain.ok);
  t.match(plain.err, /^[\w-]+: [1-3] files, [\d.]+ \w*B so far$/m, "plain progress lines");
  t.notOk(plain.err.includes("\x1b"), "no terminal control sequences");
  t.equal(plain.results[0]!.outcome?.files, 3);
});

t.test("--background starts it and returns", { skip }, async (t) => {
  const r = await run(["models"], { background: true });
  t.ok(r.ok);
  t.match(r.out, /warm-up started in the background in Mount Pod/);
  t.equal(
    warmupCalls().some((c) => c.background),
    true,
  );
});

t.test("the client's failure: exit code and its error line, non-zero exit", { skip }, async (t) => {
  e.setFailure("warmup=eio");
  t.teardown(() => e.setFailure(""));
  const r = await run(["models"]);
  t.notOk(r.ok);
  t.equal(r.results[0]!.exitCode, 1);
  t.match(
    r.out,
    /juicefs warmup failed in Mount Pod kube-system\/\S+ with exit code 1: FATAL: warmup failed: input\/output error/,
  );
  const code = await main(["warmup", "pvc/data", "-n", ns, "--kubeconfig", kubeconfig], {
    stdout: () => {},
    stderr: () => {},
  });
  t.equal(code, 1, "the CLI exits 1");
});

t.test("paths that leave the volume are refused before anything runs", { skip }, async (t) => {
  const before = warmupCalls().length;
  for (const p of ["../other-volume", "models/../../x", "/etc", "/data/../etc"]) {
    const err = await run([p]).catch((x: unknown) => x);
    t.type(err, WarmupError, p);
    t.equal((err as WarmupError).exitCode, 2);
    t.match((err as Error).message, /--path .* (leaves|is outside) pvc\/data/);
  }
  let stderr = "";
  const code = await main(["warmup", "pvc/data", "-n", ns, "--kubeconfig", kubeconfig, "--path", "../x"], {
    stdout: () => {},
    stderr: (s) => {
      stderr += s;
    },
  });
  t.equal(code, 2, "a usage error");
  t.match(stderr, /^juicefs-csi: --path \.\.\/x leaves pvc\/data/);
  t.equal(warmupCalls().length, before, "nothing was run");
});

t.test("claim not found, not bound, not JuiceFS", { skip }, async (t) => {
  const fails = (name: string) =>
    warmupCommand(`pvc/${name}`, { namespace: ns, kubeconfig, stdout: () => {}, stderr: () => {} }).then(
      () => "",
      (x: unknown) => (x as Error).message,
    );
  t.match(await fails("missing"), /^pvc\/missing in namespace e2e-\w+ not found/);
  await claim("pending", "", false);
  t.match(
    await fails("pending"),
    /^pvc\/pending in namespace \S+ is not bound \(phase (Pending|unknown)\): there is no volume to warm up yet; see why with: juicefs-csi doctor pvc\/pending/,
  );
  await e.admin.core.createPersistentVolume({
    body: {
      metadata: { name: "pv-nfs" },
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteMany"],
        claimRef: { namespace: ns, name: "nfs" },
        csi: { driver: "nfs.csi.k8s.io", volumeHandle: "x" },
      },
    },
  });
  await claim("nfs", "pv-nfs");
  t.match(await fails("nfs"), /a volume of driver nfs\.csi\.k8s\.io: not a JuiceFS volume/);
});

t.test(
  "RBAC: reads within the doctor's ClusterRole, plus create on pods/exec; a 403 names the chart value",
  { skip },
  async (t) => {
    const dev = e.cluster!.api.writeKubeconfig(join(e.dir, "dev.kubeconfig"), { user: "dev", namespace: ns });
    const r = await warmupCommand("pvc/data", {
      kubeconfig: dev,
      paths: ["models"],
      stdout: () => {},
      stderr: () => {},
    });
    t.ok(r.ok, "the context's namespace is the default");
    const allowed = new Set(
      [...doctorAccess, ...doctorWarmupAccess].flatMap((a) =>
        a.verbs.map((v) => `${v} ${a.apiGroup}/${a.resource}`),
      ),
    );
    const calls = [...(e.cluster!.api.accessLog.get("dev") ?? [])];
    t.ok(calls.some((c) => c.startsWith("create /pods/exec ")));
    for (const call of calls) {
      const [verb, resource] = call.split(" ");
      t.ok(
        allowed.has(`${verb} ${resource}`),
        `${call} is granted by the doctor role with doctor.rbac.warmup`,
      );
    }
    const undo = e.cluster!.api.addFault({
      match: (i) => i.subresource === "exec",
      code: 403,
      message: `pods "x" is forbidden: User "dev" cannot create resource "pods/exec" in API group "" in the namespace "kube-system"`,
    });
    t.teardown(undo);
    let out = "";
    const denied = await warmupCommand("pvc/data", {
      kubeconfig: dev,
      stdout: (s) => {
        out += s;
      },
      stderr: () => {},
    });
    t.notOk(denied.ok);
    t.match(
      out,
      /not allowed to run commands in Mount Pod kube-system\/\S+: pods "x" is forbidden: .*doctor\.rbac\.warmup: true/,
    );
  },
);

// ---- The Job path ----

const jobsOf = async (claimName: string) =>
  (
    await e.admin.batch.listNamespacedJob({
      namespace: ns,
      labelSelector: `juicefs.com/warmup-claim=${claimName}`,
    })
  ).items;

/** A claim "job" whose volume holds the files, and no client running for it. */
let jobClaimReady: Promise<void> | undefined;
async function jobClaim(): Promise<void> {
  jobClaimReady ??= (async () => {
    await volume("pv-job", "job", { subPath: "job-dir" });
    await claim("job", "pv-job");
    // Files written through a publish for a pod no kubelet runs, then unpublished: the Mount Pod goes.
    const writer = await e.admin.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: "writer" },
        spec: { nodeName: "elsewhere", containers: [{ name: "w", image: "w" }] },
      },
    });
    const target = await e.publish(writer, "pv-job", { context: { subPath: "job-dir" } });
    for (const [p, size] of Object.entries(files)) {
      mkdirSync(join(target, p, ".."), { recursive: true });
      writeFileSync(join(target, p), Buffer.alloc(size, 7));
    }
    await e.unpublish(target, "pv-job");
    await step("no Mount Pod of pv-job", async () => (await e.mountPods("pv-job")).length === 0);
  })();
  await jobClaimReady;
  // The previous test's Job mounted the claim through a Mount Pod, which goes shortly after the Job's
  // pod: while it is still up (and still looks ready) warm-up would pick it instead of a Job.
  await step(
    "no Mount Pod of pv-job left by an earlier Job",
    async () => (await e.mountPods("pv-job")).length === 0,
  );
}

t.test(
  "no running client: a Job mounts the claim, warms up there, reports and is deleted (as a user of the doctor role)",
  { skip },
  async (t) => {
    await jobClaim();
    const dev = e.cluster!.api.writeKubeconfig(join(e.dir, "dev-job.kubeconfig"), {
      user: "dev-job",
      namespace: ns,
    });
    const r = await run(["models"], { kubeconfig: dev, threads: 3, jobPollMs: 50 }, "pvc/job");
    t.ok(r.ok, r.out);
    const res = r.results[0]!;
    t.equal(res.client.kind, "Job");
    t.equal(res.client.node, "node-1");
    t.equal(res.outcome?.files, 3, "three files below models/, read through the Job pod's mount");
    t.match(res.outcome?.summary, /^warmup: 3 files \(298 KiB bytes\)$/);
    t.match(
      r.out,
      /^pvc\/job: warmed up 3 files, 298 KiB in Job e2e-\w+\/juicefs-warmup-job-\w{5} \(node node-1\)\n$/,
    );
    const jobName = res.job!;
    t.match(
      r.err,
      new RegExp(
        `no running JuiceFS client: created Job ${ns}/${jobName}, which mounts pvc/job on a node the scheduler picks`,
      ),
    );
    t.match(r.err, /with image juicedata\/mount:ce-v1\.3\.0 \(the community edition's default mount image\)/);
    t.match(
      r.err,
      // What the poll first sees depends on timing: any of the pod's states, on the node it ran on.
      new RegExp(
        `Job ${ns}/${jobName}: pod ${jobName}-\\w{5} ((running|scheduled|finished) on node node-1|waiting on node node-1: \\w+)`,
      ),
    );
    t.match(r.err, new RegExp(`deleted Job ${ns}/${jobName}\\n`));
    const call = warmupCalls().at(-1)!;
    t.equal(call.threads, 3);
    t.equal(call.background, false, "never --background inside the Job's pod");
    t.match(
      call.paths,
      // The kubelet names a claim's directory after its PersistentVolume (the volume spec name).
      [/\/volumes\/kubernetes\.io~csi\/pv-job\/mount\/models$/],
      "the claim's mount in the pod, then --path",
    );
    await step("the Job and its pods are gone", async () => {
      const pods = await e.admin.core.listNamespacedPod({
        namespace: ns,
        labelSelector: `job-name=${jobName}`,
      });
      return (await jobsOf("job")).length === 0 && pods.items.length === 0;
    });
    const allowed = new Set(
      [...doctorAccess, ...doctorWarmupAccess].flatMap((a) =>
        a.verbs.map((v) => `${v} ${a.apiGroup}/${a.resource}`),
      ),
    );
    const calls = [...(e.cluster!.api.accessLog.get("dev-job") ?? [])];
    for (const verb of ["create", "get", "delete"])
      t.ok(
        calls.some((c) => c.startsWith(`${verb} batch/jobs `)),
        `${verb} on jobs`,
      );
    t.ok(
      calls.some((c) => c.startsWith("get /pods/log ")),
      "the pod's log",
    );
    for (const call of calls) {
      const [verb, resource] = call.split(" ");
      t.ok(
        allowed.has(`${verb} ${resource}`),
        `${call} is granted by the doctor role with doctor.rbac.warmup`,
      );
    }
    // What the Job controller stand-in made, as the real one does (its Events stay after the Job).
    const events = await e.admin.core.listNamespacedEvent({
      namespace: ns,
      fieldSelector: `involvedObject.name=${jobName}`,
    });
    t.ok(
      events.items.some((ev) => ev.reason === "SuccessfulCreate" && /^Created pod: /.test(ev.message ?? "")),
    );
    t.ok(events.items.some((ev) => ev.reason === "Completed"));
  },
);

t.test(
  "the Job fails: exit 1, the pod's exit code and error line, the Job's reason; deleted",
  { skip },
  async (t) => {
    await jobClaim();
    e.setFailure("warmup=eio");
    t.teardown(() => e.setFailure(""));
    let out = "";
    let err = "";
    const code = await main(["warmup", "pvc/job", "-n", ns, "--kubeconfig", kubeconfig, "--path", "models"], {
      stdout: (s) => {
        out += s;
      },
      stderr: (s) => {
        err += s;
      },
    });
    t.equal(code, 1, "the CLI exits 1");
    t.match(
      out,
      /^juicefs warmup failed in Job e2e-\w+\/(juicefs-warmup-job-\w{5}) \(pod \1-\w{5}, node node-1\) with exit code 1: FATAL: warmup failed: input\/output error; Job BackoffLimitExceeded: Job has reached the specified backoff limit \(2 failed pods\)\n$/,
    );
    t.match(err, /deleted Job /);
    await step("the Job is gone", async () => (await jobsOf("job")).length === 0);
  },
);

t.test("--background: the Job is left running and named", { skip }, async (t) => {
  await jobClaim();
  e.setFailure("warmup=slow-file:400");
  t.teardown(() => e.setFailure(""));
  const r = await run(["models"], { background: true, jobPollMs: 50 }, "pvc/job");
  t.ok(r.ok);
  const m =
    /^pvc\/job: warm-up runs in the background in Job (e2e-\w+)\/(juicefs-warmup-job-\w{5}); follow it with: kubectl logs -n \1 job\/\2 -f/.exec(
      r.out,
    );
  t.ok(m, r.out);
  const name = m![2]!;
  t.match(r.err, new RegExp(`created Job ${ns}/${name}`));
  t.notMatch(r.err, /deleted Job/);
  await step("its pod runs juicefs warmup", async () => {
    const pods = await e.admin.core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${name}` });
    return pods.items.some((p) => p.status?.phase === "Running");
  });
  const [job] = await jobsOf("job");
  t.equal(job?.metadata?.name, name);
  t.equal(
    job?.spec?.ttlSecondsAfterFinished,
    3600,
    "the TTL controller deletes it an hour after it finishes",
  );
  await e.admin.batch.deleteNamespacedJob({ namespace: ns, name, propagationPolicy: "Background" });
  await step("deleted with its pod", async () => {
    const pods = await e.admin.core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${name}` });
    return (await jobsOf("job")).length === 0 && pods.items.length === 0;
  });
});

t.test(
  "--node that cannot take the Job: the scheduler's reason, at once, and the Job deleted",
  { skip },
  async (t) => {
    await jobClaim();
    const r = await run(["models"], { node: "node-9", jobPollMs: 50 }, "pvc/job");
    t.notOk(r.ok);
    t.match(r.err, /created Job \S+, which mounts pvc\/job on node node-9/);
    t.match(
      r.out,
      /^warm-up Job e2e-\w+\/juicefs-warmup-job-\w{5} failed: its pod \S+ cannot be scheduled: 0\/1 nodes are available: 1 node\(s\) didn't match Pod's node affinity\/selector\./,
    );
    await step("the Job is gone", async () => (await jobsOf("job")).length === 0);
  },
);
