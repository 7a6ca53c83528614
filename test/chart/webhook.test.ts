// The webhook configurations (values reach them — the reference chart's failurePolicy never did),
// the webhook workload, and its TLS in the three modes, including reuse of the CA on upgrade.
import { createPrivateKey, X509Certificate } from "node:crypto";
import t, { type Test } from "tap";
import { parseManifests } from "../../cli/lint-values.ts";
import { labels } from "../../driver/juicefs/constants.ts";
import { globalConfigName } from "../../driver/juicefs/global-config.ts";
import {
  chartDir,
  container,
  fakeApiServer,
  has,
  helm,
  helms,
  type K8sObject,
  kubeVersion,
  namespace,
  ofKind,
  one,
  podSpec,
  release,
  render,
  renderCi,
} from "./helpers.ts";

interface Webhook {
  name: string;
  failurePolicy: string;
  timeoutSeconds: number;
  sideEffects: string;
  admissionReviewVersions: string[];
  reinvocationPolicy?: string;
  matchPolicy?: string;
  clientConfig: { caBundle?: string; service: { name: string; path: string } };
  rules: { apiGroups: string[]; resources: string[]; operations: string[] }[];
  matchConditions?: { name: string; expression: string }[];
  objectSelector?: unknown;
  namespaceSelector?: unknown;
}
const webhooksOf = (o: K8sObject) => (o as unknown as { webhooks: Webhook[] }).webhooks;
const allWebhooks = (objs: K8sObject[]) => [
  ...ofKind(objs, "MutatingWebhookConfiguration").flatMap(webhooksOf),
  ...ofKind(objs, "ValidatingWebhookConfiguration").flatMap(webhooksOf),
];
const tlsSecretName = `${release}-webhook-tls`;
const svcDns = `${release}-webhook.${namespace}.svc`;
const b64 = (s: string) => Buffer.from(s, "base64").toString("utf8");
const dataOf = (o: K8sObject) => (o as unknown as { data: Record<string, string> }).data;

t.test("defaults: mutating Fail, validating Ignore, 5 s, the admission API contract", async (t) => {
  const objs = await renderCi("default");
  const [mutate] = webhooksOf(one(objs, "MutatingWebhookConfiguration"));
  t.match(mutate, {
    name: "mutate-pod.csi.juicefs.com",
    failurePolicy: "Fail",
    timeoutSeconds: 5,
    sideEffects: "None",
    admissionReviewVersions: ["v1"],
    reinvocationPolicy: "IfNeeded",
    matchPolicy: "Equivalent",
  });
  t.same(mutate!.rules, [
    {
      apiGroups: [""],
      apiVersions: ["v1"],
      operations: ["CREATE"],
      resources: ["pods"],
      scope: "Namespaced",
    },
  ]);
  const validating = webhooksOf(one(objs, "ValidatingWebhookConfiguration"));
  for (const w of validating)
    t.match(w, {
      failurePolicy: "Ignore",
      timeoutSeconds: 5,
      sideEffects: "None",
      admissionReviewVersions: ["v1"],
    });
  t.same(
    validating.map((w) => [w.name, w.rules[0]!.resources[0], w.rules[0]!.operations]),
    [
      ["validate-secret.csi.juicefs.com", "secrets", ["CREATE", "UPDATE"]],
      ["validate-pv.csi.juicefs.com", "persistentvolumes", ["CREATE", "UPDATE"]],
      ["validate-storageclass.csi.juicefs.com", "storageclasses", ["CREATE", "UPDATE"]],
      ["validate-pvc.csi.juicefs.com", "persistentvolumeclaims", ["CREATE", "UPDATE"]],
      ["validate-global-config.csi.juicefs.com", "configmaps", ["CREATE", "UPDATE"]],
      ["validate-pod.csi.juicefs.com", "pods", ["CREATE"]],
    ],
  );
  // Only the one ConfigMap, in the release's namespace: no other ConfigMap write ever reaches us.
  const gc = validating.find((w) => w.name === "validate-global-config.csi.juicefs.com") as unknown as {
    namespaceSelector: unknown;
    matchConditions: { expression: string }[];
  };
  t.same(gc.namespaceSelector, { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } });
  t.equal(gc.matchConditions[0]!.expression, `object.metadata.name == '${globalConfigName}'`);
  const off = webhooksOf(
    one(await render(["--set", "globalConfig.enabled=false"]), "ValidatingWebhookConfiguration"),
  );
  t.notOk(
    off.some((w) => w.name === "validate-global-config.csi.juicefs.com"),
    "globalConfig.enabled=false: no rule",
  );
});

