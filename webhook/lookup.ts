// Where the webhook reads PVCs, PVs, StorageClasses, Secrets and Namespaces from. Handlers see one
// small interface; behind it sit an in-memory map (tests, offline `inject`), or caches fed by
// informers with a live-read fallback (webhook/kube.ts), so a review makes no API call in steady state.
import type {
  V1Namespace,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Secret,
  V1StorageClass,
} from "@kubernetes/client-node";

export type { V1Namespace, V1PersistentVolume, V1PersistentVolumeClaim, V1Secret, V1StorageClass };

export type LookupKind = "pvc" | "pv" | "storageClass" | "secret" | "namespace";

/** Each read answers the object, undefined when it does not exist, or throws LookupError. */
export interface ClusterLookup {
  pvc(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined>;
  pv(name: string): Promise<V1PersistentVolume | undefined>;
  storageClass(name: string): Promise<V1StorageClass | undefined>;
  secret(namespace: string, name: string): Promise<V1Secret | undefined>;
  namespace(name: string): Promise<V1Namespace | undefined>;
}

/** The lookup could not answer (timeout, API error): the caller applies the failure policy. */
export class LookupError extends Error {
  override name = "LookupError";
}

/** A synchronous cache of one resource, as an informer's store offers it. */
export interface ObjectStore<T> {
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): ReadonlyArray<T>;
  /**
   * True while the store follows the API server (listed, and its watch not failing). Only such a
   * store lets CachedLookup remember a "not found": the object's creation will reach it as an event.
   * A store without it never does (every miss is a live read).
   */
  fresh?(): boolean;
}

interface Named {
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

const kindOf: Record<string, LookupKind> = {
  PersistentVolumeClaim: "pvc",
  PersistentVolume: "pv",
  StorageClass: "storageClass",
  Secret: "secret",
  Namespace: "namespace",
};

/** Plain maps: tests, offline injection, and the base of CachedLookup's stores in tests. */
export class MemoryLookup implements ClusterLookup {
  readonly maps: Record<LookupKind, Map<string, unknown>> = {
    pvc: new Map(),
    pv: new Map(),
    storageClass: new Map(),
    secret: new Map(),
    namespace: new Map(),
  };
  /** Number of reads per kind (tests check that a review does not read what it need not). */
  readonly reads: Record<LookupKind, number> = { pvc: 0, pv: 0, storageClass: 0, secret: 0, namespace: 0 };

  constructor(objects: Iterable<unknown> = []) {
    for (const o of objects) this.add(o);
  }

  /** Adds a PVC, PV, StorageClass, Secret or Namespace; returns false for any other kind. */
  add(obj: unknown): boolean {
    const o = obj as Named;
    const kind = kindOf[o?.kind ?? ""];
    const name = o?.metadata?.name;
    if (!kind || !name) return false;
    const ns = kind === "pvc" || kind === "secret" ? (o.metadata?.namespace ?? "default") : "";
    this.maps[kind].set(key(ns, name), obj);
    return true;
  }

  remove(kind: LookupKind, name: string, namespace = ""): void {
    this.maps[kind].delete(key(namespace, name));
  }

  private read<T>(kind: LookupKind, ns: string, name: string): Promise<T | undefined> {
    this.reads[kind]++;
    return Promise.resolve(this.maps[kind].get(key(ns, name)) as T | undefined);
  }

