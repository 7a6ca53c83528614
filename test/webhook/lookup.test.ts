// Lookups behind the handlers: informer stores first, one shared live read on a miss, Secrets in a
// refreshed read-through cache, deadlines; and the guard that applies the budget and failure policy.
import t from "tap";
import type { AdmissionRequest } from "../../webhook/admission.ts";
import {
  CachedLookup,
  type ClusterLookup,
  LookupError,
  MemoryLookup,
  type ObjectStore,
  withDeadline,
} from "../../webhook/lookup.ts";
import { guard } from "../../webhook/policy.ts";

const pvc = (name: string) => ({
  kind: "PersistentVolumeClaim",
  metadata: { name, namespace: "default" },
  spec: {},
});
const secret = (name: string, v: string) => ({
  kind: "Secret",
  metadata: { name, namespace: "default" },
  data: { v: Buffer.from(v).toString("base64") },
});

function emptyStore<T>(items: Record<string, T> = {}): ObjectStore<T> {
  return { get: (name, ns) => items[`${ns ?? ""}/${name}`], list: () => Object.values(items) };
}

/** A live lookup that counts calls and can be slowed or broken. */
function live(mem: MemoryLookup, o: { delayMs?: number; fail?: boolean } = {}) {
  const calls: string[] = [];
  const wrap =
    <A extends unknown[], R>(name: string, fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      calls.push(`${name} ${a.join("/")}`);
      if (o.delayMs) await new Promise((r) => setTimeout(r, o.delayMs));
      if (o.fail) throw new Error("connection refused");
      return fn(...a);
    };
  const l: ClusterLookup = {
    pvc: wrap("pvc", (ns: string, n: string) => mem.pvc(ns, n)),
    pv: wrap("pv", (n: string) => mem.pv(n)),
    storageClass: wrap("sc", (n: string) => mem.storageClass(n)),
    secret: wrap("secret", (ns: string, n: string) => mem.secret(ns, n)),
    namespace: wrap("ns", (n: string) => mem.namespace(n)),
  };
  return { l, calls };
}

t.test("stores first, one live read per miss, shared by concurrent callers", async (t) => {
  const mem = new MemoryLookup([pvc("fresh")]);
  const { l, calls } = live(mem, { delayMs: 20 });
  const lookup = new CachedLookup({
    stores: {
      pvc: emptyStore({ "default/cached": pvc("cached") as never }),
      pv: emptyStore(),
      storageClass: emptyStore(),
    },
    live: l,
    secretRefreshMs: 1000,
    secretEvictMs: 5000,
  });
  t.equal((await lookup.pvc("default", "cached"))?.metadata?.name, "cached");
  t.same(calls, [], "hit: no live read");
  const all = await Promise.all(Array.from({ length: 10 }, () => lookup.pvc("default", "fresh")));
  t.ok(all.every((p) => p?.metadata?.name === "fresh"));
  t.same(calls, ["pvc default/fresh"], "ten concurrent misses, one live read");
  t.equal(await lookup.pvc("default", "none"), undefined, "not found is undefined");
  const s = lookup.stats();
  t.equal(s.hits.pvc, 1);
  t.equal(s.misses.pvc, 11);
  t.equal(s.sizes.pvc, 1);
});

t.test(
  "Secrets: read through, served from memory, refreshed in the background, evicted when unused",
  async (t) => {
    let now = 0;
    const mem = new MemoryLookup([secret("s", "one")]);
    const { l, calls } = live(mem);
    const lookup = new CachedLookup({
      stores: { pvc: emptyStore(), pv: emptyStore(), storageClass: emptyStore() },
      live: l,
      secretRefreshMs: 1000,
      secretEvictMs: 10_000,
      now: () => now,
    });
    const v = async () => Buffer.from((await lookup.secret("default", "s"))!.data!.v!, "base64").toString();
    t.equal(await v(), "one");
    t.equal(await v(), "one");
    t.equal(calls.length, 1, "second read from memory");
    mem.add(secret("s", "two"));
    now = 1500;
    t.equal(await v(), "one", "stale copy served at once while refreshing");
    await new Promise((r) => setImmediate(r));
    t.equal(calls.length, 2, "one background refresh");
    t.equal(await v(), "two", "refreshed copy");
    t.equal(lookup.stats().sizes.secret, 1);
    now = 30_000;
    await lookup.secret("default", "other");
    t.equal(lookup.stats().sizes.secret, 0, "unused entries evicted");
  },
);

