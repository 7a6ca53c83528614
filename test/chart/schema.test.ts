// values.schema.json rejects bad values before anything renders, with Helm's error naming the field,
// under Helm 4 and Helm 3 (whose validators word errors differently: both name the field).
import t from "tap";
import { fieldError, helms, template } from "./helpers.ts";

interface Rejection {
  what: string;
  args: string[];
  field: (string | number)[];
  /** Also in the message (the offending key or value). */
  says?: RegExp;
}

const sc = (o: unknown) => ["--set-json", `storageClasses=${JSON.stringify([o])}`];
const goodBackend = { name: "myjfs", metaurl: "redis://redis:6379/1" };

const rejections: Rejection[] = [
  { what: "an unknown top-level key", args: ["--set", "mountmode=pod"], field: [], says: /mountmode/ },
  {
    what: "a mountMode other than pod/sidecar/process",
    args: ["--set", "mountMode=fuse"],
    field: ["mountMode"],
  },
  {
    what: "a mutating failurePolicy other than Fail/Ignore",
    args: ["--set", "webhook.mutating.failurePolicy=fail"],
    field: ["webhook", "mutating", "failurePolicy"],
  },
  {
    what: "a validating failurePolicy other than Fail/Ignore",
    args: ["--set", "webhook.validating.failurePolicy=Retry"],
    field: ["webhook", "validating", "failurePolicy"],
  },
  {
    what: "timeoutSeconds 0",
    args: ["--set", "webhook.timeoutSeconds=0"],
    field: ["webhook", "timeoutSeconds"],
  },
  {
    what: "timeoutSeconds 31",
    args: ["--set", "webhook.timeoutSeconds=31"],
    field: ["webhook", "timeoutSeconds"],
  },
  {
    what: "a bad memory quantity",
    args: ["--set", "controller.resources.limits.memory=2GB"],
    field: ["controller", "resources", "limits", "memory"],
  },
  {
    what: "a bad cpu quantity",
    args: ["--set", "webhook.resources.requests.cpu=1.5.0"],
    field: ["webhook", "resources", "requests", "cpu"],
  },
  {
    what: "a bad Mount Pod quantity in a StorageClass",
    args: sc({ name: "a", backend: goodBackend, mountPod: { resources: { limits: { cpu: "2cores" } } } }),
    field: ["storageClasses", 0, "mountPod", "resources", "limits", "cpu"],
  },
  {
    what: "a StorageClass without a name",
    args: sc({ backend: goodBackend }),
    field: ["storageClasses", 0],
    says: /name/,
  },
  {
    what: "a StorageClass without metaurl",
    args: sc({ name: "a", backend: { name: "myjfs" } }),
    field: ["storageClasses", 0, "backend"],
    says: /metaurl/,
  },
  {
    what: "a StorageClass without a file system name",
    args: sc({ name: "a", backend: { metaurl: "redis://r/1" } }),
    field: ["storageClasses", 0, "backend"],
    says: /name/,
  },
  {
    what: "a StorageClass without any backend",
    args: sc({ name: "a" }),
    field: ["storageClasses", 0],
    says: /backend/,
  },
  ...["writeback", "writeback=true", "cache-size=100,writeback", " --writeback"].map(
    (opt): Rejection => ({
      what: `writeback in mountOptions (${JSON.stringify(opt)})`,
      args: sc({ name: "a", backend: goodBackend, mountOptions: ["cache-size=100", opt] }),
      field: ["storageClasses", 0, "mountOptions", 1],
    }),
  ),
  {
    what: "provided TLS without the PEMs",
    args: ["--set", "webhook.tls.source=provided"],
    field: ["webhook", "tls", "provided", "cert"],
  },
  {
    what: "an unknown TLS source",
    args: ["--set", "webhook.tls.source=vault"],
    field: ["webhook", "tls", "source"],
  },
  { what: "an unknown log level", args: ["--set", "logLevel=verbose"], field: ["logLevel"] },
  { what: "a relative kubeletDir", args: ["--set", "kubeletDir=var/lib/kubelet"], field: ["kubeletDir"] },
  {
    what: "an unknown key inside webhook",
    args: ["--set", "webhook.validatingWebhook.FailurePolicy=Fail"],
    field: ["webhook"],
    says: /validatingWebhook/,
  },
];

// Start every render at once (helpers cap the concurrency); the tests below await their own.
const runAll = (args: string[]) =>
  Promise.all(helms.map(async (set) => ({ set, run: await template(args, set) })));
const rejected = rejections.map((r) => runAll(r.args));

rejections.forEach((r, i) => {
  t.test(`schema rejects ${r.what}`, async (t) => {
    const runs = await rejected[i]!;
    for (const { set, run } of runs) {
      t.not(run.code, 0, `${set} refuses`);
      t.match(run.stderr, /values don't meet the specifications of the schema/, `${set}: a schema error`);
      t.match(run.stderr, fieldError(r.field, set), `${set} names the field`);
      if (r.says) t.match(run.stderr, r.says, `${set} says what`);
    }
  });
});

// Valid values that the schema must not refuse, grouped into a few renders.
const acceptances: { what: string; args: string[] }[] = [
  {
    what: "timeoutSeconds 1, failurePolicy Ignore, quantities in every notation, enterprise / existing-Secret / disabled StorageClasses, options that merely contain the word writeback, a parent chart's global values",
    args: [
      "--set",
      "webhook.timeoutSeconds=1,webhook.mutating.failurePolicy=Ignore,global.imageRegistry=example.com",
      "--set-json",
      'controller.resources={"requests":{"cpu":0.5,"memory":"1e9"},"limits":{"cpu":2,"memory":"1.5Gi"}}',
      "--set-json",
      `storageClasses=${JSON.stringify([
        { name: "ee", backend: { name: "vol", token: "t" } },
        { name: "ext", existingSecret: "creds" },
        { name: "off", enabled: false },
        {
          name: "words",
          backend: goodBackend,
          mountOptions: ["cache-dir=/var/writeback-cache", "upload-delay=1m"],
          mountPod: {
            resources: { requests: { cpu: "250m", memory: "512Mi" }, limits: { cpu: 0, memory: "0" } },
          },
        },
      ])}`,
    ],
  },
  {
    what: "timeoutSeconds 30 in sidecar mode",
    args: ["--set", "webhook.timeoutSeconds=30,mountMode=sidecar"],
  },
  { what: "process mode", args: ["--set", "mountMode=process"] },
];

const accepted = acceptances.map((a) => runAll(a.args));
acceptances.forEach((a, i) => {
  t.test(`schema accepts ${a.what}`, async (t) => {
    for (const { set, run } of await accepted[i]!) t.equal(run.code, 0, `${set}: ${run.stderr}`);
  });
});

t.test("cross-field checks fail the render with a message naming the values", async (t) => {
  const cases: { args: string[]; says: RegExp }[] = [
    {
      args: ["--set", "mountMode=sidecar,webhook.enabled=false"],
      says: /mountMode: sidecar needs webhook\.enabled: true/,
    },
    {
      args: [
        "--set-json",
        `storageClasses=${JSON.stringify([
          { name: "a", backend: goodBackend },
          { name: "a", backend: goodBackend },
        ])}`,
      ],
      says: /storageClasses\[1\]\.name: "a" is used twice/,
    },
  ];
  const runs = await Promise.all(cases.map((c) => runAll(c.args)));
  cases.forEach((c, i) => {
    for (const { set, run } of runs[i]!) {
      t.not(run.code, 0);
      t.match(run.stderr, c.says, `${set}: ${c.args.join(" ")}`);
    }
  });
});
