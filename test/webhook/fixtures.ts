// The fixture library: a small cluster (namespaces, Secrets, PVs, PVCs, StorageClasses) and
// AdmissionReviews of every pod shape the webhook must handle. Each fixture says what the answer must
// be; pods that get patched also have a golden file (test/webhook/golden/<name>.json) holding the pod
// after the decoded patch is applied to the original.
import type { MountMode } from "../../webhook/config.ts";
import { podReview, type ReviewOptions } from "./helpers.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

// ---------------------------------------------------------------- cluster

const ns = (name: string, inject: boolean) => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, ...(inject ? { labels: { "juicefs.com/enable-injection": "true" } } : {}) },
});

const secret = (namespace: string, name: string, data: Record<string, string>) => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace },
  type: "Opaque",
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
});

const community = {
  name: "myjfs",
  metaurl: "redis://:pw@redis:6379/1",
  storage: "s3",
  bucket: "https://bucket.s3.amazonaws.com",
  "access-key": "AKIA",
  "secret-key": "s3cr3t",
};

const pv = (
  name: string,
  o: {
    secret?: { name: string; namespace: string } | null;
    driver?: string;
    mountOptions?: string[];
    attributes?: Record<string, string>;
    storageClassName?: string;
    readOnly?: boolean;
  } = {},
) => ({
  apiVersion: "v1",
  kind: "PersistentVolume",
  metadata: { name },
  spec: {
    capacity: { storage: "10Pi" },
    accessModes: ["ReadWriteMany"],
    persistentVolumeReclaimPolicy: "Retain",
    ...(o.storageClassName ? { storageClassName: o.storageClassName } : {}),
    ...(o.mountOptions ? { mountOptions: o.mountOptions } : {}),
    csi: {
      driver: o.driver ?? "csi.juicefs.com",
      volumeHandle: name,
      ...(o.readOnly ? { readOnly: true } : {}),
      ...(o.attributes ? { volumeAttributes: o.attributes } : {}),
      ...(o.secret === null
        ? {}
        : { nodePublishSecretRef: o.secret ?? { name: "juicefs-secret", namespace: "default" } }),
    },
  },
});

const pvc = (
  namespace: string,
  name: string,
  o: { volumeName?: string; storageClassName?: string; annotations?: Record<string, string> } = {},
) => ({
  apiVersion: "v1",
  kind: "PersistentVolumeClaim",
  metadata: { name, namespace, ...(o.annotations ? { annotations: o.annotations } : {}) },
  spec: {
    accessModes: ["ReadWriteMany"],
    resources: { requests: { storage: "10Gi" } },
    storageClassName: o.storageClassName ?? "",
    ...(o.volumeName ? { volumeName: o.volumeName } : {}),
  },
});

const sc = (
  name: string,
  provisioner: string,
  parameters: Record<string, string> = {},
  mountOptions?: string[],
) => ({
  apiVersion: "storage.k8s.io/v1",
  kind: "StorageClass",
  metadata: { name },
  provisioner,
  parameters,
  ...(mountOptions ? { mountOptions } : {}),
});