  pvc(namespace: string, name: string) {
    return this.read<V1PersistentVolumeClaim>("pvc", namespace, name);
  }
  pv(name: string) {
    return this.read<V1PersistentVolume>("pv", "", name);
  }
  storageClass(name: string) {
    return this.read<V1StorageClass>("storageClass", "", name);
  }
  secret(namespace: string, name: string) {
    return this.read<V1Secret>("secret", namespace, name);
  }
  namespace(name: string) {
    return this.read<V1Namespace>("namespace", "", name);
  }
}

const key = (ns: string, name: string) => `${ns}/${name}`;

export interface LookupStats {
  /** Objects held per kind. */
  sizes: Record<LookupKind, number>;
  hits: Record<LookupKind, number>;
  misses: Record<LookupKind, number>;
  errors: Record<LookupKind, number>;
  /** Misses answered "not found" from memory (no live read), and the names remembered as absent now. */
  absentHits: Record<LookupKind, number>;
  absent: Record<LookupKind, number>;
}

const zero = (): Record<LookupKind, number> => ({ pvc: 0, pv: 0, storageClass: 0, secret: 0, namespace: 0 });

export interface CachedLookupOptions {
  /** Informer stores; the Secret store is this class's own read-through cache (see below). */
  stores: {
    pvc: ObjectStore<V1PersistentVolumeClaim>;
    pv: ObjectStore<V1PersistentVolume>;
    storageClass: ObjectStore<V1StorageClass>;
    namespace?: ObjectStore<V1Namespace>;
  };
  /** Live reads, each already bounded by a deadline (LookupError past it). */
  live: ClusterLookup;
  /** Secrets older than this are refreshed in the background while the cached copy is served. */
  secretRefreshMs: number;
  /** Secrets unused for this long are dropped. */
  secretEvictMs: number;
  /**
   * Names that a live read found absent are remembered (negative cache) while their store is fresh,
   * until the informer sees them (observed), the store relists (relisted) or this long passed, a
   * safety net should an event be lost. Default 30 s.
   */
  absentTtlMs?: number;
  /** At most this many absent names are remembered (least recently used dropped). Default 4096. */
  absentMax?: number;
  now?: () => number;
}

interface SecretEntry {
  secret: V1Secret;
  fetchedAt: number;
  usedAt: number;
  refreshing: boolean;
}

/**
 * Informer stores first; a miss (an object created a moment ago, or a store not synced yet) costs one
 * live read. Concurrent misses of the same object share that read.
 *
 * A name the live read found absent is remembered while its store is fresh (a pod of a Deployment
 * whose claim is not created yet would otherwise cost one GET per claim per review, for every
 * replica and retry). That is safe because the store is always asked first: once the informer
 * delivers the object's ADDED event the store answers it, whatever is remembered; `observed` then
 * also drops the name. What is remembered is bounded (absentMax, least recently used first out) and
 * expires (absentTtlMs). A store that is not synced, or whose watch is failing, is not trusted to
 * deliver that event: its names are forgotten and every miss is a live read again, as without this.
 *
 * Secrets are not watched: an informer would hold every Secret of the cluster in this process and need
 * list/watch on all of them. Instead the Secrets that pods actually reference are kept in a
 * read-through cache, refreshed in the background (stale-while-revalidate), so steady-state reviews
 * make no API call and the webhook needs only `get` on Secrets.
 */
export class CachedLookup implements ClusterLookup {
  private readonly opts: CachedLookupOptions;
  private readonly now: () => number;
  private readonly secrets = new Map<string, SecretEntry>();
  private readonly inflight = new Map<string, Promise<unknown>>();
  private readonly counters = { hits: zero(), misses: zero(), errors: zero(), absentHits: zero() };
  /** "kind:ns/name" -> expiry; a Map keeps insertion order, so the first key is the least recently used. */
  private readonly absent = new Map<string, number>();
  private readonly absentCount = zero();
  private readonly absentTtlMs: number;
  private readonly absentMax: number;

  constructor(opts: CachedLookupOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.absentTtlMs = opts.absentTtlMs ?? 30_000;
    this.absentMax = Math.max(0, opts.absentMax ?? 4096);
  }

  /** The informer delivered this object (added or changed): it is no longer absent. */
  observed(kind: LookupKind, namespace: string | undefined, name: string | undefined): void {
    if (name === undefined || this.absent.size === 0) return;
    this.dropAbsent(`${kind}:${namespace ?? ""}/${name}`, kind);
  }

  /** The store was replaced by a new list (or cannot be trusted): forget every absent name of the kind. */
  relisted(kind: LookupKind): void {
    if (this.absentCount[kind] === 0) return;
    const prefix = `${kind}:`;
    for (const k of this.absent.keys()) if (k.startsWith(prefix)) this.absent.delete(k);
    this.absentCount[kind] = 0;
  }

  private dropAbsent(k: string, kind: LookupKind): void {
    if (this.absent.delete(k)) this.absentCount[kind]--;
  }

  private rememberAbsent(k: string, kind: LookupKind): void {
    if (this.absentMax === 0) return;
    this.dropAbsent(k, kind);
    while (this.absent.size >= this.absentMax) {
      const oldest = this.absent.keys().next().value as string;
      this.dropAbsent(oldest, oldest.slice(0, oldest.indexOf(":")) as LookupKind);
    }
    this.absent.set(k, this.now() + this.absentTtlMs);
    this.absentCount[kind]++;
  }

