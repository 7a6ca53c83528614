// A csi-sanity style suite over a real unix socket with a real gRPC client: argument validation
// per RPC, idempotency (repeated and concurrent), error codes per the spec, capability gating.
// Calls that mount need root; they are skipped with a message otherwise.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pathPattern syntax is ${...} in plain strings
import "./mount-namespace.ts";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { join } from "node:path";
import t from "tap";
import type { RunningDriver } from "../../driver/main.ts";
import { readMountTable } from "../../driver/mount/mountinfo.ts";
import { version } from "../../lib/version.ts";
import {
  type CsiClients,
  cleanup,
  codes,
  csiClients,
  fsDir,
  makeEnv,
  mountCap,
  publishRequest,
  secretFor,
  skipUnlessRoot,
  startTestDriver,
} from "./helpers.ts";

const env = makeEnv("sanity");
const secrets = secretFor("sanityfs");
let driver: RunningDriver;
let c: CsiClients;

t.before(async () => {
  driver = await startTestDriver(env);
  c = csiClients(env.socket);
});

t.teardown(async () => {
  c?.close();
  await driver?.stop();
  cleanup(env);
});

const rwx = [mountCap("MULTI_NODE_MULTI_WRITER")];
const createReq = (name: string, extra: object = {}) => ({
  name,
  volume_capabilities: rwx,
  secrets,
  ...extra,
});
const target = (name: string) => join(env.dir, "pods", name, "mount");

// ---------------- Identity ----------------

t.test("Identity: plugin info, capabilities, probe", async (t) => {
  t.same(await c.call(c.identity, "GetPluginInfo"), {
    name: "csi.juicefs.com",
    vendor_version: version,
    manifest: { mountMode: "process", services: "all" },
  });
  const caps = await c.call<{ capabilities: object[] }>(c.identity, "GetPluginCapabilities");
  t.match(caps.capabilities, [
    { service: { type: "CONTROLLER_SERVICE" } },
    { volume_expansion: { type: "ONLINE" } },
  ]);
  t.same(await c.call(c.identity, "Probe"), { ready: { value: true } });
});

t.test("Identity: driver name override; probe fails with FAILED_PRECONDITION without juicefs", async (t) => {
  const e2 = makeEnv("probe");
  const d = await startTestDriver(e2, {
    services: "node",
    driverName: "juicefs.example.com",
    juicefsPath: "/nonexistent/bin/juicefs",
  });
  const c2 = csiClients(e2.socket);
  t.teardown(async () => {
    c2.close();
    await d.stop();
    cleanup(e2);
  });
  t.match(await c2.call(c2.identity, "GetPluginInfo"), { name: "juicefs.example.com" });
  const r = await c2.code(c2.identity, "Probe");
  t.equal(r.code, codes.FAILED_PRECONDITION);
  t.match(r.message, /\/nonexistent\/bin\/juicefs/);
  // Same plugin capabilities from every instance, whatever it serves.
  t.match(await c2.call(c2.identity, "GetPluginCapabilities"), {
    capabilities: [{ service: { type: "CONTROLLER_SERVICE" } }],
  });
  // Capability gating: a node-only instance has no Controller service.
  t.equal((await c2.code(c2.controller, "CreateVolume", createReq("x"))).code, codes.UNIMPLEMENTED);
  t.equal((await c2.code(c2.controller, "ControllerGetCapabilities")).code, codes.UNIMPLEMENTED);
});

