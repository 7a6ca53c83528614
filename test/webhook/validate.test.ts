// POST /validate: this driver's Secrets, PVs, StorageClasses, PVCs and pods are checked with the domain
// validator; others pass untouched; warnings reach kubectl.
import t from "tap";
import type { AdmissionReviewResponse } from "../../webhook/admission.ts";
import { cluster } from "./fixtures.ts";
import { podReview, testServer } from "./helpers.ts";

const app = await testServer(cluster);
t.teardown(() => app.close());

const b64 = (s: string) => Buffer.from(s).toString("base64");

async function validate(obj: Record<string, unknown>, operation: "CREATE" | "UPDATE" | "DELETE" = "CREATE") {
  const kind = String(obj.kind);
  const group = kind === "StorageClass" ? "storage.k8s.io" : "";
  const review = podReview(obj, {
    operation,
    kind: { group, version: "v1", kind },
    resource: { group, version: "v1", resource: `${kind.toLowerCase()}s` },
    ...(operation === "UPDATE" ? { oldObject: obj } : {}),
  });
  const res = await app.inject({ method: "POST", url: "/validate", payload: review });
  t.equal(res.statusCode, 200);
  const r = res.json() as AdmissionReviewResponse;
  t.equal(r.response.uid, review.request.uid);
  t.notOk(r.response.patch, "validation never patches");
  return r.response;
}

const labelled = { "juicefs.com/validate-secret": "true" };
const secret = (data: Record<string, string>, labels: Record<string, string> = labelled) => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "jfs", namespace: "default", labels },
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
});
const good = {
  name: "myjfs",
  metaurl: "redis://redis:6379/1",
  storage: "s3",
  bucket: "https://b.s3.amazonaws.com",
};

t.test("Secrets labelled for validation", async (t) => {
  t.match(await validate(secret(good)), { allowed: true });
  t.match(await validate(secret(good), "UPDATE"), { allowed: true });
  t.match(await validate(secret({ metaurl: "redis://r/1" })), {
    allowed: false,
    status: { code: 403, message: /"name" \(the JuiceFS file system name\) is missing/ },
  });
  t.match(await validate(secret({ name: "myjfs" })), {
    allowed: false,
    status: { message: /neither "metaurl".*nor "token"/ },
  });
  t.match(await validate(secret({ ...good, envs: "{broken" })), {
    allowed: false,
    status: { message: /secret\.envs.*"envs" is not valid/ },
  });
  t.match(await validate(secret({ ...good, configs: '{"x": "relative/dir"}' })), {
    allowed: false,
    status: { message: /"configs" directory "relative\/dir"/ },
  });
  t.match(await validate(secret({ ...good, "format-options": "trash-days=1,access-key=x" })), {
    allowed: false,
    status: { message: /format-options/ },
  });
  const bad = await validate(secret({ ...good, metaurl: "-oops" }));
  t.match(bad, { allowed: false, status: { message: /"metaurl" starts with "-"/ } });
  t.notMatch(bad.status?.message, /-oops/, "secret values are not echoed");
  t.match(
    await validate(secret({ name: "x" }, {})),
    { allowed: true },
    "unlabelled Secrets are not ours to judge",
  );
  t.match(await validate(secret({ name: "x" }), "DELETE"), { allowed: true }, "DELETE passes");
  const w = await validate(secret({ name: "myjfs", metaurl: "redis://r/1" }));
  t.match(w, { allowed: true, warnings: [/no "storage" or "bucket"/] }, "warnings reach kubectl");
});

const pv = (spec: Record<string, unknown>, csi: Record<string, unknown> = {}) => ({
  apiVersion: "v1",
  kind: "PersistentVolume",
  metadata: { name: "pv-x" },
  spec: {
    capacity: { storage: "1Pi" },
    accessModes: ["ReadWriteMany"],
    ...spec,
    csi: {
      driver: "csi.juicefs.com",
      volumeHandle: "pv-x",
      nodePublishSecretRef: { name: "juicefs-secret", namespace: "default" },
      ...csi,
    },
  },
});

t.test("PersistentVolumes of this driver", async (t) => {
  t.match(await validate(pv({ mountOptions: ["cache-size=1024"] })), { allowed: true });
  const wb = await validate(pv({ mountOptions: ["cache-size=1024", "writeback"] }));
  t.match(wb, {
    allowed: false,
    status: { message: /PersistentVolume pv-x.*mount option "writeback" is refused/ },
  });
  t.match(await validate(pv({}, { volumeAttributes: { "juicefs/mount-cpu-limit": "lots" } })), {
    allowed: false,
    status: { message: /juicefs\/mount-cpu-limit.*"lots" is not a Kubernetes quantity/ },
  });
  t.match(await validate(pv({}, { volumeAttributes: { "juicefs/mount-delete-delay": "soon" } })), {
    allowed: false,
    status: { message: /"soon" is not a duration/ },
  });
  t.match(await validate(pv({}, { nodePublishSecretRef: undefined })), {
    allowed: false,
    status: { message: /nodePublishSecretRef is missing/ },
  });
  t.match(await validate(pv({}, { nodePublishSecretRef: { name: "later", namespace: "default" } })), {
    allowed: true,
    warnings: [/Secret default\/later .* does not exist yet/],
  });
  // The real Secret is used when it is found: a Secret problem shows up on the PV.
  t.match(await validate(pv({}, { nodePublishSecretRef: { name: "legacy-secret", namespace: "default" } })), {
    allowed: true,
  });
  t.match(
    await validate({
      ...pv({}),
      spec: { csi: { driver: "ebs.csi.aws.com", volumeHandle: "v" }, mountOptions: ["writeback"] },
    }),
    { allowed: true },
    "other drivers' PVs pass",
  );
});

