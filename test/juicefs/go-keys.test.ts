// Keys of the Go JuiceFS CSI Driver (issue 13): every documented key is honoured, or warned as "not
// supported by this driver: <instead>"; a typo of any key gets the nearest known key; encryption and
// enterprise keys reach `juicefs format` / `auth` / `mount` as the reference driver passes them, with
// secret values only as Secret-backed env entries or Secret files.
import t from "tap";
import { buildMountPod, clientCommands, keys, parseSettings } from "../../driver/juicefs/index.ts";
import { editDistance, nearestKey, unsupportedKeys } from "../../driver/juicefs/known-keys.ts";
import { ceSecret, eeSecret, input, settingsOf } from "./fixtures.ts";

const mp = "/var/lib/juicefs/volume/pvc-1-abc";

t.test("edit distance: insertions, deletions, substitutions and swaps", async (t) => {
  t.equal(editDistance("pathPattern", "pathPattern"), 0);
  t.equal(editDistance("pathpatern", "pathPattern".toLowerCase()), 1);
  t.equal(editDistance("ab", "ba"), 1, "a swap of neighbours is one edit");
  t.equal(editDistance("", "abc"), 3);
  t.equal(editDistance("kitten", "sitting"), 3);
  t.equal(nearestKey("completely-unrelated", ["pathPattern", "juicefs/mount-image"]), undefined);
});

t.test("a typo of any parameter, prefixed or not, names the nearest key", async (t) => {
  const typos: [string, string][] = [
    ["pathpatern", "pathPattern"],
    ["csi.storage.k8s.io/node-publish-secret-nmespace", keys.nodePublishSecretNamespace],
    ["csi.storage.k8s.io/provisioner-secret-nam", keys.provisionerSecretName],
    ["juicefs/mount-cpu-requests", keys.mountCpuRequest],
    ["juicefs/mount-imge", keys.mountImage],
    ["juicefs/mount-service-acount", "juicefs/mount-service-account"],
  ];
  for (const [typo, want] of typos) {
    const r = parseSettings(input({ storageClass: { name: "sc", parameters: { [typo]: "x" } } }));
    t.ok(
      r.warnings.some((w) => w.includes(`"${typo}"`) && w.includes(`did you mean "${want}"`)),
      `${typo} → ${want}: ${JSON.stringify(r.warnings)}`,
    );
    t.notOk(
      r.warnings.some((w) => /check the spelling/.test(w)),
      "no bare 'check the spelling'",
    );
  }
  const far = parseSettings(input({ volumeContext: { "example.com/unrelated-thing": "1" } }));
  t.match(
    far.warnings.join("\n"),
    /"example.com\/unrelated-thing" is not a key this driver knows and is ignored/,
  );
});

t.test("keys Kubernetes puts into volume contexts and parameters are not typos", async (t) => {
  const r = parseSettings(
    input({
      volumeContext: {
        "csi.storage.k8s.io/pod.name": "app",
        "csi.storage.k8s.io/pod.namespace": "default",
        "csi.storage.k8s.io/pod.uid": "u",
        "csi.storage.k8s.io/serviceAccount.name": "default",
        "csi.storage.k8s.io/ephemeral": "false",
        "storage.kubernetes.io/csiProvisionerIdentity": "1-2-csi.juicefs.com",
        "csi.storage.k8s.io/pvc/name": "c",
        "csi.storage.k8s.io/pvc/namespace": "default",
        "csi.storage.k8s.io/pv/name": "pv",
        "csi.storage.k8s.io/controller-expand-secret-name": "s",
        "csi.storage.k8s.io/controller-expand-secret-namespace": "default",
        subPath: "pv",
      },
    }),
  );
  t.same(r.warnings, []);
});

t.test("Go keys this driver does not support: 'not supported by this driver: <instead>'", async (t) => {
  for (const [key, instead] of Object.entries(unsupportedKeys)) {
    const r = parseSettings(input({ storageClass: { name: "sc", parameters: { [key]: "true" } } }));
    t.ok(r.ok, `${key} does not fail the volume`);
    const w = r.warnings.find((x) => x.includes(`"${key}"`));
    t.ok(w, `${key} warns`);
    t.match(w ?? "", "is not supported by this driver: ");
    t.ok(w?.endsWith(instead), `${key}: ${w}`);
  }
});