t.test("a failed background refresh keeps the last good copy", async (t) => {
  let now = 0;
  const mem = new MemoryLookup([secret("s", "one")]);
  let fail = false;
  const l: ClusterLookup = {
    ...mem,
    pvc: (a, b) => mem.pvc(a, b),
    pv: (a) => mem.pv(a),
    storageClass: (a) => mem.storageClass(a),
    namespace: (a) => mem.namespace(a),
    secret: async (a, b) => {
      if (fail) throw new Error("apiserver down");
      return mem.secret(a, b);
    },
  };
  const lookup = new CachedLookup({
    stores: { pvc: emptyStore(), pv: emptyStore(), storageClass: emptyStore() },
    live: l,
    secretRefreshMs: 100,
    secretEvictMs: 100_000,
    now: () => now,
  });
  t.ok(await lookup.secret("default", "s"));
  fail = true;
  now = 200;
  t.ok(await lookup.secret("default", "s"), "served while the refresh fails");
  await new Promise((r) => setImmediate(r));
  t.ok(await lookup.secret("default", "s"), "still served");
  t.equal(lookup.stats().errors.secret, 1);
});

t.test("live read errors become LookupError; deadlines bound them", async (t) => {
  const { l } = live(new MemoryLookup(), { fail: true });
  const lookup = new CachedLookup({
    stores: { pvc: emptyStore(), pv: emptyStore(), storageClass: emptyStore() },
    live: l,
    secretRefreshMs: 1000,
    secretEvictMs: 1000,
  });
  await t.rejects(lookup.pv("x"), LookupError);
  await t.rejects(lookup.secret("default", "x"), LookupError);
  const t0 = performance.now();
  await t.rejects(withDeadline(new Promise(() => {}), 50, "get thing"), {
    name: "LookupError",
    message: /get thing: no answer within 50 ms/,
  });
  t.ok(performance.now() - t0 < 500);
  t.equal(await withDeadline(Promise.resolve(3), 50, "x"), 3);
});

t.test("MemoryLookup keeps objects by kind and namespace", async (t) => {
  const m = new MemoryLookup();
  t.equal(m.add({ kind: "ConfigMap", metadata: { name: "x" } }), false, "other kinds are ignored");
  t.equal(m.add({ kind: "Secret", metadata: { name: "s" } }), true);
  t.ok(await m.secret("default", "s"), "namespace defaults to default");
  t.equal(await m.secret("other", "s"), undefined);
  t.equal(m.reads.secret, 2);
});

const req = {
  uid: "u",
  operation: "CREATE",
  kind: { group: "", version: "v1", kind: "Pod" },
  resource: { group: "", version: "v1", resource: "pods" },
} as AdmissionRequest;

t.test("guard: budget, lookup failures and exceptions follow the failure policy", async (t) => {
  const seen: string[] = [];
  const onFailure = (k: string) => seen.push(k);
  const slow = guard(() => new Promise(() => {}), { budgetMs: 30, failurePolicy: "Fail", onFailure });
  t.match(await slow(req), { allowed: false, code: 500, message: /no decision within 30 ms/ });
  const lookupFails = guard(
    async () => {
      throw new LookupError("get PVC default/x: no answer within 10 ms");
    },
    { budgetMs: 1000, failurePolicy: "Ignore", onFailure },
  );
  t.match(await lookupFails(req), {
    allowed: true,
    warnings: [/cluster lookup failed: get PVC default\/x.*failurePolicy Ignore/],
  });
  const throws = guard(
    async () => {
      throw new TypeError("x is undefined");
    },
    { budgetMs: 1000, failurePolicy: "Fail", onFailure },
  );
  t.match(await throws(req), { allowed: false, code: 500, message: /internal error: x is undefined/ });
  const fine = guard(async () => ({ allowed: true as const }), {
    budgetMs: 1000,
    failurePolicy: "Fail",
    onFailure,
  });
  t.same(await fine(req), { allowed: true });
  t.same(seen, ["budget", "lookup", "internal"]);
  // A handler's synchronous fast path is carried over, and guarded too.
  const withQuick = Object.assign(async () => ({ allowed: true as const }), {
    quick: (r: AdmissionRequest) => {
      if (r.uid === "boom") throw new Error("bad input");
      return r.uid === "fast" ? { allowed: true as const } : undefined;
    },
  });
  const g = guard(withQuick, { budgetMs: 1000, failurePolicy: "Ignore", onFailure });
  t.same(g.quick?.({ ...req, uid: "fast" }), { allowed: true });
  t.equal(g.quick?.(req), undefined);
  t.match(g.quick?.({ ...req, uid: "boom" }), { allowed: true, warnings: [/internal error: bad input/] });
});