t.test("StorageClasses of this driver", async (t) => {
  const sc = (parameters: Record<string, string>, mountOptions?: string[]) => ({
    apiVersion: "storage.k8s.io/v1",
    kind: "StorageClass",
    metadata: { name: "jfs" },
    provisioner: "csi.juicefs.com",
    parameters,
    ...(mountOptions ? { mountOptions } : {}),
  });
  const secrets = {
    "csi.storage.k8s.io/provisioner-secret-name": "s",
    "csi.storage.k8s.io/provisioner-secret-namespace": "kube-system",
    "csi.storage.k8s.io/node-publish-secret-name": "s",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a provisioner template
    "csi.storage.k8s.io/node-publish-secret-namespace": "${pvc.namespace}",
  };
  t.match(await validate(sc(secrets, ["cache-size=100"])), { allowed: true });
  t.match(await validate(sc(secrets, ["writeback"])), {
    allowed: false,
    status: { message: /StorageClass jfs.*"writeback" is refused/ },
  });
  t.match(
    await validate(
      sc({ ...secrets, "juicefs/mount-memory-limit": "1Gi", "juicefs/mount-memory-request": "2Gi" }),
    ),
    {
      allowed: false,
      status: { message: /memory request 2Gi is above the memory limit 1Gi/ },
    },
  );
  t.match(await validate(sc({ "juicefs/mount-cpu-limit": "1" })), {
    allowed: false,
    status: { message: /node-publish-secret-name and .* are required/ },
  });
  t.match(
    await validate(sc({ ...secrets, "csi.storage.k8s.io/node-publish-secret-namespace": "kube-system" })),
    {
      allowed: true,
      warnings: [/in sidecar mode the Secret must be in each pod's namespace/],
    },
  );
  t.match(await validate(sc({ ...secrets, "juicefs/mount-cpu-limt": "1" })), {
    allowed: true,
    warnings: [/juicefs\/mount-cpu-limt.*did you mean "juicefs\/mount-cpu-limit"/],
  });
  t.match(await validate({ ...sc({}), provisioner: "ebs.csi.aws.com", mountOptions: ["writeback"] }), {
    allowed: true,
  });
});

t.test(
  "sidecar mode: a StorageClass with volumeBindingMode WaitForFirstConsumer is warned about",
  async (t) => {
    const sc = (volumeBindingMode?: string, provisioner = "csi.juicefs.com") => ({
      apiVersion: "storage.k8s.io/v1",
      kind: "StorageClass",
      metadata: { name: "jfs-wffc", uid: "f4d90bbb-4ed9-40f1-91f6-90fffc8380b9" },
      provisioner,
      parameters: {
        "csi.storage.k8s.io/provisioner-secret-name": "s",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a provisioner template
        "csi.storage.k8s.io/provisioner-secret-namespace": "${pvc.namespace}",
        "csi.storage.k8s.io/node-publish-secret-name": "s",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a provisioner template
        "csi.storage.k8s.io/node-publish-secret-namespace": "${pvc.namespace}",
      },
      reclaimPolicy: "Delete",
      // The API server defaults it to Immediate before admission: a stored class always has it.
      ...(volumeBindingMode ? { volumeBindingMode } : {}),
    });
    const wffc =
      /^StorageClass jfs-wffc: volumeBindingMode WaitForFirstConsumer never works in sidecar mode \(pods are refused until their claim is bound; its claims wait for a scheduled pod\); use Immediate \(recreate the class\) or mountMode: pod$/;
    const created = await validate(sc("WaitForFirstConsumer"));
    t.match(
      created,
      { allowed: true, warnings: [wffc] },
      "CREATE: allowed (valid in Mount Pod mode), warned",
    );
    t.equal(created.warnings?.length, 1, "only that warning");
    const updated = await validate(sc("WaitForFirstConsumer"), "UPDATE");
    t.match(
      updated,
      { allowed: true, warnings: [wffc] },
      "UPDATE (labels etc.): still allowed, still warned",
    );
    for (const mode of ["Immediate", undefined])
      t.notOk(
        (await validate(sc(mode))).warnings?.length,
        `volumeBindingMode ${mode ?? "unset"}: no warning`,
      );
    t.notOk(
      (await validate(sc("WaitForFirstConsumer", "ebs.csi.aws.com"))).warnings?.length,
      "another provisioner's class is not ours",
    );

    // Mount Pod mode: the claim binds when the pod is scheduled and the node plugin mounts it; fine.
    const podMode = await testServer(cluster, { mode: "pod" });
    t.teardown(() => podMode.close());
    const res = await podMode.inject({
      method: "POST",
      url: "/validate",
      payload: podReview(sc("WaitForFirstConsumer"), {
        kind: { group: "storage.k8s.io", version: "v1", kind: "StorageClass" },
        resource: { group: "storage.k8s.io", version: "v1", resource: "storageclasses" },
      }),
    });
    const r = (res.json() as AdmissionReviewResponse).response;
    t.equal(r.allowed, true);
    t.notOk(r.warnings?.length, "mountMode pod: no warning");
  },
);

t.test("PVCs and pods", async (t) => {
  const pvc = (annotations: Record<string, string>, storageClassName = "juicefs-sc") => ({
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: "c", namespace: "default", annotations },
    spec: { storageClassName, accessModes: ["ReadWriteMany"], resources: { requests: { storage: "1Gi" } } },
  });
  t.match(await validate(pvc({ "juicefs/mount-memory-limit": "2Gi" })), { allowed: true });
  t.match(await validate(pvc({ "juicefs/mount-memory-limit": "two gigs" })), {
    allowed: false,
    status: { message: /"two gigs" is not a Kubernetes quantity/ },
  });
  t.match(await validate(pvc({ "juicefs/mount-image": "bad image!" })), {
    allowed: false,
    status: { message: /not a container image reference/ },
  });
  t.match(await validate(pvc({ "juicefs/unknown": "1" })), { allowed: true, warnings: [/is ignored/] });
  t.match(await validate(pvc({ other: "x" }, "gp3")), { allowed: true }, "other StorageClasses' PVCs pass");
  const pod = (annotations: Record<string, string>) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: "default", annotations },
    spec: { containers: [{ name: "a", image: "a" }] },
  });
  t.match(await validate(pod({ "juicefs.com/sidecar-cpu-limit": "2" })), { allowed: true });
  t.match(await validate(pod({ "juicefs.com/sidecar-cpu-limit": "two" })), {
    allowed: false,
    status: { message: /annotation juicefs\.com\/sidecar-cpu-limit: "two" is not a Kubernetes quantity/ },
  });
  t.match(
    await validate({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" } }),
    { allowed: true },
    "other kinds pass",
  );
});