t.test("juicefs/mount-service-account: the Mount Pod runs as that account, with its token", async (t) => {
  const s = settingsOf({ volumeContext: { "juicefs/mount-service-account": "jfs-irsa" } });
  t.equal(s.serviceAccountName, "jfs-irsa");
  const pod = buildMountPod(s, "node-1", { namespace: "kube-system", secretName: "sec" });
  t.equal(pod.spec?.serviceAccountName, "jfs-irsa");
  t.equal(pod.spec?.automountServiceAccountToken, true);
  const plain = buildMountPod(settingsOf(), "node-1", { namespace: "kube-system", secretName: "sec" });
  t.equal(plain.spec?.automountServiceAccountToken, false);
  t.not(plain.metadata?.name, pod.metadata?.name, "another service account is another client");
  const bad = parseSettings(input({ volumeContext: { "juicefs/mount-service-account": "Not_A_Name" } }));
  t.notOk(bad.ok);
  if (!bad.ok) t.match(bad.errors[0]?.message ?? "", /is not a ServiceAccount name/);
});

t.test("Secret: typos suggested, aliases accepted, enterprise-only keys warned on community", async (t) => {
  const r = parseSettings(input({ secret: { ...ceSecret, "secret-kye": "x", "trash-day": "1" } }));
  t.match(
    r.warnings.join("\n"),
    /key "secret-kye" is not a key this driver knows; did you mean "secret-key"\?/,
  );
  t.match(
    r.warnings.join("\n"),
    /key "trash-day" is not a key this driver knows; did you mean "trash-days"\?/,
  );
  const ce = parseSettings(input({ secret: { ...ceSecret, bucket2: "b", initconfig: "{}" } }));
  t.match(ce.warnings.join("\n"), /"bucket2" is an enterprise edition setting and is ignored/);
  t.match(ce.warnings.join("\n"), /"initconfig" is an enterprise edition setting and is ignored/);
  const ee = settingsOf({ secret: { ...eeSecret, accesskey2: "AK2", secretkey2: "SK2" } });
  t.equal(ee.secret["access-key2"], "AK2", "legacy accesskey2 is access-key2");
  t.equal(ee.secret["secret-key2"], "SK2", "legacy secretkey2 is secret-key2");
});

t.test("Secret values of the new keys never appear in errors", async (t) => {
  const r = parseSettings(
    input({
      secret: { ...ceSecret, passphrase: "PASSPHRASE-SECRET", envs: "{JFS_RSA_PASSPHRASE: also}" },
    }),
  );
  t.notOk(r.ok, "passphrase twice is refused");
  if (!r.ok) {
    t.match(r.errors[0]?.message ?? "", /keep one/);
    t.notMatch(JSON.stringify(r.errors), /PASSPHRASE-SECRET|also/);
  }
});

const rsaKey = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n";

t.test(
  "community encryption: format --encrypt-rsa-key with the key as a Secret file, passphrase by env",
  async (t) => {
    const s = settingsOf({ secret: { ...ceSecret, encrypt_rsa_key: rsaKey, passphrase: "pw" } });
    const c = clientCommands(s, mp);
    t.ok(c.prepare?.includes("--encrypt-rsa-key=/root/.rsa/rsa-key.pem"), JSON.stringify(c.prepare));
    t.same(c.files, [{ dir: "/root/.rsa", file: "rsa-key.pem", secretKey: "encrypt_rsa_key" }]);
    t.ok(
      c.env.some((e) => e.name === "JFS_RSA_PASSPHRASE" && "secretKey" in e && e.secretKey === "passphrase"),
    );
    const argv = JSON.stringify([...(c.prepare ?? []), ...c.mount]);
    t.notMatch(argv, /pw|BEGIN RSA/, "no secret value in argv");
    t.notMatch(argv, /--passphrase/, "the passphrase is never a flag");

    const pod = buildMountPod(s, "node-1", { namespace: "kube-system", secretName: "vol-sec" });
    const vol = pod.spec?.volumes?.find((v) => v.secret?.items?.[0]?.key === "encrypt_rsa_key");
    t.ok(vol, "a Secret volume holds the key");
    t.equal(vol?.secret?.secretName, "vol-sec");
    t.equal(vol?.secret?.items?.[0]?.path, "rsa-key.pem");
    const c0 = pod.spec!.containers[0]!;
    t.same(
      c0.volumeMounts?.find((m) => m.name === vol?.name),
      { name: vol?.name, mountPath: "/root/.rsa", readOnly: true },
    );
    t.notMatch(JSON.stringify(pod), /BEGIN RSA|"pw"/, "no secret value in the pod spec");
    t.equal(c0.name, "jfs-mount", "the reference driver's container name");
  },
);

