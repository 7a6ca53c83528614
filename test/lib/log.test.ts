import { Writable } from "node:stream";
import t from "tap";
import { createLogger } from "../../lib/log.ts";
import { createRegistry } from "../../lib/metrics.ts";

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(c, _e, cb) {
      chunks.push(String(c));
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join("")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
  };
}

t.test("secrets are redacted at any depth, other fields kept", async (t) => {
  const out = capture();
  const log = createLogger({ level: "info", destination: out.stream });
  log.info(
    {
      req: { volume_id: "pvc-1", secrets: { metaurl: "redis://:pw@h/1", token: "TOKVALUE" } },
      settings: { metaurl: "redis://:pw@h/1", "secret-key": "sk", "access-key": "ak", name: "vol" },
      deep: { a: { b: { token: "t2" } } },
    },
    "publish",
  );
  const raw = JSON.stringify(out.lines());
  for (const s of ["pw@h", "TOKVALUE", '"sk"', '"ak"', "t2"]) t.notMatch(raw, s, `${s} is not logged`);
  const [line] = out.lines();
  t.match(line, {
    msg: "publish",
    req: { volume_id: "pvc-1", secrets: "[REDACTED]" },
    settings: { name: "vol" },
  });
});

t.test(
  "secrets are redacted six levels deep, inside arrays, in child bindings and under any case",
  async (t) => {
    const out = capture();
    const log = createLogger({ level: "info", destination: out.stream }).child({
      binding: { nested: [{ token: "BINDTOKEN" }] },
    });
    const shared = { metaurl: "redis://:SHAREDPW@h/1", keep: "kept-shared" };
    const cyclic: Record<string, unknown> = { name: "loop", password: "CYCLEPW" };
    cyclic.self = cyclic;
    log.info(
      {
        a: { b: { c: { d: { e: { f: { metaurl: "redis://:DEPTH6PW@h/1", name: "fs-6" } } } } } },
        list: [[{ "secret-key": "ARRAYSK" }], { items: [{ envs: '{"META_PASSWORD":"ENVPW"}' }] }],
        twice: [shared, shared],
        cyclic,
        Header: { Authorization: "Bearer AUTHHDR" },
      },
      "deep",
    );
    const raw = JSON.stringify(out.lines());
    for (const s of ["BINDTOKEN", "SHAREDPW", "CYCLEPW", "DEPTH6PW", "ARRAYSK", "ENVPW", "AUTHHDR"])
      t.notMatch(raw, s, `${s} is not logged`);
    // biome-ignore lint/suspicious/noExplicitAny: a parsed log line, read by known paths
    const [line] = out.lines() as [Record<string, any>];
    t.equal(line.a.b.c.d.e.f.metaurl, "[REDACTED]", "depth 6");
    t.equal(line.a.b.c.d.e.f.name, "fs-6", "other keys at depth 6 kept");
    t.equal(line.list[0][0]["secret-key"], "[REDACTED]", "array of arrays");
    t.equal(line.list[1].items[0].envs, "[REDACTED]", "array inside an object inside an array");
    t.equal(line.twice[1].keep, "kept-shared", "an object logged twice is kept both times");
    t.equal(line.binding.nested[0].token, "[REDACTED]", "child bindings");
  },
);

t.test("level from option, then $LOG_LEVEL; a bad level is refused by name", async (t) => {
  const out = capture();
  createLogger({ level: "warn", destination: out.stream }).info("hidden");
  t.equal(out.stream.writableLength, 0);
  t.equal(createLogger({ level: "debug", destination: out.stream }).level, "debug");
  process.env.LOG_LEVEL = "error";
  t.teardown(() => delete process.env.LOG_LEVEL);
  t.equal(createLogger({ destination: out.stream }).level, "error");
  t.throws(() => createLogger({ level: "loud" }), /log level "loud" is not one of fatal, error/);
});

t.test("each registry is independent and exposes default process metrics with our prefix", async (t) => {
  const a = createRegistry();
  const b = createRegistry({ defaultMetrics: false });
  t.match(await a.metrics(), /juicefs_csi_process_cpu_user_seconds_total/);
  t.equal(await b.metrics(), "\n");
});