export const cluster: unknown[] = [
  ns("default", true),
  ns("team-a", true),
  ns("plain", false),
  secret("default", "juicefs-secret", community),
  secret("team-a", "juicefs-secret", { ...community, name: "teamfs" }),
  secret("kube-system", "central-secret", community),
  secret("default", "ee-secret", { name: "ee-vol", token: "tok123", "access-key": "AK", "secret-key": "SK" }),
  secret("default", "legacy-secret", {
    name: "myjfs",
    metaurl: "redis://redis:6379/1",
    storage: "s3",
    bucket: "b",
    accesskey: "AK",
    secretkey: "SK",
  }),
  secret("default", "configs-secret", { ...community, configs: '{"ca-bundle": "/etc/jfs/ca"}' }),
  sc(
    "juicefs-sc",
    "csi.juicefs.com",
    {
      "csi.storage.k8s.io/node-publish-secret-name": "juicefs-secret",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a provisioner template, not a JS one
      "csi.storage.k8s.io/node-publish-secret-namespace": "${pvc.namespace}",
      "juicefs/mount-cpu-limit": "2",
    },
    ["cache-size=2048"],
  ),
  sc("gp3", "ebs.csi.aws.com"),
  pv("jfs-pv-1"),
  pv("jfs-pv-2", { mountOptions: ["cache-size=4096", "buffer-size=512"] }),
  pv("jfs-pv-3", { attributes: { "juicefs/mount-memory-limit": "2Gi" } }),
  pv("pvc-dyn-0001", {
    storageClassName: "juicefs-sc",
    mountOptions: ["cache-size=2048"],
    attributes: { subPath: "pvc-dyn-0001", "juicefs/mount-cpu-limit": "2" },
  }),
  pv("jfs-writeback", { mountOptions: ["writeback"] }),
  pv("jfs-central", { secret: { name: "central-secret", namespace: "kube-system" } }),
  pv("jfs-nosecret-ref", { secret: null }),
  pv("jfs-missing-secret", { secret: { name: "does-not-exist", namespace: "default" } }),
  pv("jfs-legacy", { secret: { name: "legacy-secret", namespace: "default" } }),
  pv("jfs-ee", { secret: { name: "ee-secret", namespace: "default" } }),
  pv("jfs-ro", { readOnly: true }),
  pv("jfs-configs", { secret: { name: "configs-secret", namespace: "default" } }),
  pv("jfs-team-a", { secret: { name: "juicefs-secret", namespace: "team-a" } }),
  pv("jfs-plain", { secret: { name: "juicefs-secret", namespace: "plain" } }),
  pv("ebs-pv-1", { driver: "ebs.csi.aws.com", secret: null }),
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a driver template, not a JS one
  pv("jfs-tmpl-pvc", { attributes: { subPath: "${.pvc.namespace}-${.pvc.name}" } }),
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a driver template, not a JS one
  pv("jfs-tmpl-node", { attributes: { subPath: "${.node.name}" } }),
  // One file system, two directories, the same settings: one client serves both.
  pv("jfs-dir-a", { attributes: { subPath: "dir-a" } }),
  pv("jfs-dir-b", { attributes: { subPath: "dir-b" } }),
  pvc("default", "data-1", { volumeName: "jfs-pv-1" }),
  pvc("default", "data-2", { volumeName: "jfs-pv-2" }),
  pvc("default", "data-3", { volumeName: "jfs-pv-3" }),
  pvc("default", "dyn", {
    volumeName: "pvc-dyn-0001",
    storageClassName: "juicefs-sc",
    annotations: { "juicefs/mount-memory-limit": "3Gi" },
  }),
  pvc("default", "ebs", { volumeName: "ebs-pv-1", storageClassName: "gp3" }),
  pvc("default", "unbound-jfs", { storageClassName: "juicefs-sc" }),
  pvc("default", "unbound-ebs", { storageClassName: "gp3" }),
  pvc("default", "writeback", { volumeName: "jfs-writeback" }),
  pvc("default", "central", { volumeName: "jfs-central" }),
  pvc("default", "nosecret", { volumeName: "jfs-nosecret-ref" }),
  pvc("default", "missing-secret", { volumeName: "jfs-missing-secret" }),
  pvc("default", "dangling", { volumeName: "pv-that-is-gone" }),
  pvc("default", "legacy", { volumeName: "jfs-legacy" }),
  pvc("default", "ee", { volumeName: "jfs-ee" }),
  pvc("default", "ro", { volumeName: "jfs-ro" }),
  pvc("default", "configs", { volumeName: "jfs-configs" }),
  pvc("default", "bad-annotation", {
    volumeName: "jfs-pv-1",
    annotations: { "juicefs/mount-cpu-limit": "lots" },
  }),
  pvc("default", "tmpl-pvc", { volumeName: "jfs-tmpl-pvc" }),
  pvc("default", "tmpl-node", { volumeName: "jfs-tmpl-node" }),
  pvc("default", "dir-a", { volumeName: "jfs-dir-a" }),
  pvc("default", "dir-b", { volumeName: "jfs-dir-b" }),
  pvc("team-a", "data-1", { volumeName: "jfs-team-a" }),
  pvc("plain", "data-1", { volumeName: "jfs-plain" }),
];

// ---------------------------------------------------------------- pods

type Obj = Record<string, unknown>;

const claimVolume = (name: string, claimName: string, readOnly = false) => ({
  name,
  persistentVolumeClaim: { claimName, ...(readOnly ? { readOnly: true } : {}) },
});

const container = (name: string, mounts: Obj[] = [], extra: Obj = {}) => ({
  name,
  image: `registry.example.com/${name}:1.0`,
  ...(mounts.length ? { volumeMounts: mounts } : {}),
  ...extra,
});

const mount = (name: string, mountPath: string, extra: Obj = {}) => ({ name, mountPath, ...extra });

/** A pod as the API server hands it to mutating admission (defaults applied, no uid yet). */
export function pod(
  spec: { containers: Obj[]; initContainers?: Obj[]; volumes?: Obj[] } & Obj,
  meta: Obj = {},
): Obj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "app", namespace: "default", labels: { app: "demo" }, ...meta },
    spec: {
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 30,
      dnsPolicy: "ClusterFirst",
      serviceAccountName: "default",
      schedulerName: "default-scheduler",
      enableServiceLinks: true,
      ...spec,
    },
    status: {},
  };
}

const onePvc = (claim = "data-1", extra: Obj = {}, meta: Obj = {}) =>
  pod(
    {
      containers: [container("app", [mount("data", "/data")])],
      volumes: [claimVolume("data", claim)],
      ...extra,
    },
    meta,
  );

const threePvcs = (extra: Obj = {}, meta: Obj = {}) =>
  pod(
    {
      containers: [
        container("app", [mount("a", "/a"), mount("b", "/b"), mount("c", "/c")]),
        container("worker", [mount("b", "/shared/b", { readOnly: true })]),
      ],
      volumes: [claimVolume("a", "data-1"), claimVolume("b", "data-2"), claimVolume("c", "data-3")],
      ...extra,
    },
    meta,
  );

const istio = container("istio-proxy", [mount("istio-envoy", "/etc/istio/proxy")], {
  image: "docker.io/istio/proxyv2:1.22.0",
  args: ["proxy", "sidecar"],
  ports: [{ containerPort: 15090, name: "http-envoy-prom", protocol: "TCP" }],
});