t.test("capability gating: a controller-only instance has no Node service", async (t) => {
  const e3 = makeEnv("ctrl");
  const port = await freePort();
  const d = await startTestDriver(e3, { services: "controller", metricsPort: port });
  const c3 = csiClients(e3.socket);
  t.teardown(async () => {
    c3.close();
    await d.stop();
    cleanup(e3);
  });
  t.equal((await c3.code(c3.node, "NodeGetInfo")).code, codes.UNIMPLEMENTED);
  t.equal((await c3.code(c3.node, "NodePublishVolume", {})).code, codes.UNIMPLEMENTED);
  // Stateless: validates a volume this instance never saw (as after a restart), without a Secret,
  // from its volume context (a PV's volumeAttributes).
  t.match(
    await c3.call(c3.controller, "ValidateVolumeCapabilities", {
      volume_id: "pvc-from-before",
      volume_capabilities: rwx,
      volume_context: { subPath: "pvc-from-before" },
    }),
    { confirmed: { volume_capabilities: [{ access_mode: { mode: "MULTI_NODE_MULTI_WRITER" } }] } },
  );
  // Metrics of the calls above, when asked for.
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.match(body, /juicefs_csi_grpc_requests_total\{method="ValidateVolumeCapabilities",code="OK"[^}]*\} 1/);
  t.match(body, /juicefs_csi_grpc_request_duration_seconds_count\{[^}]*method="ValidateVolumeCapabilities"/);
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

// ---------------- Controller ----------------

t.test("Controller: capabilities", async (t) => {
  const r = await c.call<{ capabilities: { rpc: { type: string } }[] }>(
    c.controller,
    "ControllerGetCapabilities",
  );
  t.same(r.capabilities.map((x) => x.rpc.type).sort(), ["CREATE_DELETE_VOLUME", "EXPAND_VOLUME"]);
});

t.test("Controller: CreateVolume argument validation → INVALID_ARGUMENT", async (t) => {
  const cases: [string, object, RegExp][] = [
    ["no name", { volume_capabilities: rwx, secrets }, /name is required/],
    ["no capabilities", { name: "v", secrets }, /volume_capabilities is required/],
    [
      "block access",
      createReq("v", { volume_capabilities: [{ block: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } }] }),
      /block access/,
    ],
    ["no access mode", createReq("v", { volume_capabilities: [{ mount: {} }] }), /access_mode/],
    [
      "unsupported mode",
      createReq("v", { volume_capabilities: [mountCap("MULTI_NODE_SINGLE_WRITER")] }),
      /not supported/,
    ],
    [
      "from snapshot",
      createReq("v", { volume_content_source: { snapshot: { snapshot_id: "s" } } }),
      /snapshots/,
    ],
    [
      "required above limit",
      createReq("v", { capacity_range: { required_bytes: 2048, limit_bytes: 1024 } }),
      /exceeds limit_bytes/,
    ],
    ["negative capacity", createReq("v", { capacity_range: { required_bytes: -1 } }), /negative/],
    ["no Secret", { name: "v", volume_capabilities: rwx }, /provisioner-secret-name/],
    [
      "read-only without pathPattern",
      createReq("v", { volume_capabilities: [mountCap("MULTI_NODE_READER_ONLY")] }),
      /pathPattern/,
    ],
    [
      "pathPattern climbing out",
      createReq("v", {
        parameters: { pathPattern: "../${.pvc.name}", "csi.storage.k8s.io/pvc/name": "data" },
      }),
      /"\.\."/,
    ],
    ["name that is a path", createReq(".."), /"\.\."/],
  ];
  for (const [what, req, message] of cases) {
    const r = await c.code(c.controller, "CreateVolume", req);
    t.equal(r.code, codes.INVALID_ARGUMENT, what);
    t.match(r.message, message, what);
  }
  const bad = await c.code(c.controller, "CreateVolume", {
    ...createReq("v"),
    secrets: { name: "x", metaurl: "" },
  });
  t.equal(bad.code, codes.INVALID_ARGUMENT, "invalid Secret");
  t.match(bad.message, /provisioner Secret/);
});

t.test("Controller: unimplemented RPCs say so", async (t) => {
  for (const m of ["ControllerPublishVolume", "ControllerUnpublishVolume", "ListVolumes", "GetCapacity"]) {
    t.equal((await c.code(c.controller, m, { volume_id: "v", node_id: "n" })).code, codes.UNIMPLEMENTED, m);
  }
});