t.test("failurePolicy and timeoutSeconds from values reach every webhook object", async (t) => {
  for (const [mutating, validating, timeout] of [
    ["Ignore", "Fail", 12],
    ["Fail", "Ignore", 30],
  ] as const) {
    const objs = await render([
      "--set",
      `webhook.mutating.failurePolicy=${mutating},webhook.validating.failurePolicy=${validating},webhook.timeoutSeconds=${timeout}`,
    ]);
    for (const w of webhooksOf(one(objs, "MutatingWebhookConfiguration"))) {
      t.equal(w.failurePolicy, mutating, `${w.name} failurePolicy`);
      t.equal(w.timeoutSeconds, timeout, `${w.name} timeoutSeconds`);
    }
    for (const w of webhooksOf(one(objs, "ValidatingWebhookConfiguration"))) {
      t.equal(w.failurePolicy, validating, `${w.name} failurePolicy`);
      t.equal(w.timeoutSeconds, timeout, `${w.name} timeoutSeconds`);
    }
  }
});

t.test("webhook.tls.clientCA: a ConfigMap with the CA, mounted and passed as --client-ca-file", async (t) => {
  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  const objs = await render(["--set-string", `webhook.tls.clientCA=${pem}`]);
  const cm = one(objs, "ConfigMap", `${release}-webhook-client-ca`) as unknown as {
    data: Record<string, string>;
  };
  t.equal(cm.data["ca.crt"], pem);
  const spec = podSpec(one(objs, "Deployment", `${release}-webhook`));
  const c = spec.containers[0]!;
  t.ok(c.args!.includes("--client-ca-file=/etc/webhook/client-ca/ca.crt"));
  t.match(c.volumeMounts, [
    {},
    {},
    {},
    { name: "client-ca", mountPath: "/etc/webhook/client-ca", readOnly: true },
  ]);
  t.match(
    spec.volumes!.find((v) => v.name === "client-ca"),
    { configMap: { name: `${release}-webhook-client-ca` } },
  );
  const none = await renderCi("default");
  t.notOk(has(none, "ConfigMap", `${release}-webhook-client-ca`), "off by default");
  t.notOk(
    podSpec(one(none, "Deployment", `${release}-webhook`)).containers[0]!.args!.some((a) =>
      a.includes("client-ca"),
    ),
  );
});

t.test("match conditions keep unrelated objects away from the webhook", async (t) => {
  const objs = await renderCi("default");
  const byName = Object.fromEntries(allWebhooks(objs).map((w) => [w.name, w]));
  const cel = (n: string) => byName[n]?.matchConditions?.map((c) => c.expression.replace(/\s+/g, " "));
  const usesClaim =
    "has(object.spec.volumes) && object.spec.volumes.exists(v, has(v.persistentVolumeClaim) || has(v.ephemeral))";
  const notDeleting = "!has(object.metadata.deletionTimestamp)";
  const injected =
    "(has(object.metadata.labels) && 'done.sidecar.juicefs.com/inject' in object.metadata.labels && object.metadata.labels['done.sidecar.juicefs.com/inject'] == 'true')";
  t.same(cel("mutate-pod.csi.juicefs.com"), [`(${usesClaim}) || ${injected}`]);
  t.same(cel("validate-pod.csi.juicefs.com"), [
    usesClaim,
    "has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('juicefs.com/sidecar-'))",
  ]);
  t.same(cel("validate-pv.csi.juicefs.com"), [
    "has(object.spec.csi) && object.spec.csi.driver == 'csi.juicefs.com'",
    notDeleting,
  ]);
  t.same(cel("validate-storageclass.csi.juicefs.com"), [
    "has(object.provisioner) && object.provisioner == 'csi.juicefs.com'",
    notDeleting,
  ]);
  t.same(cel("validate-pvc.csi.juicefs.com"), [
    "has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('juicefs/'))",
    notDeleting,
  ]);
  t.same(cel("validate-secret.csi.juicefs.com"), [notDeleting]);
  t.same(byName["validate-pod.csi.juicefs.com"]?.objectSelector, {
    matchExpressions: [{ key: labels.injectDisable, operator: "NotIn", values: ["true"] }],
  });
});

