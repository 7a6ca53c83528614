// The object store behind the API server stand-in: one global resourceVersion sequence (as etcd's
// revision), an event history for watches (older revisions answer 410 Expired), optimistic
// concurrency, finalizers, graceful pod deletion and owner-reference garbage collection.
import { randomUUID } from "node:crypto";
import fastJsonPatch from "fast-json-patch";
import { apiVersionOf, type ResourceType, resourceTypes, storeKeyOf } from "./resources.ts";
import { type FieldRequirement, type LabelRequirement, matchFields, matchLabels } from "./selectors.ts";

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are schemaless JSON here.
export type KObj = Record<string, any>;

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

/** An API error, rendered as a `kind: Status` object with this HTTP code. */
export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: KObj | undefined;
  constructor(code: number, reason: string, message: string, details?: KObj) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }
  toStatus(): KObj {
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

const groupOf = (t: ResourceType) => (t.group ? `${t.plural}.${t.group}` : t.plural);

export const notFound = (t: ResourceType, name: string) =>
  new ApiError(404, "NotFound", `${groupOf(t)} "${name}" not found`, {
    name,
    group: t.group,
    kind: t.plural,
  });
export const conflict = (t: ResourceType, name: string, why: string) =>
  new ApiError(409, "Conflict", `Operation cannot be fulfilled on ${groupOf(t)} "${name}": ${why}`, {
    name,
    group: t.group,
    kind: t.plural,
  });
export const invalid = (t: ResourceType, name: string, causes: string[]) =>
  new ApiError(422, "Invalid", `${t.kind} "${name}" is invalid: ${causes.join(", ")}`, {
    name,
    group: t.group,
    kind: t.kind,
    causes: causes.map((c) => ({ message: c })),
  });
export const badRequest = (message: string) => new ApiError(400, "BadRequest", message);

interface HistoryEntry {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  key: string;
  /** Object before the change (for selector transitions), undefined for ADDED. */
  old: KObj | undefined;
  obj: KObj;
}

export interface WatchFilter {
  namespace?: string | undefined;
  name?: string | undefined;
  labels: LabelRequirement[];
  fields: FieldRequirement[];
}

export interface Watcher {
  type: ResourceType;
  filter: WatchFilter;
  send(type: WatchEventType, obj: KObj): void;
}

export interface DeleteOptions {
  gracePeriodSeconds?: number | undefined;
  propagationPolicy?: string | undefined;
  preconditions?: { uid?: string; resourceVersion?: string } | undefined;
}

const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const labelValueRe = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const qualifiedNameRe = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
/** metadata.annotations total size limit (apimachinery TotalAnnotationSizeLimitB). */
export const annotationSizeLimit = 256 * 1024;
const generateNameAlphabet = "bcdfghjklmnpqrstvwxz2456789";

const clone = <T>(o: T): T => structuredClone(o);
const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

export function matches(t: ResourceType, filter: WatchFilter, obj: KObj): boolean {
  const md = obj.metadata ?? {};
  if (t.namespaced && filter.namespace && md.namespace !== filter.namespace) return false;
  if (filter.name && md.name !== filter.name) return false;
  return matchLabels(filter.labels, md.labels) && matchFields(filter.fields, obj);
}

export interface StoreOptions {
  /** How many changes are kept for watches that resume from a resourceVersion (older: 410 Expired). */
  historySize?: number;
}

export class Store {
  private rv = 1000;
  private readonly objects = new Map<string, Map<string, KObj>>();
  private history: HistoryEntry[] = [];
  private readonly historySize: number;
  /** Lowest revision a watch may resume from; anything older answers 410. */
  private compactedRv = 1000;
  private readonly watchers = new Set<Watcher>();

  constructor(opts: StoreOptions = {}) {
    this.historySize = opts.historySize ?? 5000;
    for (const t of resourceTypes)
      if (!this.objects.has(storeKeyOf(t))) this.objects.set(storeKeyOf(t), new Map());
    for (const ns of ["default", "kube-system", "kube-public", "kube-node-lease"])
      this.create(this.type("", "namespaces"), undefined, { metadata: { name: ns } });
  }

  type(group: string, plural: string): ResourceType {
    const t = resourceTypes.find((r) => r.group === group && r.plural === plural);
    if (!t) throw new Error(`unknown resource ${group}/${plural}`);
    return t;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  /** Drops the whole watch history: every watch resuming from an older revision gets 410 Expired. */
  compact(): void {
    this.history = [];
    this.compactedRv = this.rv;
  }

  private bucket(t: ResourceType): Map<string, KObj> {
    return this.objects.get(storeKeyOf(t))!;
  }

  private key(t: ResourceType, ns: string | undefined, name: string): string {
    return t.namespaced ? `${ns}/${name}` : name;
  }

  get(t: ResourceType, ns: string | undefined, name: string): KObj {
    const o = this.bucket(t).get(this.key(t, ns, name));
    if (!o) throw notFound(t, name);
    return clone(o);
  }

  tryGet(t: ResourceType, ns: string | undefined, name: string): KObj | undefined {
    const o = this.bucket(t).get(this.key(t, ns, name));
    return o ? clone(o) : undefined;
  }

  list(t: ResourceType, filter: WatchFilter): { items: KObj[]; resourceVersion: string } {
    const items: KObj[] = [];
    for (const o of this.bucket(t).values()) if (matches(t, filter, o)) items.push(clone(o));
    items.sort((a, b) =>
      `${a.metadata.namespace ?? ""}/${a.metadata.name}`.localeCompare(
        `${b.metadata.namespace ?? ""}/${b.metadata.name}`,
      ),
    );
    return { items, resourceVersion: String(this.rv) };
  }

  private validate(t: ResourceType, obj: KObj): void {
    const md = obj.metadata;
    const name: string = md.name;
    const causes: string[] = [];
    const nameRe = t.plural === "namespaces" ? dns1123Label : dns1123Subdomain;
    if (!nameRe.test(name) || name.length > (t.plural === "namespaces" ? 63 : 253))
      causes.push(
        `metadata.name: Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`,
      );
    for (const [k, v] of Object.entries((md.labels ?? {}) as Record<string, unknown>)) {
      const bare = k.includes("/") ? k.slice(k.indexOf("/") + 1) : k;
      if (!qualifiedNameRe.test(bare) || bare.length > 63)
        causes.push(`metadata.labels: Invalid value: "${k}": name part must be a valid qualified name`);
      if (typeof v !== "string" || v.length > 63 || !labelValueRe.test(v))
        causes.push(
          `metadata.labels: Invalid value: "${String(v)}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
        );
    }
    let annSize = 0;
    for (const [k, v] of Object.entries((md.annotations ?? {}) as Record<string, unknown>)) {
      if (typeof v !== "string") causes.push(`metadata.annotations: Invalid value: ${k} must be a string`);
      annSize += k.length + String(v).length;
    }
    if (annSize > annotationSizeLimit)
      causes.push(`metadata.annotations: Too long: must have at most ${annotationSizeLimit} bytes`);
    if (t.plural === "pods") {
      const containers = obj.spec?.containers;
      if (!Array.isArray(containers) || containers.length === 0)
        causes.push("spec.containers: Required value");
      else
        for (const c of [...containers, ...(obj.spec.initContainers ?? [])])
          if (!c.name || !dns1123Label.test(c.name))
            causes.push(`spec.containers.name: Invalid value: "${c.name}"`);
    }
    if (t.plural === "jobs") {
      const rp = obj.spec?.template?.spec?.restartPolicy;
      if (rp !== "Never" && rp !== "OnFailure")
        causes.push(`spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"`);
    }
    if (causes.length) throw invalid(t, name, causes);
  }

  private applyDefaults(t: ResourceType, obj: KObj): void {
    if (t.plural === "pods") {
      obj.spec.restartPolicy ??= "Always";
      obj.spec.terminationGracePeriodSeconds ??= 30;
      obj.spec.dnsPolicy ??= "ClusterFirst";
      obj.spec.schedulerName ??= "default-scheduler";
      obj.spec.serviceAccountName ??= "default";
      for (const c of obj.spec.containers) c.terminationMessagePolicy ??= "File";
      obj.status = { phase: "Pending", qosClass: "Burstable" };
    }
    if (t.plural === "jobs") {
      // The job strategy's generateSelector (unless manualSelector): the selector and the template's
      // labels name this Job by uid and by name (batch.kubernetes.io/ and the legacy bare keys).
      if (!obj.spec.manualSelector) {
        const uid = obj.metadata.uid;
        obj.spec.selector = { matchLabels: { "batch.kubernetes.io/controller-uid": uid } };
        obj.spec.template.metadata ??= {};
        obj.spec.template.metadata.labels = {
          ...obj.spec.template.metadata.labels,
          "batch.kubernetes.io/controller-uid": uid,
          "batch.kubernetes.io/job-name": obj.metadata.name,
          "controller-uid": uid,
          "job-name": obj.metadata.name,
        };
      }
      obj.spec.completionMode ??= "NonIndexed";
      obj.spec.suspend ??= false;
      obj.spec.podReplacementPolicy ??= "TerminatingOrFailed";
      obj.spec.template.spec.terminationGracePeriodSeconds ??= 30;
      obj.spec.template.spec.dnsPolicy ??= "ClusterFirst";
      obj.spec.template.spec.schedulerName ??= "default-scheduler";
      obj.spec.backoffLimit ??= 6;
      obj.spec.completions ??= 1;
      obj.spec.parallelism ??= 1;
      obj.status = {};
    }
    if (t.plural === "namespaces") obj.status = { phase: "Active" };
    if (t.plural === "secrets") {
      obj.type ??= "Opaque";
      if (obj.stringData) {
        obj.data ??= {};
        for (const [k, v] of Object.entries(obj.stringData as Record<string, string>))
          obj.data[k] = Buffer.from(v).toString("base64");
        delete obj.stringData;
      }
    }
  }

  create(t: ResourceType, ns: string | undefined, body: KObj): KObj {
    const obj = clone(body);
    obj.metadata ??= {};
    const md = obj.metadata;
    if (t.namespaced) {
      if (md.namespace && md.namespace !== ns)
        throw badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      md.namespace = ns;
      if (!this.bucket(this.type("", "namespaces")).has(ns!))
        throw new ApiError(404, "NotFound", `namespaces "${ns}" not found`, { name: ns, kind: "namespaces" });
      const nsObj = this.bucket(this.type("", "namespaces")).get(ns!)!;
      if (nsObj.metadata.deletionTimestamp)
        throw new ApiError(
          403,
          "Forbidden",
          `${t.plural} "${md.name ?? md.generateName}" is forbidden: unable to create new content in namespace ${ns} because it is being terminated`,
        );
    } else delete md.namespace;
    if (!md.name) {
      if (!md.generateName)
        throw invalid(t, "", ["metadata.name: Required value: name or generateName is required"]);
      let suffix = "";
      for (let i = 0; i < 5; i++)
        suffix += generateNameAlphabet[Math.floor(Math.random() * generateNameAlphabet.length)];
      md.name = `${md.generateName}${suffix}`;
    }
    obj.apiVersion = apiVersionOf(t);
    obj.kind = t.kind;
    this.validate(t, obj);
    const key = this.key(t, ns, md.name);
    if (this.bucket(t).has(key))
      throw new ApiError(409, "AlreadyExists", `${groupOf(t)} "${md.name}" already exists`, {
        name: md.name,
        group: t.group,
        kind: t.plural,
      });
    md.uid = randomUUID();
    md.creationTimestamp = now();
    md.generation = 1;
    delete md.deletionTimestamp;
    delete md.deletionGracePeriodSeconds;
    this.applyDefaults(t, obj);
    return this.commit(t, key, "ADDED", undefined, obj);
  }

  /** PUT. `subresource` "status" replaces only the status; the main resource keeps the stored status. */
  update(t: ResourceType, ns: string | undefined, name: string, body: KObj, subresource?: string): KObj {
    const key = this.key(t, ns, name);
    const old = this.bucket(t).get(key);
    if (!old) throw notFound(t, name);
    const obj = clone(body);
    obj.metadata ??= {};
    if (obj.metadata.name && obj.metadata.name !== name)
      throw badRequest(
        `the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`,
      );
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== "" && rv !== old.metadata.resourceVersion)
      throw conflict(
        t,
        name,
        "the object has been modified; please apply your changes to the latest version and try again",
      );
    let next: KObj;
    if (subresource === "status") {
      next = clone(old);
      next.status = obj.status;
    } else {
      next = obj;
      next.apiVersion = old.apiVersion;
      next.kind = old.kind;
      const md = next.metadata;
      for (const f of [
        "uid",
        "creationTimestamp",
        "namespace",
        "name",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
      ]) {
        if (old.metadata[f] === undefined) delete md[f];
        else md[f] = old.metadata[f];
      }
      if (t.status) next.status = clone(old.status);
      if (old.metadata.deletionTimestamp) {
        const before = new Set<string>(old.metadata.finalizers ?? []);
        const added = ((md.finalizers ?? []) as string[]).filter((f) => !before.has(f));
        if (added.length)
          throw invalid(t, name, [
            `metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}`,
          ]);
      }
      if (t.plural === "pods") {
        const strip = (s: KObj) => {
          const c = clone(s);
          for (const x of [...(c.containers ?? []), ...(c.initContainers ?? [])]) delete x.image;
          delete c.activeDeadlineSeconds;
          delete c.tolerations;
          return JSON.stringify(c);
        };
        if (strip(old.spec) !== strip(next.spec ?? {}))
          throw invalid(t, name, [
            "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations)",
          ]);
      }
      md.generation =
        JSON.stringify(old.spec) === JSON.stringify(next.spec)
          ? old.metadata.generation
          : (old.metadata.generation ?? 1) + 1;
      this.validate(t, next);
    }
    if (t.plural === "secrets" && next.stringData) this.applyDefaults(t, next);
    // A write that changes nothing is not a new revision (as in a real API server).
    const same =
      JSON.stringify({ ...next, metadata: { ...next.metadata, resourceVersion: undefined } }) ===
      JSON.stringify({ ...old, metadata: { ...old.metadata, resourceVersion: undefined } });
    if (same) return clone(old);
    if (
      next.metadata.deletionTimestamp &&
      (next.metadata.finalizers ?? []).length === 0 &&
      !(next.metadata.deletionGracePeriodSeconds > 0)
    ) {
      return this.remove(t, key, next);
    }
    return this.commit(t, key, "MODIFIED", old, next);
  }

  /** PATCH: merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge treated as merge. */
  patch(
    t: ResourceType,
    ns: string | undefined,
    name: string,
    contentType: string,
    patch: unknown,
    subresource?: string,
  ): KObj {
    const old = this.get(t, ns, name);
    let next: KObj;
    if (contentType.startsWith("application/json-patch+json")) {
      if (!Array.isArray(patch)) throw badRequest("json patch must be an array of operations");
      try {
        next = fastJsonPatch.applyPatch(
          clone(old),
          patch as fastJsonPatch.Operation[],
          true,
          false,
        ).newDocument;
      } catch (e) {
        const msg = (e as Error).message.split("\n")[0];
        throw new ApiError(
          422,
          "Invalid",
          `the server rejected our request due to an error in our request: ${msg}`,
        );
      }
    } else if (
      contentType.startsWith("application/merge-patch+json") ||
      contentType.startsWith("application/strategic-merge-patch+json")
    ) {
      if (patch === null || typeof patch !== "object" || Array.isArray(patch))
        throw badRequest("merge patch must be an object");
      next = mergePatch(old, patch) as KObj;
    } else
      throw new ApiError(
        415,
        "UnsupportedMediaType",
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`,
      );
    // A resourceVersion in the patched object is a precondition; without one the patch applies to the latest.
    const wanted = next.metadata?.resourceVersion;
    if (wanted !== old.metadata.resourceVersion && wanted !== undefined) {
      throw conflict(
        t,
        name,
        "the object has been modified; please apply your changes to the latest version and try again",
      );
    }
    next.metadata ??= {};
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    return this.update(t, ns, name, next, subresource);
  }

  delete(t: ResourceType, ns: string | undefined, name: string, opts: DeleteOptions = {}): KObj {
    const key = this.key(t, ns, name);
    const old = this.bucket(t).get(key);
    if (!old) throw notFound(t, name);
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== old.metadata.uid)
      throw conflict(
        t,
        name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`,
      );
    if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion)
      throw conflict(
        t,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`,
      );
    const next = clone(old);
    const md = next.metadata;
    let grace = 0;
    if (t.plural === "pods") {
      grace = opts.gracePeriodSeconds ?? old.spec.terminationGracePeriodSeconds ?? 30;
      // Unscheduled and finished pods have nobody to wait for (pod strategy CheckGracefulDeleteStrategy).
      if (!old.spec.nodeName || old.status?.phase === "Succeeded" || old.status?.phase === "Failed")
        grace = 0;
    }
    if (old.metadata.deletionTimestamp) {
      // Already terminating: a shorter grace period may cut it short; otherwise nothing changes.
      const cur = old.metadata.deletionGracePeriodSeconds ?? 0;
      if (grace >= cur) return clone(old);
    }
    if (t.plural === "namespaces") {
      md.deletionTimestamp ??= now();
      next.status = { phase: "Terminating" };
      const out = this.commit(t, key, "MODIFIED", old, next);
      setImmediate(() => this.finishNamespace(name));
      return out;
    }
    if (grace > 0 || (md.finalizers ?? []).length > 0) {
      md.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d+Z$/, "Z");
      md.deletionGracePeriodSeconds = grace;
      if (opts.propagationPolicy === "Orphan") this.orphanDependents(old.metadata.uid);
      return this.commit(t, key, "MODIFIED", old, next);
    }
    if (opts.propagationPolicy === "Orphan") this.orphanDependents(old.metadata.uid);
    md.deletionTimestamp ??= now();
    md.deletionGracePeriodSeconds = 0;
    return this.remove(t, key, next);
  }

  private finishNamespace(name: string): void {
    for (const t of resourceTypes) {
      if (!t.namespaced) continue;
      for (const o of [...this.bucket(t).values()])
        if (o.metadata.namespace === name)
          try {
            this.delete(t, name, o.metadata.name, { gracePeriodSeconds: 0 });
          } catch {}
    }
    const nsT = this.type("", "namespaces");
    const ns = this.bucket(nsT).get(name);
    if (ns) this.remove(nsT, name, clone(ns));
  }

  private orphanDependents(uid: string): void {
    for (const t of resourceTypes)
      for (const [key, o] of this.bucket(t)) {
        const refs = (o.metadata.ownerReferences ?? []) as KObj[];
        if (!refs.some((r) => r.uid === uid)) continue;
        const next = clone(o);
        next.metadata.ownerReferences = refs.filter((r) => r.uid !== uid);
        if (next.metadata.ownerReferences.length === 0) delete next.metadata.ownerReferences;
        this.commit(t, key, "MODIFIED", o, next);
      }
  }

  private remove(t: ResourceType, key: string, last: KObj): KObj {
    const old = this.bucket(t).get(key)!;
    this.bucket(t).delete(key);
    const out = this.commit(t, key, "DELETED", old, last, true);
    // Garbage collector: dependents whose every owner is gone are deleted in the background.
    const uid = old.metadata.uid;
    setImmediate(() => this.collectDependents(uid));
    return out;
  }

  private collectIfOrphaned(t: ResourceType, key: string, uid: string): void {
    const o = this.bucket(t).get(key);
    if (!o || o.metadata.uid !== uid) return;
    const refs = (o.metadata.ownerReferences ?? []) as KObj[];
    if (refs.length === 0) return;
    const live = new Set<string>();
    for (const rt of resourceTypes) for (const x of this.bucket(rt).values()) live.add(x.metadata.uid);
    if (refs.some((r) => live.has(r.uid))) return;
    try {
      this.delete(t, o.metadata.namespace, o.metadata.name, { propagationPolicy: "Background" });
    } catch {}
  }

  private collectDependents(uid: string): void {
    const live = new Set<string>();
    for (const t of resourceTypes) for (const o of this.bucket(t).values()) live.add(o.metadata.uid);
    for (const t of resourceTypes)
      for (const o of [...this.bucket(t).values()]) {
        const refs = (o.metadata.ownerReferences ?? []) as KObj[];
        if (!refs.some((r) => r.uid === uid)) continue;
        if (refs.some((r) => live.has(r.uid))) continue;
        try {
          this.delete(t, o.metadata.namespace, o.metadata.name, { propagationPolicy: "Background" });
        } catch {}
      }
  }

  private commit(
    t: ResourceType,
    key: string,
    type: HistoryEntry["type"],
    old: KObj | undefined,
    obj: KObj,
    removed = false,
  ): KObj {
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    if (!removed) this.bucket(t).set(key, obj);
    // As the real garbage collector: an object whose owners (by uid) are all absent, e.g. one made with
    // the uid of an earlier owner of the same name, is deleted, not only when an owner goes later.
    if (!removed && (obj.metadata.ownerReferences ?? []).length > 0) {
      const uid = obj.metadata.uid;
      setImmediate(() => this.collectIfOrphaned(t, key, uid));
    }
    const entry: HistoryEntry = { rv: this.rv, type, key: `${storeKeyOf(t)}|${key}`, old, obj };
    this.history.push(entry);
    if (this.history.length > this.historySize) {
      const dropped = this.history.splice(0, this.history.length - this.historySize);
      this.compactedRv = dropped[dropped.length - 1]!.rv;
    }
    for (const w of this.watchers) if (storeKeyOf(w.type) === storeKeyOf(t)) deliver(w, entry);
    return clone(obj);
  }

  /**
   * Starts a watch. Without a resourceVersion (or "0") the current state is sent as ADDED first;
   * with one, every change after it is replayed, or 410 Expired if the history no longer holds it.
   */
  watch(w: Watcher, resourceVersion: string | undefined): { stop: () => void; expired: boolean } {
    if (!resourceVersion || resourceVersion === "0") {
      for (const o of this.list(w.type, w.filter).items) w.send("ADDED", o);
    } else {
      const from = Number(resourceVersion);
      if (!Number.isInteger(from)) throw badRequest(`invalid resource version "${resourceVersion}"`);
      if (from < this.compactedRv) {
        w.send(
          "ERROR",
          new ApiError(410, "Expired", `too old resource version: ${from} (${this.compactedRv})`).toStatus(),
        );
        return { stop: () => {}, expired: true };
      }
      for (const e of this.history)
        if (e.rv > from && e.key.startsWith(`${storeKeyOf(w.type)}|`)) deliver(w, e);
    }
    this.watchers.add(w);
    return { stop: () => this.watchers.delete(w), expired: false };
  }

  /**
   * The pods/binding subresource (registry/core/pod/storage BindingREST.assignPod): sets spec.nodeName
   * of an unbound pod, the one spec change allowed, and the PodScheduled condition True.
   */
  bind(ns: string, name: string, nodeName: string): KObj {
    const t = this.type("", "pods");
    const key = this.key(t, ns, name);
    const old = this.bucket(t).get(key);
    if (!old) throw notFound(t, name);
    if (old.metadata.deletionTimestamp)
      throw conflict(t, name, "pod is being deleted, cannot be assigned to a host");
    if (old.spec.nodeName)
      throw conflict(t, name, `pod ${name} is already assigned to node "${old.spec.nodeName}"`);
    const next = clone(old);
    next.spec.nodeName = nodeName;
    next.status ??= {};
    next.status.conditions = [
      ...(next.status.conditions ?? []).filter((c: KObj) => c.type !== "PodScheduled"),
      { type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: now() },
    ];
    return this.commit(t, key, "MODIFIED", old, next);
  }

  /** Every object of every type (for tests and debugging). */
  dump(): KObj[] {
    const out: KObj[] = [];
    for (const b of this.objects.values()) for (const o of b.values()) out.push(clone(o));
    return out;
  }
}

/** Sends a change to a watcher, turning selector transitions into ADDED/DELETED as a real watch does. */
function deliver(w: Watcher, e: HistoryEntry): void {
  const now = e.type === "DELETED" ? false : matches(w.type, w.filter, e.obj);
  const before = e.old ? matches(w.type, w.filter, e.old) : false;
  if (e.type === "DELETED") {
    if (before || matches(w.type, w.filter, e.obj)) w.send("DELETED", clone(e.obj));
    return;
  }
  if (now && before) w.send("MODIFIED", clone(e.obj));
  else if (now) w.send("ADDED", clone(e.obj));
  else if (before) w.send("DELETED", clone(e.obj));
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return clone(patch);
  const out: Record<string, unknown> =
    target !== null && typeof target === "object" && !Array.isArray(target)
      ? clone(target as Record<string, unknown>)
      : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