t.test("Controller: ValidateVolumeCapabilities answers from the request", async (t) => {
  const ok = await c.call<{ confirmed: object; message: string }>(
    c.controller,
    "ValidateVolumeCapabilities",
    {
      volume_id: "never-created",
      volume_capabilities: [mountCap("SINGLE_NODE_WRITER"), mountCap("MULTI_NODE_READER_ONLY")],
      volume_context: { subPath: "x" },
    },
  );
  t.match(ok.confirmed, { volume_context: { subPath: "x" } });
  const no = await c.call<{ confirmed: object | null; message: string }>(
    c.controller,
    "ValidateVolumeCapabilities",
    {
      volume_id: "v",
      volume_capabilities: [mountCap("SINGLE_NODE_SINGLE_WRITER")],
      volume_context: { subPath: "v" },
    },
  );
  t.equal(no.confirmed, null);
  t.match(no.message, /SINGLE_NODE_SINGLE_WRITER is not supported/);
  // CSI spec, ValidateVolumeCapabilities errors: "Volume does not exist: 5 NOT_FOUND". An id with
  // nothing to find it by (no Secret, no volume context) is no volume.
  const unknown = await c.code(c.controller, "ValidateVolumeCapabilities", {
    volume_id: "no-such-volume",
    volume_capabilities: rwx,
  });
  t.equal(unknown.code, codes.NOT_FOUND, "no such volume: NOT_FOUND");
  for (const [what, req] of [
    ["no volume id", { volume_capabilities: rwx }],
    ["no capabilities", { volume_id: "v" }],
    [
      "block",
      { volume_id: "v", volume_capabilities: [{ block: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } }] },
    ],
  ] as const) {
    t.equal(
      (await c.code(c.controller, "ValidateVolumeCapabilities", req)).code,
      codes.INVALID_ARGUMENT,
      what,
    );
  }
});

t.test(
  "Controller: ValidateVolumeCapabilities looks the volume up (NOT_FOUND per the spec, also after a restart)",
  { skip: skipUnlessRoot },
  async (t) => {
    const vvc = (volume_id: string, volume_context?: Record<string, string>) =>
      c.code(c.controller, "ValidateVolumeCapabilities", {
        volume_id,
        volume_capabilities: rwx,
        secrets,
        ...(volume_context ? { volume_context } : {}),
      });
    t.equal((await vvc("pvc-never-created")).code, codes.NOT_FOUND, "unknown id: NOT_FOUND");
    await c.call(c.controller, "CreateVolume", createReq("pvc-vvc"));
    t.equal((await vvc("pvc-vvc")).code, codes.OK, "a created volume exists (its record)");
    // A new controller process (the state is the file system's, not memory).
    const e2 = makeEnv("vvc-restart");
    e2.env = { ...e2.env, JUICEFS_STANDIN_ROOT: env.standinRoot }; // the same file systems
    const d2 = await startTestDriver(e2, { services: "controller" });
    const c2 = csiClients(e2.socket);
    t.teardown(async () => {
      c2.close();
      await d2.stop();
      cleanup(e2);
    });
    t.equal(
      (
        await c2.code(c2.controller, "ValidateVolumeCapabilities", {
          volume_id: "pvc-vvc",
          volume_capabilities: rwx,
          secrets,
        })
      ).code,
      codes.OK,
      "after a restart: still found",
    );
    // Static PVs: not made by CreateVolume; they exist when their directory does.
    mkdirSync(join(fsDir(env, "sanityfs"), "static-dir"), { recursive: true });
    t.equal((await vvc("static-pv", { subPath: "static-dir" })).code, codes.OK, "static PV, its directory");
    t.equal(
      (await vvc("static-root", { mountOptions: "cache-size=1" })).code,
      codes.OK,
      "static PV, the root",
    );
    t.equal((await vvc("static-gone", { subPath: "no-such-dir" })).code, codes.NOT_FOUND, "directory gone");
    await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-vvc", secrets });
    t.equal(
      (await vvc("pvc-vvc", { subPath: "pvc-vvc" })).code,
      codes.NOT_FOUND,
      "deleted (record and directory gone): NOT_FOUND",
    );
  },
);