t.test(
  "enterprise: second bucket and rsa key as the reference driver passes them; initconfig replaces auth",
  async (t) => {
    const s = settingsOf({
      secret: {
        ...eeSecret,
        bucket2: "https://b2",
        "access-key2": "AK2",
        "secret-key2": "SK2",
        encrypt_rsa_key: rsaKey,
        passphrase: "pw",
      },
    });
    const c = clientCommands(s, mp);
    t.same(c.prepare?.slice(0, 3), ["juicefs", "auth", "myjfs"]);
    for (const f of [
      "--bucket2=$(JFS_BUCKET2)",
      "--access-key2=$(ACCESS_KEY2)",
      "--secret-key2=$(SECRET_KEY2)",
    ])
      t.ok(c.prepare?.includes(f), f);
    t.ok(c.mount.includes("--rsa-key=/root/.rsa/rsa-key.pem"), JSON.stringify(c.mount));
    t.notMatch(JSON.stringify([...(c.prepare ?? []), ...c.mount]), /AK2|SK2|https:\/\/b2|pw/);
    const secretEnvs: [string, string][] = [
      ["JFS_BUCKET2", "bucket2"],
      ["ACCESS_KEY2", "access-key2"],
      ["SECRET_KEY2", "secret-key2"],
      ["JFS_RSA_PASSPHRASE", "passphrase"],
    ];
    for (const [name, key] of secretEnvs)
      t.ok(
        c.env.some((e) => e.name === name && "secretKey" in e && e.secretKey === key),
        name,
      );

    const ic = settingsOf({ secret: { ...eeSecret, initconfig: '{"name":"myjfs"}' } });
    const ci = clientCommands(ic, mp);
    t.same(ci.prepare, [
      "install",
      "-D",
      "-m",
      "0600",
      "/etc/juicefs/myjfs.conf",
      "/root/.juicefs/myjfs.conf",
    ]);
    t.same(ci.files, [{ dir: "/etc/juicefs", file: "myjfs.conf", secretKey: "initconfig" }]);
    const pod = buildMountPod(ic, "node-1", { namespace: "kube-system", secretName: "vol-sec" });
    t.ok(
      pod.spec?.volumes?.some(
        (v) => v.secret?.items?.[0]?.key === "initconfig" && v.secret.items[0].path === "myjfs.conf",
      ),
    );
    t.notMatch(JSON.stringify(pod), /"name":"myjfs"\}/, "the config content stays in the Secret");
  },
);

t.test("community ignores the enterprise keys in its commands", async (t) => {
  const c = clientCommands(settingsOf({ secret: { ...ceSecret, bucket2: "b2", "secret-key2": "s" } }), mp);
  t.notMatch(JSON.stringify(c), /bucket2|KEY2/);
});

t.test(
  "writeback: refused naming the loss and the opt-in; config.allowWriteback mounts it with a warning",
  async (t) => {
    const refused = parseSettings(input({ pvMountOptions: ["writeback", "cache-size=100"] }));
    t.notOk(refused.ok);
    if (!refused.ok) {
      const m = refused.errors.map((x) => x.message).join("\n");
      t.match(m, /mount option "writeback" is refused/);
      t.match(m, /lost when that pod is deleted, evicted, OOM-killed or rescheduled/);
      t.match(m, /config\.allowWriteback: true/);
    }
    const allowed = parseSettings(
      input({ pvMountOptions: ["writeback", "upload-delay=1m"], driverConfig: { allowWriteback: true } }),
    );
    t.ok(allowed.ok);
    if (allowed.ok) {
      t.ok(
        allowed.settings.mountOptions.includes("writeback"),
        JSON.stringify(allowed.settings.mountOptions),
      );
      t.ok(allowed.settings.mountOptions.includes("upload-delay=1m"));
      t.equal(
        allowed.warnings.filter((w) => /accepted because config\.allowWriteback is true/.test(w)).length,
        2,
      );
    }
  },
);
