// Pure pieces of the CSI plugin: mount table parsing, path patterns, redaction, capabilities,
// endpoint parsing, the in-flight guard and the per-key mutex. No mounts, no sockets.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pathPattern syntax is ${...} in plain strings
import { posix } from "node:path";
import fc from "fast-check";
import t from "tap";
import { checkCapability, unsupportedReason } from "../../driver/csi/capabilities.ts";
import { CsiError, status } from "../../driver/csi/errors.ts";
import { InFlight } from "../../driver/csi/inflight.ts";
import {
  type PvcMetadata,
  registryDirName,
  resolvePathPattern,
  safeSubPath,
} from "../../driver/csi/path-pattern.ts";
import { socketPathOf } from "../../driver/main.ts";
import { MountTable, parseMountInfo, serves } from "../../driver/mount/mountinfo.ts";
import { KeyedMutex } from "../../driver/mount/mutex.ts";
import { redact, secretValues } from "../../driver/mount/redact.ts";

const sample = [
  "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw",
  "100 27 0:50 / /var/lib/juicefs/volume/pvc-1-abc rw,relatime shared:5 - fuse.juicefs JuiceFS:myfs rw,user_id=0",
  "101 27 0:50 /pvc-1 /var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/pvc-1/mount rw,relatime - fuse.juicefs JuiceFS:myfs rw",
  "102 27 0:50 /pvc-1 /var/lib/kubelet/pods/p2/volumes/kubernetes.io~csi/pvc-1/mount ro,relatime - fuse.juicefs JuiceFS:myfs rw",
  "103 27 0:51 / /var/lib/juicefs/volume/pvc-2-def rw - fuse.juicefs JuiceFS:other rw",
  "104 27 254:0 /tmp/with\\040space /mnt/a\\040b rw - ext4 /dev/vda rw",
  "105 27 254:0 /tmp/data /mnt/data rw - ext4 /dev/vda rw",
  "106 27 254:0 /tmp/database /mnt/database rw - ext4 /dev/vda rw",
].join("\n");

t.test("mountinfo: fields, octal escapes, optional fields", async (t) => {
  const entries = parseMountInfo(sample);
  t.equal(entries.length, 8);
  t.match(entries[1], {
    id: 100,
    parentId: 27,
    dev: "0:50",
    root: "/",
    mountPoint: "/var/lib/juicefs/volume/pvc-1-abc",
    fsType: "fuse.juicefs",
    source: "JuiceFS:myfs",
  });
  t.same(entries[5]?.root, "/tmp/with space");
  t.same(entries[5]?.mountPoint, "/mnt/a b");
  t.ok(entries[3]?.options.includes("ro"));
  t.same(parseMountInfo("garbage line\n\n"), [], "unparseable lines are skipped");
});

t.test("mountinfo: references are bind mounts of the client's tree (same device, root below)", async (t) => {
  const table = new MountTable(parseMountInfo(sample));
  const client = table.at("/var/lib/juicefs/volume/pvc-1-abc");
  t.ok(client);
  if (!client) return;
  t.same(
    table.servedBy(client).map((e) => e.id),
    [101, 102],
  );
  const other = table.at("/var/lib/juicefs/volume/pvc-2-def");
  t.same(other && table.servedBy(other), []);
  // A bind of /tmp/data does not serve /tmp/database (prefix without a path boundary).
  const data = table.at("/mnt/data");
  const database = table.at("/mnt/database");
  t.ok(data && database && !serves(data, database));
  t.equal(table.at("/not/mounted"), undefined);
  t.equal(table.at("/mnt/data/")?.id, 105, "trailing slash normalized");
});

t.test("mountinfo: the topmost of stacked mounts wins", async (t) => {
  const table = new MountTable(
    parseMountInfo("1 0 0:1 / /m rw - ext4 a rw\n2 1 0:2 / /m rw - ext4 b rw\n3 1 0:3 / /m/x rw - ext4 c rw"),
  );
  t.equal(table.at("/m")?.id, 2);
  t.equal(table.allAt("/m").length, 2);
  t.same(
    table.below("/m").map((e) => e.id),
    [3],
  );
});