t.test("Controller: create, repeat, conflict, delete", { skip: skipUnlessRoot }, async (t) => {
  const req = createReq("pvc-a", { capacity_range: { required_bytes: 1 << 30 } });
  const first = await c.call<{ volume: Record<string, unknown> }>(c.controller, "CreateVolume", req);
  t.same(first.volume, {
    volume_id: "pvc-a",
    capacity_bytes: String(1 << 30),
    volume_context: { subPath: "pvc-a", capacity: String(1 << 30) },
    content_source: null,
    accessible_topology: [],
  });
  const dir = join(fsDir(env, "sanityfs"), "pvc-a");
  t.ok(statSync(dir).isDirectory(), "the sub-directory exists in the file system");
  t.equal(statSync(dir).mode & 0o777, 0o777, "writable by any pod user");
  t.same(await c.call(c.controller, "CreateVolume", req), first, "repeated: the same volume");
  t.same(
    await c.call(
      c.controller,
      "CreateVolume",
      createReq("pvc-a", { capacity_range: { limit_bytes: 2 ** 31 } }),
    ),
    first,
    "a compatible range is the same volume",
  );
  const conflict = await c.code(
    c.controller,
    "CreateVolume",
    createReq("pvc-a", { capacity_range: { required_bytes: 2 ** 31 } }),
  );
  t.equal(conflict.code, codes.ALREADY_EXISTS);
  t.match(conflict.message, /capacity/);

  writeFileSync(join(dir, "data"), "x");
  t.same(await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-a", secrets }), {});
  t.notOk(existsSync(dir), "deleted with its content");
  t.same(await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-a", secrets }), {}, "again: OK");
  t.same(
    await c.call(c.controller, "DeleteVolume", { volume_id: "never-existed", secrets }),
    {},
    "unknown: OK",
  );
  t.equal((await c.code(c.controller, "DeleteVolume", {})).code, codes.INVALID_ARGUMENT);
  t.ok(existsSync(fsDir(env, "sanityfs")), "the file system root is never deleted");
});

t.test(
  "Controller: concurrent CreateVolume of one name provisions once",
  { skip: skipUnlessRoot },
  async (t) => {
    const results = await Promise.all(
      Array.from({ length: 6 }, () => c.code(c.controller, "CreateVolume", createReq("pvc-conc"))),
    );
    const codesSeen = results.map((r) => r.code);
    t.ok(
      codesSeen.every((x) => x === codes.OK || x === codes.ABORTED),
      `OK or ABORTED only: ${codesSeen}`,
    );
    t.ok(codesSeen.includes(codes.OK));
    const again = await c.call<{ volume: { volume_id: string } }>(
      c.controller,
      "CreateVolume",
      createReq("pvc-conc"),
    );
    t.equal(again.volume.volume_id, "pvc-conc");
    await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-conc", secrets });
  },
);

t.test(
  "Controller: pathPattern, existing data kept, shared directories",
  { skip: skipUnlessRoot },
  async (t) => {
    const params = {
      pathPattern: "${.pvc.namespace}-${.pvc.name}",
      "csi.storage.k8s.io/pvc/name": "data",
      "csi.storage.k8s.io/pvc/namespace": "team-a",
      "csi.storage.k8s.io/pv/name": "pvc-p1",
      "juicefs/mount-cpu-limit": "2",
    };
    // The directory exists with data before the volume is created (a re-created claim).
    const root = fsDir(env, "sanityfs");
    mkdirSync(join(root, "team-a-data"));
    writeFileSync(join(root, "team-a-data", "keep"), "old data");
    const r = await c.call<{ volume: { volume_context: Record<string, string> } }>(
      c.controller,
      "CreateVolume",
      createReq("pvc-p1", { parameters: params }),
    );
    t.same(r.volume.volume_context, { subPath: "team-a-data", "juicefs/mount-cpu-limit": "2" });
    await c.call(c.controller, "CreateVolume", createReq("pvc-p2", { parameters: params }));
    await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-p1", secrets });
    await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-p2", secrets });
    t.equal(readFileSync(join(root, "team-a-data", "keep"), "utf8"), "old data", "not created by us: kept");

    // Created by us but shared by two volumes: removed only with the last one.
    const shared = { ...params, "csi.storage.k8s.io/pvc/name": "shared" };
    await c.call(c.controller, "CreateVolume", createReq("pvc-s1", { parameters: shared }));
    await c.call(c.controller, "CreateVolume", createReq("pvc-s2", { parameters: shared }));
    await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-s1", secrets });
    t.ok(existsSync(join(root, "team-a-shared")), "still used by pvc-s2");
    await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-s2", secrets });
    t.notOk(existsSync(join(root, "team-a-shared")));
  },
);

t.test("Controller: a planted symlink cannot redirect DeleteVolume", { skip: skipUnlessRoot }, async (t) => {
  await c.call(c.controller, "CreateVolume", createReq("pvc-link"));
  const outside = join(env.dir, "outside");
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, "precious"), "x");
  const dir = join(fsDir(env, "sanityfs"), "pvc-link");
  await rm(dir, { recursive: true });
  symlinkSync(outside, dir);
  const r = await c.code(c.controller, "DeleteVolume", { volume_id: "pvc-link", secrets });
  t.equal(r.code, codes.INTERNAL);
  t.match(r.message, /refusing to delete/);
  t.ok(existsSync(join(outside, "precious")), "nothing outside the volume area is deleted");
  t.ok(lstatSync(dir).isSymbolicLink());
});

