// AdmissionReview decoding and answers, controller-runtime style: a handler takes a decoded request
// and returns allowed / denied(message) / patched(original, mutated). The patch is always the
// RFC 6902 diff computed by fast-json-patch, so handlers mutate plain copies and never write paths.

import type { Operation } from "fast-json-patch";
import fastJsonPatch from "fast-json-patch";

const { compare } = fastJsonPatch;

export const admissionApiVersion = "admission.k8s.io/v1";

export type AdmissionOperation = "CREATE" | "UPDATE" | "DELETE" | "CONNECT";

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

/** A Kubernetes object as decoded JSON; only the fields this package reads are typed. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    generateName?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: AdmissionOperation;
  object?: KubeObject | null;
  oldObject?: KubeObject | null;
  dryRun?: boolean;
  userInfo?: unknown;
  options?: unknown;
  [k: string]: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patchType?: "JSONPatch";
  /** base64 of the JSON Patch document. */
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: typeof admissionApiVersion;
  kind: "AdmissionReview";
  response: AdmissionResponse;
}

/** What a handler decides. */
export type AdmissionResult =
  | { allowed: true; patch?: Operation[]; warnings?: string[] }
  | { allowed: false; code: number; message: string; reason?: string; warnings?: string[] };

export type { Operation };

export const allowed = (warnings: string[] = []): AdmissionResult =>
  warnings.length ? { allowed: true, warnings } : { allowed: true };

/** Refusal because of what the user asked for (HTTP-style code 403, as controller-runtime's Denied). */
export const denied = (message: string, warnings: string[] = []): AdmissionResult => ({
  allowed: false,
  code: 403,
  reason: "Forbidden",
  message,
  ...(warnings.length ? { warnings } : {}),
});

/** Refusal because the request itself is unusable or the webhook failed (controller-runtime's Errored). */
export const errored = (code: number, message: string): AdmissionResult => ({
  allowed: false,
  code,
  reason: code >= 500 ? "InternalError" : "BadRequest",
  message,
});

/** Allowed with the diff between the original object and the mutated copy (none if they are equal). */
export function patched(original: unknown, mutated: unknown, warnings: string[] = []): AdmissionResult {
  const ops = compare(original as object, mutated as object);
  if (ops.length === 0) return allowed(warnings);
  return warnings.length ? { allowed: true, patch: ops, warnings } : { allowed: true, patch: ops };
}

/** Kubernetes shows warnings to kubectl users; it truncates long ones, so keep each under this. */
const maxWarningLength = 256;
const maxWarnings = 20;

export function toReviewResponse(uid: string, r: AdmissionResult): AdmissionReviewResponse {
  const response: AdmissionResponse = { uid, allowed: r.allowed };
  if (r.allowed) {
    if (r.patch && r.patch.length > 0) {
      response.patchType = "JSONPatch";
      response.patch = Buffer.from(JSON.stringify(r.patch)).toString("base64");
    }
  } else {
    response.status = { code: r.code, message: r.message, ...(r.reason ? { reason: r.reason } : {}) };
  }
  if (r.warnings && r.warnings.length > 0) {
    response.warnings = r.warnings
      .slice(0, maxWarnings)
      .map((w) => (w.length > maxWarningLength ? `${w.slice(0, maxWarningLength - 3)}...` : w));
  }
  return { apiVersion: admissionApiVersion, kind: "AdmissionReview", response };
}

/** A body that cannot be answered with an AdmissionReview (no usable uid): HTTP 400 with this message. */
export class BadReview extends Error {
  override name = "BadReview";
}

export type DecodedReview =
  | { ok: true; request: AdmissionRequest }
  /** The body is an AdmissionReview with a uid but the request is unusable: answer in a review. */
  | { ok: false; uid: string; message: string }
  /** Not an AdmissionReview at all (or no uid): answer HTTP 400. */
  | { ok: false; uid?: undefined; message: string };

const operations = new Set(["CREATE", "UPDATE", "DELETE", "CONNECT"]);

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Checks the envelope of a decoded JSON body. Unknown fields are tolerated (newer API servers add
 * some); what this package relies on is checked and named when wrong.
 */