t.test("the webhook can be turned off, and validation alone", async (t) => {
  const noValidation = await render(["--set", "webhook.validating.enabled=false"]);
  t.ok(has(noValidation, "MutatingWebhookConfiguration"));
  t.notOk(has(noValidation, "ValidatingWebhookConfiguration"));
  const off = await render(["--set", "webhook.enabled=false"]);
  for (const kind of ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Service", "Issuer"])
    t.notOk(has(off, kind), `no ${kind}`);
  t.notOk(has(off, "Deployment", `${release}-webhook`));
  t.notOk(has(off, "Secret", tlsSecretName));
  t.notOk(has(off, "ServiceAccount", `${release}-webhook`));
  t.ok(has(off, "DaemonSet"), "the driver itself still installs");
});

t.test("webhook pods: 2 replicas, non-root, read-only, no capabilities, spread, PDB", async (t) => {
  const objs = await renderCi("default");
  const d = one(objs, "Deployment", `${release}-webhook`) as K8sObject & {
    spec: { replicas: number; strategy: unknown };
  };
  t.equal(d.spec.replicas, 2);
  t.match(
    d.spec.strategy,
    { rollingUpdate: { maxUnavailable: 0 } },
    "never below the asked replicas in a rollout",
  );
  const spec = podSpec(d);
  t.match(spec.securityContext, { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
  t.match(container(d, "webhook").securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
  });
  t.match(spec.affinity, {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          podAffinityTerm: {
            topologyKey: "kubernetes.io/hostname",
            labelSelector: { matchLabels: { "app.kubernetes.io/component": "webhook" } },
          },
        },
      ],
    },
  });
  const pdb = one(objs, "PodDisruptionBudget", `${release}-webhook`) as K8sObject & {
    spec: { maxUnavailable: number; selector: { matchLabels: Record<string, string> } };
  };
  t.equal(pdb.spec.maxUnavailable, 1);
  const template = (d as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } })
    .spec.template.metadata.labels;
  for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels))
    t.equal(template[k], v, `PDB selects pods by ${k}`);
  const certs = spec.volumes?.find((v) => v.name === "certs") as
    | { secret?: { secretName: string } }
    | undefined;
  t.equal(certs?.secret?.secretName, tlsSecretName);
  t.notOk(
    container(d, "webhook").volumeMounts?.some((m) => "subPath" in m),
    "no subPath: renewed certificates reach the process",
  );
});

function checkHelmTls(t: Test, objs: K8sObject[]) {
  const secret = one(objs, "Secret", tlsSecretName);
  t.equal((secret as unknown as { type: string }).type, "kubernetes.io/tls");
  const data = dataOf(secret);
  const ca = new X509Certificate(b64(data["ca.crt"]!));
  const cert = new X509Certificate(b64(data["tls.crt"]!));
  t.ok(ca.ca, "ca.crt is a CA");
  t.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), "tls.crt is signed by ca.crt");
  t.ok(cert.checkPrivateKey(createPrivateKey(b64(data["tls.key"]!))), "tls.key belongs to tls.crt");
  for (const dns of [
    `${release}-webhook`,
    `${release}-webhook.${namespace}`,
    svcDns,
    `${svcDns}.cluster.local`,
  ])
    t.ok(cert.checkHost(dns), `valid for ${dns}`);
  const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
  t.ok(days > 3640 && days <= 3650, `valid for ~10 years (${days.toFixed(0)} days)`);
  for (const w of allWebhooks(objs))
    t.equal(w.clientConfig.caBundle, data["ca.crt"], `${w.name} trusts the CA`);
  return data;
}

t.test(
  "helm TLS (default): a CA and a serving certificate for the Service, trusted by every webhook",
  async (t) => {
    for (const set of helms) checkHelmTls(t, await renderCi("default", set));
  },
);