t.test("Controller: ControllerExpandVolume records the capacity", { skip: skipUnlessRoot }, async (t) => {
  await c.call(
    c.controller,
    "CreateVolume",
    createReq("pvc-x", { capacity_range: { required_bytes: 1000 } }),
  );
  const grow = { volume_id: "pvc-x", capacity_range: { required_bytes: 5000 }, secrets };
  t.same(await c.call(c.controller, "ControllerExpandVolume", grow), {
    capacity_bytes: "5000",
    node_expansion_required: false,
  });
  t.same(
    await c.call(c.controller, "ControllerExpandVolume", grow),
    {
      capacity_bytes: "5000",
      node_expansion_required: false,
    },
    "repeated: same answer",
  );
  t.match(
    await c.call(c.controller, "ControllerExpandVolume", { ...grow, capacity_range: { required_bytes: 10 } }),
    { capacity_bytes: "5000" },
    "never shrinks",
  );
  const conflict = await c.code(
    c.controller,
    "CreateVolume",
    createReq("pvc-x", { capacity_range: { limit_bytes: 1000 } }),
  );
  t.equal(conflict.code, codes.ALREADY_EXISTS, "the recorded capacity is what CreateVolume compares");
  t.equal(
    (await c.code(c.controller, "ControllerExpandVolume", { ...grow, volume_id: "nope" })).code,
    codes.NOT_FOUND,
  );
  t.equal(
    (await c.code(c.controller, "ControllerExpandVolume", { capacity_range: {} })).code,
    codes.INVALID_ARGUMENT,
  );
  t.equal(
    (await c.code(c.controller, "ControllerExpandVolume", { volume_id: "pvc-x" })).code,
    codes.INVALID_ARGUMENT,
  );
  await c.call(c.controller, "DeleteVolume", { volume_id: "pvc-x", secrets });
});