  /** True when `k` is remembered as absent and not expired (and marks it recently used). */
  private isAbsent(k: string, kind: LookupKind): boolean {
    const until = this.absent.get(k);
    if (until === undefined) return false;
    this.absent.delete(k);
    if (this.now() >= until) {
      this.absentCount[kind]--;
      return false;
    }
    this.absent.set(k, until);
    return true;
  }

  stats(): LookupStats {
    const s = this.opts.stores;
    return {
      sizes: {
        pvc: s.pvc.list().length,
        pv: s.pv.list().length,
        storageClass: s.storageClass.list().length,
        namespace: s.namespace?.list().length ?? 0,
        secret: this.secrets.size,
      },
      hits: { ...this.counters.hits },
      misses: { ...this.counters.misses },
      errors: { ...this.counters.errors },
      absentHits: { ...this.counters.absentHits },
      absent: { ...this.absentCount },
    };
  }

  private async cached<T>(
    kind: LookupKind,
    store: ObjectStore<T> | undefined,
    ns: string,
    name: string,
    live: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    const hit = store?.get(name, ns || undefined);
    if (hit !== undefined) {
      this.counters.hits[kind]++;
      return hit;
    }
    const k = `${kind}:${ns}/${name}`;
    const fresh = store?.fresh?.() === true;
    if (!fresh) this.relisted(kind);
    else if (this.isAbsent(k, kind)) {
      this.counters.absentHits[kind]++;
      return undefined;
    }
    this.counters.misses[kind]++;
    if (!fresh) return this.once(k, kind, live);
    return this.once(k, kind, async () => {
      const found = await live();
      // Not remembered when the store stopped following meanwhile, or already holds the object (a
      // creation that raced the read; its ADDED event came first).
      if (found === undefined && store?.fresh?.() === true && store.get(name, ns || undefined) === undefined)
        this.rememberAbsent(k, kind);
      return found;
    });
  }

  private once<T>(k: string, kind: LookupKind, fn: () => Promise<T>): Promise<T> {
    const running = this.inflight.get(k);
    if (running) return running as Promise<T>;
    const p = fn()
      .catch((err: unknown) => {
        this.counters.errors[kind]++;
        throw err instanceof LookupError ? err : new LookupError(String((err as Error)?.message ?? err));
      })
      .finally(() => this.inflight.delete(k));
    this.inflight.set(k, p);
    return p;
  }

  pvc(namespace: string, name: string) {
    return this.cached("pvc", this.opts.stores.pvc, namespace, name, () =>
      this.opts.live.pvc(namespace, name),
    );
  }
  pv(name: string) {
    return this.cached("pv", this.opts.stores.pv, "", name, () => this.opts.live.pv(name));
  }
  storageClass(name: string) {
    return this.cached("storageClass", this.opts.stores.storageClass, "", name, () =>
      this.opts.live.storageClass(name),
    );
  }
  namespace(name: string) {
    return this.cached("namespace", this.opts.stores.namespace, "", name, () =>
      this.opts.live.namespace(name),
    );
  }

  async secret(namespace: string, name: string): Promise<V1Secret | undefined> {
    const k = key(namespace, name);
    const now = this.now();
    this.evict(now);
    const e = this.secrets.get(k);
    if (e) {
      this.counters.hits.secret++;
      e.usedAt = now;
      if (!e.refreshing && now - e.fetchedAt >= this.opts.secretRefreshMs) {
        e.refreshing = true;
        this.fetchSecret(namespace, name).then(
          () => {},
          () => {
            // Keep serving the last good copy; the next use retries.
            e.refreshing = false;
          },
        );
      }
      return e.secret;
    }
    this.counters.misses.secret++;
    return this.fetchSecret(namespace, name);
  }

  private fetchSecret(namespace: string, name: string): Promise<V1Secret | undefined> {
    const k = key(namespace, name);
    return this.once(`secret:${k}`, "secret", async () => {
      const s = await this.opts.live.secret(namespace, name);
      const now = this.now();
      if (s === undefined) this.secrets.delete(k);
      else this.secrets.set(k, { secret: s, fetchedAt: now, usedAt: now, refreshing: false });
      return s;
    });
  }

  private lastEvict = 0;
  private evict(now: number): void {
    if (now - this.lastEvict < 1000) return;
    this.lastEvict = now;
    for (const [k, e] of this.secrets) if (now - e.usedAt >= this.opts.secretEvictMs) this.secrets.delete(k);
  }
}

/** Rejects with LookupError when `p` has not settled within `ms`. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LookupError(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
