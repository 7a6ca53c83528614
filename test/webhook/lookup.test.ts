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

/** A store like an informer's: objects by ns/name, and whether it follows the API server. */
function informerStore<T>() {
  const items = new Map<string, T>();
  const state = { fresh: true };
  const store: ObjectStore<T> = {
    get: (name, ns) => items.get(`${ns ?? ""}/${name}`),
    list: () => [...items.values()],
    fresh: () => state.fresh,
  };
  return { store, items, state };
}

t.test("a missing PVC is remembered as missing until the informer sees it", async (t) => {
  let now = 0;
  const mem = new MemoryLookup();
  const { l, calls } = live(mem, { delayMs: 10 });
  const pvcs = informerStore<ReturnType<typeof pvc>>();
  const lookup = new CachedLookup({
    stores: { pvc: pvcs.store as never, pv: emptyStore(), storageClass: emptyStore() },
    live: l,
    secretRefreshMs: 1000,
    secretEvictMs: 5000,
    absentTtlMs: 30_000,
    absentMax: 3,
    now: () => now,
  });
  const reads = () => calls.filter((c) => c === "pvc default/later").length;

  const first = await Promise.all(Array.from({ length: 5 }, () => lookup.pvc("default", "later")));
  t.ok(first.every((p) => p === undefined));
  t.equal(reads(), 1, "five concurrent reviews, one GET");
  for (let i = 0; i < 20; i++) t.equal(await lookup.pvc("default", "later"), undefined);
  t.equal(reads(), 1, "twenty more reviews, no GET: remembered as missing");
  t.match(lookup.stats(), { absentHits: { pvc: 20 }, absent: { pvc: 1 } });

  // Created: the informer's ADDED event puts it in the store and tells the lookup.
  mem.add(pvc("later"));
  pvcs.items.set("default/later", pvc("later"));
  lookup.observed("pvc", "default", "later");
  t.equal((await lookup.pvc("default", "later"))?.metadata?.name, "later", "seen at once, no TTL wait");
  t.equal(reads(), 1, "from the store");
  t.equal(lookup.stats().absent.pvc, 0, "forgotten as absent");

  // The store wins even if the event reaches the store before the lookup hears of it.
  await lookup.pvc("default", "racy");
  pvcs.items.set("default/racy", pvc("racy"));
  t.equal((await lookup.pvc("default", "racy"))?.metadata?.name, "racy", "store first, always");

  // Expiry: the safety net should an event be lost.
  await lookup.pvc("default", "gone");
  const g = calls.length;
  now += 29_999;
  await lookup.pvc("default", "gone");
  t.equal(calls.length, g, "within the TTL: no GET");
  now += 1;
  await lookup.pvc("default", "gone");
  t.equal(calls.length, g + 1, "after the TTL: one GET again");

  // Bounded: at most absentMax names, the least recently used dropped first.
  for (const n of ["a", "b", "c"]) await lookup.pvc("default", n);
  t.equal(lookup.stats().absent.pvc, 3, "capped at 3");
  const c = calls.length;
  await lookup.pvc("default", "gone");
  t.equal(calls.length, c + 1, "the oldest (gone) was dropped: read again");
  await lookup.pvc("default", "c");
  t.equal(calls.length, c + 1, "a recent one is still remembered");

  // A relist replaces the store: every remembered name is forgotten.
  lookup.relisted("pvc");
  t.equal(lookup.stats().absent.pvc, 0);
  await lookup.pvc("default", "c");
  t.equal(calls.length, c + 2, "after a relist: read again");
});

t.test("a store that is not synced or whose watch fails: every miss is a live read, as before", async (t) => {
  const mem = new MemoryLookup();
  const { l, calls } = live(mem);
  const pvcs = informerStore<ReturnType<typeof pvc>>();
  const lookup = new CachedLookup({
    stores: { pvc: pvcs.store as never, pv: emptyStore(), storageClass: emptyStore() },
    live: l,
    secretRefreshMs: 1000,
    secretEvictMs: 5000,
  });
  await lookup.pvc("default", "x");
  t.equal(lookup.stats().absent.pvc, 1);
  pvcs.state.fresh = false;
  await lookup.pvc("default", "x");
  await lookup.pvc("default", "x");
  t.equal(calls.length, 3, "one GET per lookup while the store is not fresh");
  t.equal(lookup.stats().absent.pvc, 0, "and nothing is remembered");
  pvcs.state.fresh = true;
  await lookup.pvc("default", "x");
  await lookup.pvc("default", "x");
  t.equal(calls.length, 4, "fresh again: remembered again");

  // A read that ends after the store stopped following is not remembered.
  const slow = live(mem, { delayMs: 30 });
  const lookup2 = new CachedLookup({
    stores: { pvc: pvcs.store as never, pv: emptyStore(), storageClass: emptyStore() },
    live: slow.l,
    secretRefreshMs: 1000,
    secretEvictMs: 5000,
  });
  const p = lookup2.pvc("default", "y");
  pvcs.state.fresh = false;
  await p;
  pvcs.state.fresh = true;
  await lookup2.pvc("default", "y");
  t.equal(slow.calls.length, 2, "not remembered: the watch failed during the read");

  // A store without fresh() (the client-node adapter's before, MemoryLookup-like): never remembered.
  const plain = new CachedLookup({
    stores: { pvc: emptyStore(), pv: emptyStore(), storageClass: emptyStore() },
    live: live(mem).l,
    secretRefreshMs: 1000,
    secretEvictMs: 5000,
  });
  await plain.pvc("default", "z");
  await plain.pvc("default", "z");
  t.equal(plain.stats().misses.pvc, 2);
  t.equal(plain.stats().absentHits.pvc, 0);
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