// ---------------- Node ----------------

t.test("Node: capabilities and info", async (t) => {
  const caps = await c.call<{ capabilities: { rpc: { type: string } }[] }>(c.node, "NodeGetCapabilities");
  t.same(caps.capabilities.map((x) => x.rpc.type).sort(), ["GET_VOLUME_STATS", "VOLUME_CONDITION"]);
  t.match(await c.call(c.node, "NodeGetInfo"), { node_id: "node-1", max_volumes_per_node: "0" });
  for (const m of ["NodeStageVolume", "NodeUnstageVolume", "NodeExpandVolume"]) {
    t.equal((await c.code(c.node, m, { volume_id: "v" })).code, codes.UNIMPLEMENTED, m);
  }
});

t.test("Node: argument validation → INVALID_ARGUMENT", async (t) => {
  const tp = target("invalid");
  const base = publishRequest("pvc-n", tp, secrets);
  const cases: [string, string, object, RegExp][] = [
    ["publish: no volume id", "NodePublishVolume", { ...base, volume_id: "" }, /volume_id/],
    ["publish: no target", "NodePublishVolume", { ...base, target_path: "" }, /target_path/],
    ["publish: relative target", "NodePublishVolume", { ...base, target_path: "pods/x" }, /absolute/],
    [
      "publish: no capability",
      "NodePublishVolume",
      { ...base, volume_capability: null },
      /volume_capability/,
    ],
    [
      "publish: block",
      "NodePublishVolume",
      { ...base, volume_capability: { block: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } } },
      /block/,
    ],
    [
      "publish: unsupported mode",
      "NodePublishVolume",
      { ...base, volume_capability: mountCap("SINGLE_NODE_MULTI_WRITER") },
      /not supported/,
    ],
    [
      "publish: invalid settings",
      "NodePublishVolume",
      { ...base, secrets: { name: "x" } },
      /invalid settings for volume pvc-n/,
    ],
    ["unpublish: no volume id", "NodeUnpublishVolume", { target_path: tp }, /volume_id/],
    ["unpublish: no target", "NodeUnpublishVolume", { volume_id: "v" }, /target_path/],
    ["stats: no volume id", "NodeGetVolumeStats", { volume_path: tp }, /volume_id/],
    ["stats: no path", "NodeGetVolumeStats", { volume_id: "v" }, /volume_path/],
    ["stats: relative path", "NodeGetVolumeStats", { volume_id: "v", volume_path: "pods/x" }, /absolute/],
    [
      "unpublish: relative target",
      "NodeUnpublishVolume",
      { volume_id: "v", target_path: "pods/x" },
      /absolute/,
    ],
  ];
  for (const [what, method, req, message] of cases) {
    const r = await c.code(c.node, method, req);
    t.equal(r.code, codes.INVALID_ARGUMENT, what);
    t.match(r.message, message, what);
  }
  t.notOk(existsSync(tp), "nothing was created for invalid calls");
});

t.test("Node: stats of a path that is not a published volume → NOT_FOUND", async (t) => {
  const missing = await c.code(c.node, "NodeGetVolumeStats", {
    volume_id: "v",
    volume_path: join(env.dir, "nope"),
  });
  t.equal(missing.code, codes.NOT_FOUND);
  const plain = join(env.dir, "plain-dir");
  mkdirSync(plain, { recursive: true });
  const notMounted = await c.code(c.node, "NodeGetVolumeStats", { volume_id: "v", volume_path: plain });
  t.equal(notMounted.code, codes.NOT_FOUND);
  t.match(notMounted.message, /not published/);
});