t.test(
  "helm TLS: an upgrade reuses the existing Secret (lookup), so the API server keeps trusting it",
  async (t) => {
    const first = await renderCi("default");
    const existing = structuredClone(one(first, "Secret", tlsSecretName));
    // What the cluster holds after the first install: Helm's ownership metadata included.
    (existing.metadata.labels as Record<string, string>)["app.kubernetes.io/managed-by"] = "Helm";
    existing.metadata.annotations = {
      ...(existing.metadata.annotations as Record<string, string>),
      "meta.helm.sh/release-name": release,
      "meta.helm.sh/release-namespace": namespace,
    };
    const renamed = structuredClone(existing);
    (renamed.metadata.annotations as Record<string, string>)["juicefs.com/webhook-dns-name"] =
      "other.kube-system.svc";

    for (const [what, served, reused] of [
      ["issued for this Service", existing, true],
      ["issued for another Service name", renamed, false],
    ] as const) {
      const api = await fakeApiServer([served]);
      try {
        for (const set of helms) {
          const r = await helm(
            [
              "template",
              release,
              chartDir,
              "--namespace",
              namespace,
              "--kube-version",
              kubeVersion,
              "--dry-run=server",
              "--disable-openapi-validation",
              "--kubeconfig",
              api.kubeconfig,
            ],
            set,
          );
          t.equal(r.code, 0, `${set}: ${r.stderr}`);
          const objs = parseManifests(r.stdout);
          const data = checkHelmTls(t, objs);
          if (reused)
            t.same(data, dataOf(existing), `${set}, Secret ${what}: the same CA, certificate and key`);
          else t.not(data["ca.crt"], dataOf(existing)["ca.crt"], `${set}, Secret ${what}: a new CA`);
        }
        t.ok(
          api.requests.includes(`GET /api/v1/namespaces/${namespace}/secrets/${tlsSecretName}`),
          "the chart looked the Secret up",
        );
      } finally {
        await api.close();
      }
    }
  },
);

t.test("cert-manager TLS: self-signed Issuer, Certificate for the Service, CA injected", async (t) => {
  const objs = await renderCi("cert-manager-values.yaml");
  t.notOk(has(objs, "Secret", tlsSecretName), "cert-manager writes the Secret, not the chart");
  const issuer = one(objs, "Issuer") as K8sObject & { spec: unknown };
  t.same(issuer.spec, { selfSigned: {} });
  const cert = one(objs, "Certificate") as K8sObject & {
    spec: {
      secretName: string;
      dnsNames: string[];
      issuerRef: { name: string; kind: string };
      duration: string;
    };
  };
  t.equal(cert.spec.secretName, tlsSecretName, "the Secret the webhook pods mount");
  t.ok(cert.spec.dnsNames.includes(svcDns));
  t.match(cert.spec.issuerRef, { name: issuer.metadata.name, kind: "Issuer" });
  t.equal(cert.spec.duration, "2160h");
  for (const kind of ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]) {
    const cfg = one(objs, kind);
    t.equal(
      (cfg.metadata.annotations as Record<string, string>)["cert-manager.io/inject-ca-from"],
      `${namespace}/${cert.metadata.name}`,
    );
    for (const w of webhooksOf(cfg))
      t.notOk(w.clientConfig.caBundle, `${w.name}: caBundle left to cert-manager`);
  }
  const withIssuer = await render([
    "--set",
    "webhook.tls.source=certManager,webhook.tls.certManager.issuerRef.name=corp-ca,webhook.tls.certManager.issuerRef.kind=ClusterIssuer",
  ]);
  t.notOk(has(withIssuer, "Issuer"), "an existing issuer: none created");
  t.match((one(withIssuer, "Certificate") as unknown as { spec: unknown }).spec, {
    issuerRef: { name: "corp-ca", kind: "ClusterIssuer", group: "cert-manager.io" },
  });
});

t.test("provided TLS: the user's PEMs in the Secret and the CA in every webhook", async (t) => {
  const objs = await renderCi("provided-certs-values.yaml");
  const data = dataOf(one(objs, "Secret", tlsSecretName));
  t.match(b64(data["tls.crt"]!), /^-----BEGIN CERTIFICATE-----/);
  t.match(b64(data["tls.key"]!), /^-----BEGIN PRIVATE KEY-----/);
  const ca = new X509Certificate(b64(data["ca.crt"]!));
  t.ok(new X509Certificate(b64(data["tls.crt"]!)).checkIssued(ca));
  for (const w of allWebhooks(objs)) t.equal(w.clientConfig.caBundle, data["ca.crt"]);
  t.notOk(has(objs, "Certificate"));
});