t.test("the global config ConfigMap: a bad patch is refused naming the field; others pass", async (t) => {
  const cm = (
    text: string | undefined,
    name = "juicefs-csi-driver-config",
    extra: Record<string, string> = {},
  ) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace: "kube-system" },
    data: { ...(text === undefined ? {} : { "config.yaml": text }), ...extra },
  });
  t.match(await validate(cm("mountPodPatch:\n  - ceMountImage: juicedata/mount:ce-v1.2.3\n")), {
    allowed: true,
  });
  t.match(await validate(cm(undefined)), { allowed: true }, "no config.yaml: no patches");
  t.match(await validate(cm("mountPodPatch: [{resources: {limits: {memory: lots}}}]")), {
    allowed: false,
    status: {
      code: 403,
      message:
        /^JuiceFS: ConfigMap kube-system\/juicefs-csi-driver-config: mountPodPatch\[0\]\.resources\.limits\.memory: "lots" is not a Kubernetes quantity$/,
    },
  });
  const toggles = await validate(cm("enableNativeSidecar: true\n", undefined, { other: "x" }));
  t.equal(toggles.allowed, true);
  t.match(toggles.warnings?.join("\n"), /enableNativeSidecar has no effect in this driver/);
  t.match(toggles.warnings?.join("\n"), /data key "other" is not read; the driver reads only "config.yaml"/);
  t.match(
    await validate(cm("{not yaml", "some-other-config")),
    { allowed: true },
    "other ConfigMaps are not ours",
  );
  // UPDATE ratchets like every other object: an old problem stays a warning, a new one is refused.
  const old = cm("mountPodPatch: [{hostnameKey: x}]");
  const send = async (object: unknown) => {
    const review = podReview(object as Record<string, unknown>, {
      operation: "UPDATE",
      kind: { group: "", version: "v1", kind: "ConfigMap" },
      resource: { group: "", version: "v1", resource: "configmaps" },
      oldObject: old,
    });
    const res = await app.inject({ method: "POST", url: "/validate", payload: review });
    return (res.json() as AdmissionReviewResponse).response;
  };
  const kept = await send(cm("mountPodPatch: [{hostnameKey: x}]", undefined, { note: "edited" }));
  t.equal(kept.allowed, true);
  t.match(kept.warnings?.join("\n"), /allowed because this update does not change these invalid settings/);
  const worse = await send(cm("mountPodPatch: [{hostnameKey: x, dnsPolicy: Sometimes}]"));
  t.match(worse, { allowed: false, status: { message: /dnsPolicy: must be one of/ } });
});