export function decodeReview(body: unknown): DecodedReview {
  if (body === undefined || body === null || body === "")
    return { ok: false, message: "request body is empty: expected an admission.k8s.io/v1 AdmissionReview" };
  if (!isObject(body))
    return {
      ok: false,
      message: `request body is a JSON ${jsonType(body)}: expected an AdmissionReview object`,
    };
  // Whatever else is wrong, a request uid means the caller can be answered in a review.
  const uid = reviewUid(body);
  const bad = (message: string): DecodedReview =>
    uid === undefined ? { ok: false, message } : { ok: false, uid, message };
  if (body.kind !== "AdmissionReview")
    return bad(`kind is ${describe(body.kind)}: expected "AdmissionReview"`);
  if (body.apiVersion !== admissionApiVersion)
    return bad(
      `apiVersion is ${describe(body.apiVersion)}: only "${admissionApiVersion}" is served (configure admissionReviewVersions: ["v1"])`,
    );
  const req = body.request;
  if (!isObject(req)) return bad("request is missing: an AdmissionReview must carry a request");
  if (uid === undefined)
    return { ok: false, message: "request.uid is missing: it is needed to answer the review" };
  if (typeof req.operation !== "string" || !operations.has(req.operation))
    return bad(`request.operation is ${describe(req.operation)}: expected CREATE, UPDATE, DELETE or CONNECT`);
  if (!isObject(req.kind) || typeof req.kind.kind !== "string")
    return bad("request.kind is missing or has no kind");
  if (!isObject(req.resource) || typeof req.resource.resource !== "string")
    return bad("request.resource is missing or has no resource");
  for (const f of ["object", "oldObject"] as const) {
    const o = req[f];
    if (o !== undefined && o !== null && !isObject(o))
      return bad(`request.${f} is a JSON ${jsonType(o)}: expected an object`);
    if (isObject(o) && o.metadata !== undefined && !isObject(o.metadata))
      return bad(`request.${f}.metadata is a JSON ${jsonType(o.metadata)}: expected an object`);
  }
  if (req.namespace !== undefined && typeof req.namespace !== "string")
    return bad("request.namespace is not a string");
  return { ok: true, request: req as unknown as AdmissionRequest };
}

/** The request uid of a decoded body, when it has a usable one (a non-empty string). */
export function reviewUid(body: unknown): string | undefined {
  if (!isObject(body) || !isObject(body.request)) return undefined;
  const uid = body.request.uid;
  return typeof uid === "string" && uid !== "" ? uid : undefined;
}

/**
 * Whether a JSON text nests arrays/objects deeper than `max`, without parsing it (no recursion, one
 * pass; strings skipped). Recursive code (the patch diff, deep copies) would overflow the stack on a
 * body nested thousands of levels deep; the API server itself accepts up to 10 000 levels.
 */
export function jsonDeeperThan(text: string, max: number): boolean {
  // Each level takes at least one byte: a short text cannot be too deep.
  if (text.length <= max) return false;
  // Nor one with at most `max` opening brackets (counted natively with indexOf, in or out of strings:
  // an upper bound). Reviews of ordinary pods have a few hundred at most: no scan of every character.
  let opens = 0;
  for (const ch of ["{", "["]) {
    for (let i = text.indexOf(ch); i >= 0 && opens <= max; i = text.indexOf(ch, i + 1)) opens++;
    if (opens > max) break;
  }
  if (opens <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

export function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function describe(v: unknown): string {
  if (v === undefined) return "missing";
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Deep copy of a decoded JSON value (objects, arrays, primitives). Several times faster than
 * structuredClone for pods, which matters on the injection path; values that are not JSON (undefined,
 * functions) are dropped from objects as JSON.stringify would.
 */
export function cloneJson<T>(v: T): T {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) {
    const out = new Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = v[i] === undefined ? null : cloneJson(v[i]);
    return out as T;
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k];
    if (x === undefined || typeof x === "function") continue;
    // A "__proto__" key (JSON.parse makes it an own property) must stay data, not set the prototype.
    if (k === "__proto__")
      Object.defineProperty(out, k, {
        value: cloneJson(x),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    else out[k] = cloneJson(x);
  }
  return out as T;
}

/** Freezes a JSON value and everything in it: shared values must fail loudly when written to. */
export function deepFreeze<T>(v: T): T {
  if (v === null || typeof v !== "object" || Object.isFrozen(v)) return v;
  for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  return Object.freeze(v);
}