t.test("Node: publish, repeat, stats, unpublish removes the target", { skip: skipUnlessRoot }, async (t) => {
  const tp = target("p1");
  const req = publishRequest("pvc-n1", tp, secrets, { volume_context: { subPath: "pvc-n1" } });
  t.same(await c.call(c.node, "NodePublishVolume", req), {});
  t.same(await c.call(c.node, "NodePublishVolume", req), {}, "repeated: OK");
  t.equal((await readMountTable()).allAt(tp).length, 1, "still exactly one mount at the target");
  writeFileSync(join(tp, "hello"), "world");
  t.equal(
    readFileSync(join(fsDir(env, "sanityfs"), "pvc-n1", "hello"), "utf8"),
    "world",
    "the volume's sub-dir",
  );
  const stats = await c.call<{ usage: { unit: string; total: string }[]; volume_condition: object }>(
    c.node,
    "NodeGetVolumeStats",
    { volume_id: "pvc-n1", volume_path: tp },
  );
  t.same(
    stats.usage.map((u) => u.unit),
    ["BYTES", "INODES"],
  );
  t.ok(Number(stats.usage[0]?.total) > 0);
  t.match(stats.volume_condition, { abnormal: false, message: /serving/ });

  t.same(await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-n1", target_path: tp }), {});
  t.notOk(existsSync(tp), "target path removed");
  t.same(
    await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-n1", target_path: tp }),
    {},
    "again: OK",
  );
  t.same(
    await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-n1", target_path: target("never") }),
    {},
    "never published: OK",
  );
});

t.test("Node: concurrent publishes of one target", { skip: skipUnlessRoot }, async (t) => {
  const tp = target("conc");
  const req = publishRequest("pvc-n2", tp, secrets);
  const results = await Promise.all(
    Array.from({ length: 5 }, () => c.code(c.node, "NodePublishVolume", req)),
  );
  const seen = results.map((r) => r.code);
  t.ok(
    seen.every((x) => x === codes.OK || x === codes.ABORTED),
    `OK or ABORTED: ${seen}`,
  );
  t.ok(seen.includes(codes.OK));
  t.equal((await readMountTable()).allAt(tp).length, 1, "one mount");
  const un = await Promise.all(
    Array.from({ length: 3 }, () =>
      c.code(c.node, "NodeUnpublishVolume", { volume_id: "pvc-n2", target_path: tp }),
    ),
  );
  t.ok(un.every((r) => r.code === codes.OK || r.code === codes.ABORTED));
  await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-n2", target_path: tp });
  t.notOk(existsSync(tp));
});

t.test(
  "Node: read-only publish; a different readonly flag on the same target",
  { skip: skipUnlessRoot },
  async (t) => {
    const tp = target("ro");
    const req = publishRequest("pvc-n3", tp, secrets, { readonly: true });
    await c.call(c.node, "NodePublishVolume", req);
    t.throws(() => writeFileSync(join(tp, "f"), "x"), { code: "EROFS" });
    t.ok((await readMountTable()).at(tp)?.options.includes("ro"));
    const again = await c.code(c.node, "NodePublishVolume", { ...req, readonly: false });
    t.equal(again.code, codes.ALREADY_EXISTS);
    await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-n3", target_path: tp });
  },
);

t.test("Node: a target bound to something else is re-bound", { skip: skipUnlessRoot }, async (t) => {
  const tp = target("wrong");
  const other = join(env.dir, "other-source");
  mkdirSync(other, { recursive: true });
  mkdirSync(tp, { recursive: true });
  writeFileSync(join(other, "wrong-file"), "x");
  const { spawnSync } = await import("node:child_process");
  t.equal(spawnSync("mount", ["--bind", other, tp]).status, 0);
  await c.call(c.node, "NodePublishVolume", publishRequest("pvc-n4", tp, secrets));
  t.notOk(existsSync(join(tp, "wrong-file")), "now shows the volume");
  t.equal((await readMountTable()).allAt(tp).length, 1);
  await c.call(c.node, "NodeUnpublishVolume", { volume_id: "pvc-n4", target_path: tp });
  t.notOk(existsSync(tp));
});