t.test("pathPattern: PVC name and namespace, PV name, labels only when looked up", async (t) => {
  const meta = { name: "data", namespace: "team-a", pvName: "pvc-123" };
  t.equal(resolvePathPattern("${.pvc.namespace}-${.pvc.name}", meta), "team-a-data");
  t.equal(resolvePathPattern("${.PVC.namespace}/${.PVC.name}", meta), "team-a/data");
  t.equal(resolvePathPattern("/vols/${ .pv.name }/", meta), "vols/pvc-123");
  t.equal(
    resolvePathPattern("${.pvc.labels.app}", { ...meta, labels: { app: "web" }, annotations: {} }),
    "web",
  );
  const err = (p: string, m: PvcMetadata = meta) => {
    try {
      resolvePathPattern(p, m);
      return undefined;
    } catch (e) {
      return e as CsiError;
    }
  };
  t.match(err("${.pvc.labels.app}")?.message, /needs the PVC's labels/);
  t.match(err("${.pvc.uid}")?.message, /unknown reference/);
  t.match(err("${.pvc.name}", {})?.message, /--extra-create-metadata/);
  t.equal(err("${.pvc.name}", {})?.code, status.INVALID_ARGUMENT);
  t.match(err("../${.pvc.name}")?.message, /"\.\." path element/);
  t.match(err("/")?.message, /file system root/);
  t.match(err(`${registryDirName}/x`)?.message, /reserved/);
  // A substituted value cannot add structure: "/" and ".." inside a value stay inside one element.
  t.equal(resolvePathPattern("${.pvc.name}", { name: "../../etc" }), "..-..-etc");
});

t.test("pathPattern: no input ever escapes the file system root or names it (property)", async () => {
  fc.assert(
    fc.property(
      fc.string({ maxLength: 40 }),
      fc.record({ name: fc.string(), namespace: fc.string(), pvName: fc.string() }),
      (pattern, meta) => {
        let out: string;
        try {
          out = resolvePathPattern(pattern, meta);
        } catch (e) {
          if (!(e instanceof CsiError) || e.code !== status.INVALID_ARGUMENT) throw e;
          return;
        }
        const joined = posix.join("/root", out);
        if (!joined.startsWith("/root/")) throw new Error(`escaped: ${out}`);
        if (out.split("/").some((s) => s === ".." || s === "." || s === "")) throw new Error(`bad: ${out}`);
      },
    ),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom("a", "..", ".", "", "b/c", "/", "x\u0000"), { maxLength: 6 }),
      (parts) => {
        try {
          const out = safeSubPath(parts.join("/"), "p");
          if (!posix.join("/root", out).startsWith("/root/")) throw new Error(`escaped: ${out}`);
        } catch (e) {
          if (!(e instanceof CsiError)) throw e;
        }
      },
    ),
  );
});

t.test("redaction: secret values, their URL passwords, any URL password", async (t) => {
  const secret = {
    name: "myfs",
    metaurl: "redis://:p4ssw0rd@10.0.0.1:6379/1",
    "access-key": "AKIAXXXX",
    "secret-key": "abc",
    storage: "s3",
  };
  const values = secretValues(secret);
  t.notOk(values.includes("myfs"), "the file system name stays readable");
  t.notOk(values.includes("abc"), "too short to redact safely");
  const text =
    "connecting to redis://:p4ssw0rd@10.0.0.1:6379/1 with AKIAXXXX; password p4ssw0rd; other mysql://u:hunter2@h/db";
  const out = redact(text, values);
  for (const s of ["p4ssw0rd", "AKIAXXXX", "hunter2"]) t.notMatch(out, s);
  t.match(out, "mysql://u:[REDACTED]@h/db");
});

t.test("capabilities: mount access with the three supported modes; block is invalid", async (t) => {
  for (const mode of ["SINGLE_NODE_WRITER", "MULTI_NODE_MULTI_WRITER", "MULTI_NODE_READER_ONLY"]) {
    t.doesNotThrow(() => checkCapability({ mount: {}, access_mode: { mode } as never }, "c"), mode);
  }
  const code = (f: () => unknown) => {
    try {
      f();
      return 0;
    } catch (e) {
      return (e as CsiError).code;
    }
  };
  t.equal(
    code(() => checkCapability({ block: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } }, "c")),
    3,
  );
  t.equal(
    code(() => checkCapability(undefined, "c")),
    3,
  );
  t.equal(
    code(() => checkCapability({ mount: {} }, "c")),
    3,
  );
  t.match(
    unsupportedReason({ mount: {}, access_mode: { mode: "MULTI_NODE_SINGLE_WRITER" } }, "c"),
    /not supported/,
  );
});

t.test("endpoint: unix URL or absolute path", async (t) => {
  t.equal(socketPathOf("unix:///csi/csi.sock"), "/csi/csi.sock");
  t.equal(socketPathOf("unix:/csi/csi.sock"), "/csi/csi.sock");
  t.equal(socketPathOf("/csi/csi.sock"), "/csi/csi.sock");
  t.throws(() => socketPathOf("tcp://0.0.0.0:10000"), /unix:\/\/\/absolute/);
  t.throws(() => socketPathOf("unix://relative.sock"), /unix:\/\/\/absolute/);
});

t.test("in-flight guard: a second call on the same key is ABORTED, other keys run", async (t) => {
  const f = new InFlight();
  let release = () => {};
  const first = f.run("a", "target a", () => new Promise<void>((r) => (release = r)));
  await t.rejects(
    f.run("a", "target a", async () => {}),
    { code: status.ABORTED, message: /target a/ },
  );
  await f.run("b", "target b", async () => {});
  release();
  await first;
  await f.run("a", "target a", async () => {});
  t.equal(f.size, 0);
});

t.test("keyed mutex: same key in order, even after a failure", async (t) => {
  const m = new KeyedMutex();
  const order: string[] = [];
  const slow = (tag: string, ms: number, fail = false) =>
    m.run("k", async () => {
      await new Promise((r) => setTimeout(r, ms));
      order.push(tag);
      if (fail) throw new Error(tag);
    });
  const a = slow("a", 20, true);
  const b = slow("b", 1);
  const c = m.run("other", async () => order.push("other"));
  await t.rejects(a, /a/);
  await b;
  await c;
  t.same(order, ["other", "a", "b"]);
});