export interface Expect {
  allowed: boolean;
  /** A patch is expected (golden file compared). */
  patched: boolean;
  code?: number;
  message?: RegExp;
  warnings?: RegExp[];
  /** HTTP status when the body is not a usable review (default 200). */
  status?: number;
}

export interface Fixture {
  name: string;
  /** What the fixture is about. */
  about: string;
  mode?: MountMode;
  native?: boolean;
  review: unknown;
  expect: Expect;
}

const patched = (warnings?: RegExp[]): Expect => ({
  allowed: true,
  patched: true,
  ...(warnings ? { warnings } : {}),
});
const untouched = (warnings?: RegExp[]): Expect => ({
  allowed: true,
  patched: false,
  ...(warnings ? { warnings } : {}),
});
const refused = (message: RegExp, code = 403): Expect => ({ allowed: false, patched: false, code, message });

const f = (
  name: string,
  about: string,
  review: unknown,
  expect: Expect,
  o: { mode?: MountMode; native?: boolean } = {},
): Fixture => ({
  name,
  about,
  review,
  expect,
  ...o,
});

const classic = { native: false } as const;
/** Every classic injection carries the risk warning (webhook.sidecar.allowClassic accepted it). */
const classicRisk = /classic sidecar: if the JuiceFS client fails to start/;
/** Istio's proxy starts after the client: the client runs in the proxy's group, outside the redirect. */
const istioBypass = /Istio: istio-proxy starts after jfs-mount, so the JuiceFS client runs with group 1337/;
const podMode = { mode: "pod" } as const;

const r = (p: unknown, o?: ReviewOptions) => podReview(p, o);

