// Shared test helpers for the webhook: certificates, clients over real HTTPS (HTTP/1.1 and HTTP/2),
// review builders, patch decoding and the Kubernetes Pod schema check.
import { mkdtempSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fastJsonPatch, { type Operation } from "fast-json-patch";
import { Pod } from "kubernetes-models/v1";
import selfsigned from "selfsigned";
import { createRegistry } from "../../lib/metrics.ts";
import type { AdmissionReviewResponse, KubeObject } from "../../webhook/admission.ts";
import { defaultWebhookSettings, type MountMode, type WebhookConfig } from "../../webhook/config.ts";
import { type ClusterLookup, MemoryLookup } from "../../webhook/lookup.ts";
import { createWebhookMetrics } from "../../webhook/metrics.ts";
import { makeMutateHandler } from "../../webhook/mutate.ts";
import { guard } from "../../webhook/policy.ts";
import { buildServer, type WebhookServer } from "../../webhook/server.ts";
import { makeValidateHandler } from "../../webhook/validate.ts";

export interface TestCerts {
  ca: string;
  cert: string;
  key: string;
}

const caCache: { ca?: Promise<{ cert: string; key: string }> } = {};

function testCa(): Promise<{ cert: string; key: string }> {
  caCache.ca ??= selfsigned
    .generate([{ name: "commonName", value: "juicefs-csi test CA" }], {
      keyType: "ec",
      algorithm: "sha256",
      extensions: [
        { name: "basicConstraints", cA: true, critical: true },
        { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      ],
    })
    .then((r) => ({ cert: r.cert, key: r.private }));
  return caCache.ca;
}

/** A serving certificate for 127.0.0.1 / localhost, signed by one test CA (so rotated certs stay trusted). */
export async function serverCerts(cn = "juicefs-csi-webhook"): Promise<TestCerts> {
  const ca = await testCa();
  const r = await selfsigned.generate([{ name: "commonName", value: cn }], {
    keyType: "ec",
    algorithm: "sha256",
    ca,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          { type: 2, value: "localhost" },
          { type: 7, ip: "127.0.0.1" },
        ],
      },
    ],
  });
  return { ca: ca.cert, cert: r.cert, key: r.private };
}

/** Writes cert/key files into a fresh temp dir. */
export function writeCerts(c: TestCerts, dir = mkdtempSync(join(tmpdir(), "jfs-webhook-"))) {
  const certFile = join(dir, "tls.crt");
  const keyFile = join(dir, "tls.key");
  writeFileSync(certFile, c.cert);
  writeFileSync(keyFile, c.key);
  return { dir, certFile, keyFile };
}

export interface HttpResult {
  status: number;
  body: string;
  json: unknown;
  /** Certificate fingerprint the server presented. */
  fingerprint?: string;
  alpn?: string;
}

function parse(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

/** HTTP/1.1 over TLS. */
export function h1Request(
  port: number,
  ca: string,
  method: string,
  path: string,
  body?: string | Buffer,
  opts: { agent?: https.Agent; headers?: Record<string, string> } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions & { ALPNProtocols: string[] } = {
      host: "127.0.0.1",
      port,
      method,
      path,
      ca,
      ALPNProtocols: ["http/1.1"],
      agent: opts.agent ?? false,
      headers: {
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...(opts.headers ?? {}),
      },
    };
    const req = https.request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const sock = res.socket as import("node:tls").TLSSocket;
        resolve({
          status: res.statusCode ?? 0,
          body: text,
          json: parse(text),
          fingerprint: sock?.getPeerCertificate?.()?.fingerprint256,
          alpn: sock?.alpnProtocol || undefined,
        });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** An HTTP/2 session to the server (ALPN h2). */
export function h2Session(port: number, ca: string): http2.ClientHttp2Session {
  return http2.connect(`https://127.0.0.1:${port}`, { ca });
}

export function h2Request(
  session: http2.ClientHttp2Session,
  method: string,
  path: string,
  body?: string,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": method,
      ":path": path,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      status = Number(h[":status"]);
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      resolve({ status, body: text, json: parse(text), alpn: session.alpnProtocol });
    });
    stream.on("error", reject);
    stream.end(body);
  });
}

export interface ReviewOptions {
  uid?: string;
  operation?: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
  namespace?: string;
  dryRun?: boolean;
  kind?: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  oldObject?: unknown;
  name?: string;
}

let uid = 0;

/** Resources without a namespace: the API server sends no `namespace` in their reviews. */
const clusterScoped = new Set(["persistentvolumes", "storageclasses", "nodes", "namespaces", "csidrivers"]);

const optionsKind = { CREATE: "CreateOptions", UPDATE: "UpdateOptions", DELETE: "DeleteOptions" } as const;

/**
 * An admission.k8s.io/v1 AdmissionReview as the API server sends it (k8s.io/apiserver
 * pkg/admission/plugin/webhook/request/admissionreview.go, CreateV1AdmissionReview): `object` is the
 * new object (null on DELETE), `oldObject` the stored one (UPDATE and DELETE, else null), `options`
 * the operation's options (CreateOptions / UpdateOptions / DeleteOptions), `dryRun` always present,
 * and `name` empty for a CREATE whose object has only generateName (the name is generated after
 * admission).
 */