export const fixtures: Fixture[] = [
  // --- fast path: nothing to do
  f("no-volumes", "pod without volumes", r(pod({ containers: [container("app")] })), untouched()),
  f(
    "only-local-volumes",
    "emptyDir, configMap, secret, projected volumes only",
    r(
      pod({
        containers: [
          container("app", [
            mount("cache", "/cache"),
            mount("cfg", "/etc/cfg"),
            mount("token", "/var/run/token"),
          ]),
        ],
        volumes: [
          { name: "cache", emptyDir: { medium: "Memory" } },
          { name: "cfg", configMap: { name: "app-config" } },
          {
            name: "token",
            projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3600 } }] },
          },
        ],
      }),
    ),
    untouched(),
  ),
  f("other-driver-pvc", "a PVC bound to an EBS volume", r(onePvc("ebs")), untouched()),
  f(
    "other-driver-pvc-pod-mode",
    "EBS PVC in pod mode: no propagation change",
    r(onePvc("ebs")),
    untouched(),
    podMode,
  ),
  f("unbound-other-sc", "unbound PVC of another StorageClass", r(onePvc("unbound-ebs")), untouched()),
  f(
    "ephemeral-volume",
    "generic ephemeral volume (not a claim reference)",
    r(
      pod({
        containers: [container("app", [mount("scratch", "/scratch")])],
        volumes: [
          {
            name: "scratch",
            ephemeral: {
              volumeClaimTemplate: {
                spec: {
                  accessModes: ["ReadWriteOnce"],
                  storageClassName: "gp3",
                  resources: { requests: { storage: "1Gi" } },
                },
              },
            },
          },
        ],
      }),
    ),
    untouched(),
  ),
  f(
    "ephemeral-juicefs",
    "generic ephemeral volume of a JuiceFS StorageClass: no sidecar can be built",
    r(
      pod({
        containers: [container("app", [mount("scratch", "/scratch")])],
        volumes: [
          {
            name: "scratch",
            ephemeral: {
              volumeClaimTemplate: {
                spec: {
                  accessModes: ["ReadWriteMany"],
                  storageClassName: "juicefs-sc",
                  resources: { requests: { storage: "1Gi" } },
                },
              },
            },
          },
        ],
      }),
    ),
    refused(/volume "scratch" is a generic ephemeral volume of StorageClass juicefs-sc/),
  ),
  f(
    "ephemeral-juicefs-pod-mode",
    "Mount Pod mode: a JuiceFS ephemeral volume gets mount propagation",
    r(
      pod({
        containers: [container("app", [mount("scratch", "/scratch")])],
        volumes: [
          {
            name: "scratch",
            ephemeral: {
              volumeClaimTemplate: {
                spec: {
                  accessModes: ["ReadWriteMany"],
                  storageClassName: "juicefs-sc",
                  resources: { requests: { storage: "1Gi" } },
                },
              },
            },
          },
        ],
      }),
    ),
    patched(),
    podMode,
  ),
  f(
    "already-injected",
    "pod labelled done.sidecar.juicefs.com/inject",
    r(onePvc("data-1", {}, { labels: { "done.sidecar.juicefs.com/inject": "true" } })),
    untouched(),
  ),
  f(
    "opted-out",
    "pod labelled disable.sidecar.juicefs.com/inject",
    r(onePvc("data-1", {}, { labels: { "disable.sidecar.juicefs.com/inject": "true" } })),
    untouched(),
  ),
  f(
    "opt-out-false",
    'disable label set to "false" does not opt out',
    r(onePvc("data-1", {}, { labels: { app: "demo", "disable.sidecar.juicefs.com/inject": "false" } })),
    patched(),
  ),
  f(
    "namespace-not-opted-in",
    "namespace without juicefs.com/enable-injection",
    r(onePvc("data-1", {}, { namespace: "plain" })),
    untouched(),
  ),
  f(
    "namespace-not-opted-in-pod-mode",
    "pod mode adds mount propagation in every namespace",
    r(onePvc("data-1", {}, { namespace: "plain" })),
    patched(),
    podMode,
  ),

  // --- operations other than CREATE
  f(
    "update",
    "UPDATE of a pod is never mutated",
    r(onePvc(), { operation: "UPDATE", oldObject: onePvc() }),
    untouched(),
  ),
  f(
    "delete",
    "DELETE carries only oldObject",
    podReview(null, { operation: "DELETE", name: "app", oldObject: onePvc() }),
    untouched(),
  ),
  f(
    "connect-exec",
    "CONNECT pods/exec",
    podReview(
      { kind: "PodExecOptions", apiVersion: "v1", command: ["sh"], container: "app", stdin: true, tty: true },
      {
        operation: "CONNECT",
        name: "app",
        subResource: "exec",
        kind: { group: "", version: "v1", kind: "PodExecOptions" },
      },
    ),
    untouched(),
  ),
  f(
    "binding-subresource",
    "CREATE pods/binding (scheduler) is not a new pod",
    podReview(
      {
        apiVersion: "v1",
        kind: "Binding",
        metadata: { name: "app", namespace: "default" },
        target: { kind: "Node", name: "node-1" },
      },
      { subResource: "binding", name: "app", kind: { group: "", version: "v1", kind: "Binding" } },
    ),
    untouched(),
  ),

  // --- one JuiceFS PVC
  f("one-pvc-native", "one JuiceFS PVC, native sidecar", r(onePvc()), patched()),
  f(
    "one-pvc-classic",
    "one JuiceFS PVC, classic sidecar gated by postStart",
    r(onePvc()),
    patched([classicRisk]),
    classic,
  ),
  f("one-pvc-pod-mode", "one JuiceFS PVC, Mount Pod mode: propagation only", r(onePvc()), patched(), podMode),
  f(
    "dry-run",
    "dry-run requests get the same answer (sideEffects: None)",
    r(onePvc(), { dryRun: true }),
    patched(),
  ),
  f(
    "generate-name",
    "pod with generateName only (ReplicaSet-created)",
    r(onePvc("data-1", {}, { name: undefined, generateName: "web-7d9f8b6c5d-" })),
    patched(),
  ),
  f(
    "namespace-missing-in-object",
    "the object has no namespace; the request has",
    r(onePvc("data-1", {}, { namespace: undefined }), { namespace: "default" }),
    patched(),
  ),
  f("no-labels", "pod without any labels", r(onePvc("data-1", {}, { labels: undefined })), patched()),
  f(
    "escaped-keys",
    "label/annotation keys with / and ~ stay intact (JSON Pointer escaping)",
    r(
      onePvc(
        "data-1",
        {},
        {
          labels: { "app.kubernetes.io/name": "demo", "odd~key": "x" },
          annotations: { "example.com/a~b/c": "1", "juicefs.com/sidecar-cpu-limit": "3" },
        },
      ),
    ),
    patched(),
  ),
  f(
    "constructor-annotation",
    'an annotation named "constructor" is a valid key, not an attack',
    r(onePvc("data-1", {}, { annotations: { constructor: "team-a", "prototype.example.com/x": "y" } })),
    patched(),
  ),
  f(
    "dynamic-pvc",
    "dynamically provisioned volume: sub-directory and StorageClass settings",
    r(onePvc("dyn")),
    patched(),
  ),
  f(
    "read-only-claim",
    "pod volume readOnly: the client mounts read-only",
    r(
      pod({
        containers: [container("app", [mount("data", "/data", { readOnly: true })])],
        volumes: [claimVolume("data", "data-1", true)],
      }),
    ),
    patched(),
  ),
  f("read-only-pv", "PV spec.csi.readOnly", r(onePvc("ro")), patched()),
  f("enterprise", "enterprise edition volume (juicefs auth)", r(onePvc("ee")), patched()),
  f(
    "configs-secret",
    "Secret with configs: the client mounts another Secret",
    r(onePvc("configs")),
    patched(),
  ),
  f(
    "other-namespace-own-secret",
    "namespace team-a with its own Secret",
    r(onePvc("data-1", {}, { namespace: "team-a" })),
    patched(),
  ),
  f(
    "unused-volume",
    "JuiceFS volume no container mounts",
    r(pod({ containers: [container("app")], volumes: [claimVolume("data", "data-1")] })),
    patched(),
  ),

  // --- three PVCs and mixed volumes
  f("three-pvcs-native", "three JuiceFS PVCs: three sidecars with distinct names", r(threePvcs()), patched()),
  f(
    "three-pvcs-classic",
    "three JuiceFS PVCs, classic sidecars",
    r(threePvcs()),
    patched([classicRisk]),
    classic,
  ),
  f("three-pvcs-pod-mode", "three JuiceFS PVCs, Mount Pod mode", r(threePvcs()), patched(), podMode),
  f(
    "mixed-volumes",
    "JuiceFS next to emptyDir, configMap, Secret and EBS volumes",
    r(
      pod({
        containers: [
          container("app", [
            mount("data", "/data"),
            mount("scratch", "/tmp"),
            mount("cfg", "/etc/app"),
            mount("db", "/var/lib/db"),
            mount("creds", "/etc/creds", { readOnly: true }),
          ]),
        ],
        volumes: [
          { name: "scratch", emptyDir: {} },
          claimVolume("data", "data-2"),
          { name: "cfg", configMap: { name: "app", defaultMode: 420 } },
          claimVolume("db", "ebs"),
          { name: "creds", secret: { secretName: "app-creds" } },
        ],
      }),
    ),
    patched(),
  ),
  f(
    "mixed-volumes-pod-mode",
    "Mount Pod mode leaves the non-JuiceFS mounts alone",
    r(
      pod({
        containers: [
          container("app", [mount("data", "/data"), mount("db", "/db"), mount("scratch", "/tmp")]),
        ],
        volumes: [claimVolume("data", "data-1"), claimVolume("db", "ebs"), { name: "scratch", emptyDir: {} }],
      }),
    ),
    patched(),
    podMode,
  ),
  f(
    "same-claim-twice",
    "one claim referenced by two pod volumes",
    r(
      pod({
        containers: [container("app", [mount("d1", "/d1"), mount("d2", "/d2")])],
        volumes: [claimVolume("d1", "data-1"), claimVolume("d2", "data-1", true)],
      }),
    ),
    patched(),
  ),

  f(
    "shared-client",
    "two volumes of one file system with the same settings, in different directories: one client",
    r(
      pod({
        containers: [
          container("app", [mount("a", "/a"), mount("b", "/b", { subPath: "x" })]),
          container("worker", [mount("b", "/b")]),
        ],
        volumes: [claimVolume("a", "dir-a"), claimVolume("b", "dir-b")],
      }),
    ),
    patched(),
  ),
  f(
    "template-pvc",
    "PVC templates (.pvc.namespace, .pvc.name) are filled from the claim at admission (directory default-tmpl-pvc)",
    r(onePvc("tmpl-pvc")),
    patched(),
  ),
  f(
    "template-node",
    "a node template (.node.name) cannot be known before the pod is scheduled: refused, not passed on as text",
    r(onePvc("tmpl-node")),
    refused(
      /\$\{\.node\.name\} needs the Node, which is not known here: in sidecar mode the client is built when the pod is admitted.*Mount Pod mode/,
    ),
  ),
  f(
    "template-node-pod-mode",
    "the same volume in Mount Pod mode: the node plugin fills it",
    r(onePvc("tmpl-node")),
    patched(),
    podMode,
  ),
  f(
    "metrics-ports",
    "three clients next to an app that serves on 9568: 9567, 9569, 9570",
    r(
      threePvcs({
        containers: [
          {
            ...container("app", [mount("a", "/a"), mount("b", "/b"), mount("c", "/c")]),
            ports: [{ name: "http", containerPort: 9568 }],
          },
        ],
      }),
    ),
    patched(),
  ),
  f(
    "metrics-port-annotation",
    "juicefs.com/sidecar-metrics-port moves the first port",
    r(onePvc("data-1", {}, { annotations: { "juicefs.com/sidecar-metrics-port": "19567" } })),
    patched(),
  ),
  f(
    "metrics-port-annotation-bad",
    "a metrics port that is not one",
    r(onePvc("data-1", {}, { annotations: { "juicefs.com/sidecar-metrics-port": "80" } })),
    refused(/annotation juicefs\.com\/sidecar-metrics-port: "80" is not a port from 1024 to 65535/),
  ),

  // --- subPath
  f(
    "subpath",
    "subPath mounts keep their sub-directory under the mount point",
    r(
      pod({
        containers: [
          container("app", [
            mount("data", "/logs", { subPath: "logs" }),
            mount("data", "/cfg", { subPath: "conf/app", readOnly: true }),
          ]),
        ],
        volumes: [claimVolume("data", "data-1")],
      }),
    ),
    patched(),
  ),
  f(
    "subpath-expr",
    "subPathExpr mounts are prefixed too",
    r(
      pod({
        containers: [
          container("app", [mount("data", "/out", { subPathExpr: "$(POD_NAME)" })], {
            env: [
              { name: "POD_NAME", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } } },
            ],
          }),
        ],
        volumes: [claimVolume("data", "data-1")],
      }),
    ),
    patched(),
  ),
  f(
    "subpath-dynamic",
    "subPath on a dynamic volume: mount point, volume directory, then the subPath",
    r(
      pod({
        containers: [container("app", [mount("data", "/data", { subPath: "a/b" })])],
        volumes: [claimVolume("data", "dyn")],
      }),
    ),
    patched(),
  ),
  f(
    "subpath-pod-mode",
    "Mount Pod mode keeps subPath as is",
    r(
      pod({
        containers: [container("app", [mount("data", "/logs", { subPath: "logs" })])],
        volumes: [claimVolume("data", "data-1")],
      }),
    ),
    patched(),
    podMode,
  ),

  // --- mount propagation
  f(
    "bidirectional-left-alone",
    "a mount with Bidirectional keeps it",
    r(
      pod({
        containers: [
          container("app", [mount("data", "/data", { mountPropagation: "Bidirectional" })], {
            securityContext: { privileged: true },
          }),
        ],
        volumes: [claimVolume("data", "data-1")],
      }),
    ),
    untouched(),
    podMode,
  ),
  f(
    "bidirectional-left-alone-sidecar",
    "sidecar mode: the app mount keeps Bidirectional",
    r(
      pod({
        containers: [
          container("app", [mount("data", "/data", { mountPropagation: "Bidirectional" })], {
            securityContext: { privileged: true },
          }),
        ],
        volumes: [claimVolume("data", "data-1")],
      }),
    ),
    patched(),
  ),
  f(
    "explicit-none-left-alone",
    "a mount with an explicit propagation keeps it",
    r(
      pod({
        containers: [container("app", [mount("data", "/data", { mountPropagation: "None" })])],
        volumes: [claimVolume("data", "data-1")],
      }),
    ),
    untouched(),
    podMode,
  ),
  f(
    "already-host-to-container",
    "HostToContainer already set: nothing to change in pod mode",
    r(
      pod({
        containers: [container("app", [mount("data", "/data", { mountPropagation: "HostToContainer" })])],
        volumes: [claimVolume("data", "data-1")],
      }),
    ),
    untouched(),
    podMode,
  ),

  // --- init containers and existing sidecars
  f(
    "init-container-native",
    "an init container reading the volume: the native sidecar starts first",
    r(
      pod({
        initContainers: [
          container("seed", [mount("data", "/data")], { command: ["sh", "-c", "cp -r /seed/. /data/"] }),
        ],
        containers: [container("app", [mount("data", "/data")])],
        volumes: [claimVolume("data", "data-1")],
      }),
    ),
    patched(),
  ),
  f(
    "init-container-classic",
    "an init container using the volume cannot work with a classic sidecar",
    r(
      pod({
        initContainers: [container("seed", [mount("data", "/data")])],
        containers: [container("app", [mount("data", "/data")])],
        volumes: [claimVolume("data", "data-1")],
      }),
    ),
    refused(/init container "seed" uses JuiceFS volume "data" \(PVC default\/data-1\).*native sidecar/),
    classic,
  ),
  f(
    "init-container-not-using-volume-classic",
    "an unrelated init container is fine with a classic sidecar",
    r(
      pod({
        initContainers: [
          container("wait-db", [], { command: ["sh", "-c", "until nc -z db 5432; do sleep 1; done"] }),
        ],
        containers: [container("app", [mount("data", "/data")])],
        volumes: [claimVolume("data", "data-1")],
      }),
    ),
    patched([classicRisk]),
    classic,
  ),
  f(
    "init-container-pod-mode",
    "Mount Pod mode: init container mounts get propagation too",
    r(
      pod({
        initContainers: [container("seed", [mount("data", "/data")])],
        containers: [container("app", [mount("data", "/data")])],
        volumes: [claimVolume("data", "data-1")],
      }),
    ),
    patched(),
    podMode,
  ),
  f(
    "istio-sidecar",
    "pod already carrying istio-proxy as a regular container",
    r(
      pod(
        {
          containers: [container("app", [mount("data", "/data")]), istio],
          volumes: [claimVolume("data", "data-1"), { name: "istio-envoy", emptyDir: { medium: "Memory" } }],
        },
        { annotations: { "sidecar.istio.io/status": '{"containers":["istio-proxy"]}' } },
      ),
    ),
    patched([istioBypass]),
  ),
  f(
    "istio-sidecar-classic",
    "istio-proxy present, classic mode: the client goes first",
    r(
      pod({
        containers: [container("app", [mount("data", "/data")]), istio],
        volumes: [claimVolume("data", "data-1"), { name: "istio-envoy", emptyDir: { medium: "Memory" } }],
      }),
    ),
    patched([classicRisk, istioBypass]),
    classic,
  ),
  f(
    "native-sidecar-present",
    "pod with an existing native sidecar (istio-proxy as restartable init container)",
    r(
      pod({
        initContainers: [{ ...istio, restartPolicy: "Always" }],
        containers: [container("app", [mount("data", "/data")])],
        volumes: [claimVolume("data", "data-1"), { name: "istio-envoy", emptyDir: { medium: "Memory" } }],
      }),
    ),
    patched([/Istio: jfs-mount placed after istio-proxy \(a native sidecar\)/]),
  ),
  f(
    "container-name-taken",
    "an app container already named like the sidecar",
    r(
      pod({
        containers: [container("jfs-mount", [mount("data", "/data")])],
        volumes: [claimVolume("data", "data-1")],
      }),
    ),
    patched(),
  ),
  f(
    "volume-name-taken",
    "a pod volume already named like the client's cache volume",
    r(
      pod({
        containers: [container("app", [mount("data", "/data"), mount("jfs-cache-0", "/cache")])],
        volumes: [claimVolume("data", "data-1"), { name: "jfs-cache-0", emptyDir: {} }],
      }),
    ),
    patched(),
  ),
  f(
    "long-volume-name",
    "a 63-character volume name still gives a valid container name",
    r(
      pod({
        containers: [container("app", [mount(`v${"x".repeat(62)}`, "/data")])],
        volumes: [claimVolume(`v${"x".repeat(62)}`, "data-1")],
      }),
    ),
    patched(),
  ),

  // --- host network, restart policy
  f(
    "host-network",
    "hostNetwork pod: the client's metrics port is a declared host port (the scheduler keeps clashes off a node)",
    r(onePvc("data-1", { hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" })),
    patched([/hostNetwork: jfs-mount serves metrics on host port 9567/]),
  ),
  f(
    "host-network-three",
    "hostNetwork with three clients: 9567, then past the node plugin's 9568",
    r(threePvcs({ hostNetwork: true })),
    patched([/on host port 9567/, /on host port 9569/, /on host port 9570/]),
  ),
  f(
    "job-classic",
    "restartPolicy Never without native sidecars: refused, the pod could never complete",
    r(onePvc("data-1", { restartPolicy: "Never" })),
    refused(/restartPolicy Never \(a Job's pod\) cannot complete with a classic sidecar.*Mount Pod mode/),
    classic,
  ),
  f(
    "job-native",
    "restartPolicy Never with a native sidecar: the Job completes",
    r(onePvc("data-1", { restartPolicy: "Never" })),
    patched(),
  ),

  // --- resources
  f(
    "sidecar-resources",
    "per-pod sidecar resources from annotations",
    r(
      onePvc(
        "data-1",
        {},
        {
          annotations: {
            "juicefs.com/sidecar-cpu-request": "250m",
            "juicefs.com/sidecar-cpu-limit": "1",
            "juicefs.com/sidecar-memory-request": "512Mi",
            "juicefs.com/sidecar-memory-limit": "2Gi",
          },
        },
      ),
    ),
    patched(),
  ),
  f(
    "sidecar-limit-removed",
    "a limit of 0 removes it",
    r(onePvc("data-1", {}, { annotations: { "juicefs.com/sidecar-cpu-limit": "0" } })),
    patched(),
  ),
  f(
    "sidecar-resources-from-volume",
    "resources from the PV attributes and the PVC annotation",
    r(
      pod({
        containers: [container("app", [mount("a", "/a"), mount("b", "/b")])],
        volumes: [claimVolume("a", "data-3"), claimVolume("b", "dyn")],
      }),
    ),
    patched(),
  ),
  f(
    "bad-sidecar-quantity",
    "a sidecar annotation that is not a quantity",
    r(onePvc("data-1", {}, { annotations: { "juicefs.com/sidecar-memory-limit": "lots" } })),
    refused(/annotation juicefs\.com\/sidecar-memory-limit: "lots" is not a Kubernetes quantity/),
  ),
  f(
    "sidecar-memory-below-buffer",
    "an annotation memory limit below the volume's buffer-size (512 MiB): refused as a PV's would be",
    r(
      pod(
        { containers: [container("app", [mount("d", "/d")])], volumes: [claimVolume("d", "data-2")] },
        {
          annotations: {
            "juicefs.com/sidecar-memory-request": "128Mi",
            "juicefs.com/sidecar-memory-limit": "256Mi",
          },
        },
      ),
    ),
    refused(
      /PVC default\/data-2: buffer-size 512 MiB is above the client's memory limit 256Mi.*raise juicefs\.com\/sidecar-memory-limit/,
    ),
  ),
  f(
    "sidecar-memory-near-buffer",
    "an annotation memory limit just above the buffer-size: allowed with the 80% warning",
    r(
      pod(
        { containers: [container("app", [mount("d", "/d")])], volumes: [claimVolume("d", "data-2")] },
        {
          annotations: {
            "juicefs.com/sidecar-memory-request": "512Mi",
            "juicefs.com/sidecar-memory-limit": "600Mi",
          },
        },
      ),
    ),
    patched([/buffer-size 512 MiB is more than 80% of the client's memory limit 600Mi/]),
  ),
  f(
    "sidecar-request-above-limit",
    "a request above the limit",
    r(onePvc("data-1", {}, { annotations: { "juicefs.com/sidecar-cpu-request": "8" } })),
    refused(/PVC default\/data-1: sidecar cpu request 8 is above its limit 5/),
  ),
  f(
    "bad-pvc-annotation",
    "a PVC annotation that is not a quantity",
    r(onePvc("bad-annotation")),
    refused(/PVC default\/bad-annotation.*juicefs\/mount-cpu-limit.*"lots"/),
  ),

  // --- refusals and unknowns
  f(
    "writeback",
    "writeback is refused, naming the PVC and the option",
    r(onePvc("writeback")),
    refused(/PVC default\/writeback \(PersistentVolume jfs-writeback\):.*"writeback" is refused/),
  ),
  f(
    "writeback-pod-mode",
    "Mount Pod mode does not resolve settings: the node plugin reports them",
    r(onePvc("writeback")),
    patched(),
    podMode,
  ),
  f(
    "secret-other-namespace",
    "the node-publish Secret is in kube-system",
    r(onePvc("central")),
    refused(
      /nodePublishSecretRef is kube-system\/central-secret, outside the pod's namespace "default".*\$\{pvc\.namespace\}/,
    ),
  ),
  f(
    "no-secret-ref",
    "a JuiceFS PV without nodePublishSecretRef",
    r(onePvc("nosecret")),
    refused(/jfs-nosecret-ref has no spec\.csi\.nodePublishSecretRef/),
  ),
  f(
    "secret-missing",
    "the Secret does not exist",
    r(onePvc("missing-secret")),
    refused(/Secret default\/does-not-exist .* does not exist/),
  ),
  f(
    "legacy-secret-keys",
    "legacy accesskey/secretkey keys cannot be read by secretKeyRef",
    r(onePvc("legacy")),
    refused(/Secret legacy-secret has no key "access-key", "secret-key"/),
  ),
  f(
    "unbound-juicefs",
    "an unbound claim of a JuiceFS StorageClass",
    r(onePvc("unbound-jfs")),
    refused(/PVC default\/unbound-jfs \(StorageClass juicefs-sc, csi\.juicefs\.com\) is not bound/),
  ),
  f(
    "unbound-juicefs-pod-mode",
    "Mount Pod mode: an unbound JuiceFS claim still gets propagation",
    r(onePvc("unbound-jfs")),
    patched(),
    podMode,
  ),
  f(
    "pvc-missing",
    "the claim does not exist yet",
    r(onePvc("not-created-yet")),
    untouched([/PVC default\/not-created-yet \(volume "data"\) does not exist yet/]),
  ),
  f(
    "pv-missing",
    "the claim's PV does not exist",
    r(onePvc("dangling")),
    untouched([/bound to PersistentVolume pv-that-is-gone, which does not exist/]),
  ),
  f(
    "one-bad-of-three",
    "one bad volume among good ones refuses the pod, naming it",
    r(
      pod({
        containers: [container("app", [mount("a", "/a"), mount("b", "/b")])],
        volumes: [claimVolume("a", "data-1"), claimVolume("b", "writeback")],
      }),
    ),
    refused(/PVC default\/writeback/),
  ),

  // --- malformed / unexpected requests (answered in a review with the same uid)
  f(
    "not-a-pod-kind",
    "request.kind is a Deployment",
    podReview(
      { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "x" } },
      { kind: { group: "apps", version: "v1", kind: "Deployment" } },
    ),
    refused(/request\.kind is apps\/Deployment/, 400),
  ),
  f(
    "object-kind-mismatch",
    "request.kind Pod but the object is a ConfigMap",
    podReview({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" } }),
    refused(/request\.object\.kind is "ConfigMap"/, 400),
  ),
  f(
    "create-without-object",
    "CREATE without an object",
    podReview(null),
    refused(/request\.object is missing/, 400),
  ),
  f(
    "containers-not-a-list",
    "a pod whose containers is not a list",
    podReview({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "x", namespace: "default" },
      spec: { containers: "app", volumes: [claimVolume("data", "data-1")] },
    }),
    refused(/spec\.containers is empty/, 400),
  ),
  f(
    "mount-without-name",
    "a volumeMount without a volume name",
    podReview(
      pod({
        containers: [{ name: "app", image: "x", volumeMounts: [{ mountPath: "/data" }] }],
        volumes: [claimVolume("data", "data-1")],
      }),
    ),
    refused(/spec\.containers\[0\]\.volumeMounts\[0\] has no volume name/, 400),
  ),
  f(
    "unknown-fields",
    "unknown fields in the review and the pod are tolerated",
    (() => {
      const rv = r(onePvc()) as { request: Obj; futureField?: unknown };
      rv.futureField = { a: 1 };
      rv.request.somethingNew = true;
      ((rv.request.object as Obj).spec as Obj).futureSpecField = "kept";
      return rv;
    })(),
    patched(),
  ),
  f(
    "realistic-large-pod",
    "a 3-container pod with many env vars, probes and resources",
    r(
      pod(
        {
          containers: ["api", "worker", "metrics"].map((n, i) =>
            container(n, i < 2 ? [mount("data", `/srv/${n}`), mount("tmp", "/tmp")] : [], {
              env: Array.from({ length: 40 }, (_, k) => ({
                name: `VAR_${k}`,
                value: `value-${k}-${"x".repeat(20)}`,
              })),
              resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "1", memory: "1Gi" } },
              readinessProbe: { httpGet: { path: "/ready", port: 8080 }, periodSeconds: 5 },
              ports: [{ containerPort: 8080 + i, name: `http-${i}`, protocol: "TCP" }],
            }),
          ),
          volumes: [claimVolume("data", "data-1"), { name: "tmp", emptyDir: {} }],
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                {
                  weight: 100,
                  podAffinityTerm: {
                    topologyKey: "kubernetes.io/hostname",
                    labelSelector: { matchLabels: { app: "demo" } },
                  },
                },
              ],
            },
          },
          tolerations: [{ key: "dedicated", operator: "Equal", value: "batch", effect: "NoSchedule" }],
        },
        {
          labels: { app: "demo", "pod-template-hash": "7d9f8b6c5d" },
          ownerReferences: [
            {
              apiVersion: "apps/v1",
              kind: "ReplicaSet",
              name: "app-7d9f8b6c5d",
              uid: "2b7b2d2e-1111-4a4a-9c9c-000000000001",
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
      ),
    ),
    patched(),
  ),
];