export function podReview(pod: unknown, o: ReviewOptions = {}) {
  const p = pod as KubeObject | null;
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: o.uid ?? `00000000-0000-4000-8000-${String(++uid).padStart(12, "0")}`,
      kind: o.kind ?? { group: "", version: "v1", kind: "Pod" },
      resource: o.resource ?? { group: "", version: "v1", resource: "pods" },
      requestKind: o.kind ?? { group: "", version: "v1", kind: "Pod" },
      requestResource: o.resource ?? { group: "", version: "v1", resource: "pods" },
      ...(o.subResource ? { subResource: o.subResource } : {}),
      ...((o.name ?? p?.metadata?.name) ? { name: o.name ?? p?.metadata?.name } : {}),
      // Cluster-scoped kinds (PersistentVolume, StorageClass, ...) have no namespace key at all.
      ...(clusterScoped.has(o.resource?.resource ?? "pods")
        ? {}
        : { namespace: o.namespace ?? p?.metadata?.namespace ?? "default" }),
      operation: o.operation ?? "CREATE",
      userInfo: {
        username: "system:serviceaccount:kube-system:replicaset-controller",
        groups: ["system:serviceaccounts"],
      },
      object: o.operation === "DELETE" ? null : pod,
      oldObject: o.operation === "DELETE" ? (o.oldObject ?? pod) : (o.oldObject ?? null),
      dryRun: o.dryRun ?? false,
      ...(o.operation === "CONNECT"
        ? {}
        : { options: { apiVersion: "meta.k8s.io/v1", kind: optionsKind[o.operation ?? "CREATE"] } }),
    },
  };
}

export function decodePatch(r: AdmissionReviewResponse): Operation[] | undefined {
  if (!r.response.patch) return undefined;
  if (r.response.patchType !== "JSONPatch") throw new Error(`patchType ${r.response.patchType}`);
  return JSON.parse(Buffer.from(r.response.patch, "base64").toString("utf8")) as Operation[];
}

/** Applies a patch strictly (validated operations, original untouched) and returns the new document. */
export function applyPatch<T>(original: T, ops: Operation[]): T {
  const errors = fastJsonPatch.validate(ops, structuredClone(original));
  if (errors) throw errors;
  return fastJsonPatch.applyPatch(structuredClone(original), ops, true, false).newDocument as T;
}

/** Validates against the Kubernetes Pod schema (kubernetes-models); throws with the failing path. */
export function validatePod(pod: unknown): void {
  new Pod(pod as ConstructorParameters<typeof Pod>[0]).validate();
}

export interface TestServerOptions {
  mode?: MountMode;
  native?: boolean;
  /**
   * webhook.allowClassicSidecar. Default true here so the classic sidecar's shape can be tested;
   * the product's default (false: refused) has its own test (classic.test.ts).
   */
  allowClassic?: boolean;
  lookup?: ClusterLookup;
  /** Called when a review was answered by the failure policy (a handler threw or ran out of time). */
  onFailure?: (kind: string, err: unknown) => void;
  certs?: TestCerts;
  failurePolicy?: { mutate: "Fail" | "Ignore"; validate: "Fail" | "Ignore" };
  maxInFlightBytes?: number;
  /** webhook.maxClientsPerPod (default the product's). */
  maxClientsPerPod?: number;
}

/** The real fastify server with guarded handlers and an in-memory cluster; for app.inject(). */
export async function testServer(objects: unknown[], o: TestServerOptions = {}): Promise<WebhookServer> {
  const mode = o.mode ?? "sidecar";
  const config: WebhookConfig = {
    driver: {},
    webhook: {
      ...defaultWebhookSettings,
      mountMode: mode,
      allowClassicSidecar: o.allowClassic ?? true,
      ...(o.maxClientsPerPod ? { maxClientsPerPod: o.maxClientsPerPod } : {}),
    },
  };
  const lookup = o.lookup ?? new MemoryLookup(structuredClone(objects));
  const registry = createRegistry({ defaultMetrics: false });
  const g = {
    budgetMs: 2000,
    failurePolicy: "Fail" as const,
    onFailure: (k: string, err: unknown) => o.onFailure?.(k, err),
  };
  return buildServer({
    tls: o.certs ?? (await serverCerts()),
    mutate: guard(makeMutateHandler({ lookup, config, native: o.native ?? true }), g),
    validate: guard(makeValidateHandler({ lookup, driverConfig: {}, mountMode: mode }), g),
    ready: () => true,
    registry,
    metrics: createWebhookMetrics(registry),
    ...(o.failurePolicy ? { failurePolicy: o.failurePolicy } : {}),
    ...(o.maxInFlightBytes ? { maxInFlightBytes: o.maxInFlightBytes } : {}),
  });
}
