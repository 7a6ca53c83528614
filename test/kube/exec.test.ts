// pods/exec on the stand-in cluster: the WebSocket channel protocol (v5 and v4) as the real API server
// and kubelet speak it, spoken to by client-node's Exec (through cli/warmup/exec.ts) and by a raw `ws`
// client that checks the frames byte by byte. The commands really run, in the container's context.
import type * as k8s from "@kubernetes/client-node";
import t from "tap";
import { WebSocket } from "ws";
import { ExecRefused, execInContainer } from "../../cli/warmup/exec.ts";
import { eventually, type StandInCluster, startCluster } from "./cluster.ts";

let c: StandInCluster;
t.before(async () => {
  c = await startCluster({ nodes: ["node-1"], api: { tls: false } });
  const pod: k8s.V1Pod = {
    metadata: { name: "box" },
    spec: {
      nodeName: "node-1",
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: "main",
          image: "busybox",
          command: ["sleep", "3600"],
          env: [{ name: "GREETING", value: "hi" }],
        },
        { name: "other", image: "busybox", command: ["sleep", "3600"] },
      ],
    },
  };
  await c.core.createNamespacedPod({ namespace: "default", body: pod });
  await eventually("pod box running", async () => {
    const p = await c.core.readNamespacedPod({ namespace: "default", name: "box" });
    return p.status?.containerStatuses?.every((s) => s.state?.running);
  });
});
t.teardown(() => c?.stop());

const run = (command: string[], more: { container?: string; tty?: boolean } = {}) => {
  let out = "";
  let err = "";
  return execInContainer(c.kc, {
    namespace: "default",
    pod: "box",
    container: more.container ?? "main",
    command,
    tty: more.tty === true,
    onStdout: (b) => {
      out += b.toString();
    },
    onStderr: (b) => {
      err += b.toString();
    },
  }).then((r) => ({ ...r, out, err }));
};

t.test(
  "client-node's Exec: v5 negotiated, stdout and stderr apart, the exit code from the Status",
  async (t) => {
    const r = await run(["sh", "-c", 'echo out; echo "$GREETING" >&2; exit 3']);
    t.equal(r.protocol, "v5.channel.k8s.io");
    t.equal(r.out, "out\n");
    t.equal(r.err, "hi\n", "the container's environment");
    t.equal(r.exitCode, 3);
    t.equal(r.status.status, "Failure");
    t.equal(r.status.reason, "NonZeroExitCode");
    t.same(r.status.details?.causes, [{ reason: "ExitCode", message: "3" }]);
    t.match(
      r.status.message,
      /^command terminated with non-zero exit code: error executing command \[sh -c .*\], exit code 3$/,
    );
    const ok = await run(["true"]);
    t.equal(ok.exitCode, 0);
    t.same(ok.status, { metadata: {}, status: "Success" });
    t.ok(c.api.accessLog.get("admin")?.has("create /pods/exec default"), "authorised as create on pods/exec");
  },
);

t.test("the argv is passed as it is: no shell parses it", async (t) => {
  const r = await run(["echo", "$(id -u)", "a;b", "it's"]);
  t.equal(r.out, "$(id -u) a;b it's\n");
});

t.test("with a TTY the command sees a terminal and stderr comes on stdout", async (t) => {
  const r = await run(
    [
      "node",
      "-e",
      "process.stdout.write(String(process.stdout.isTTY)); process.stderr.write('E'); process.exit(2)",
    ],
    { tty: true },
  );
  t.equal(r.exitCode, 2);
  t.match(r.out, /^true/);
  t.match(r.out, /E/);
  t.equal(r.err, "");
});

/** A raw WebSocket session: every frame as received. */
async function raw(
  query: string,
  protocols: string[],
  onOpen?: (ws: WebSocket) => void,
): Promise<{ protocol: string; frames: Buffer[] }> {
  const url = `${c.api.url.replace(/^http/, "ws")}/api/v1/namespaces/default/pods/box/exec?${query}`;
  const ws = new WebSocket(url, protocols, { headers: { Authorization: `Bearer ${c.api.token}` } });
  const frames: Buffer[] = [];
  ws.on("message", (d: Buffer) => frames.push(Buffer.from(d)));
  await new Promise<void>((resolve, reject) => {
    ws.on("open", () => onOpen?.(ws));
    ws.on("close", () => resolve());
    ws.on("error", reject);
  });
  return { protocol: ws.protocol, frames };
}

t.test(
  "v4: an empty stdout frame first, output frames, then the Status on channel 3 and close",
  async (t) => {
    const s = await raw(
      "container=main&stdout=1&stderr=1&command=sh&command=-c&command=echo%20a%3B%20echo%20b%20%3E%262%3B%20exit%207",
      ["v4.channel.k8s.io"],
    );
    t.equal(s.protocol, "v4.channel.k8s.io");
    t.same([...s.frames[0]!], [1], "the session-is-up message: channel byte only");
    const byChannel = (ch: number) =>
      Buffer.concat(s.frames.filter((f) => f[0] === ch).map((f) => f.subarray(1))).toString();
    t.equal(byChannel(1), "a\n");
    t.equal(byChannel(2), "b\n");
    const last = s.frames.at(-1)!;
    t.equal(last[0], 3, "the Status comes last, on the error channel");
    t.same(JSON.parse(last.subarray(1).toString()), {
      metadata: {},
      status: "Failure",
      message:
        "command terminated with non-zero exit code: error executing command [sh -c echo a; echo b >&2; exit 7], exit code 7",
      reason: "NonZeroExitCode",
      details: { causes: [{ reason: "ExitCode", message: "7" }] },
    });
  },
);

t.test("v5: stdin on channel 0, ended by the CLOSE signal (255, 0)", async (t) => {
  const s = await raw(
    "container=main&stdin=1&stdout=1&command=cat",
    ["v5.channel.k8s.io", "v4.channel.k8s.io"],
    (ws) => {
      ws.send(Buffer.concat([Buffer.from([0]), Buffer.from("typed\n")]));
      ws.send(Buffer.from([255, 0]));
    },
  );
  t.equal(s.protocol, "v5.channel.k8s.io");
  const out = Buffer.concat(s.frames.filter((f) => f[0] === 1).map((f) => f.subarray(1))).toString();
  t.equal(out, "typed\n", "cat echoed stdin and ended at the close signal");
  t.same(JSON.parse(s.frames.at(-1)!.subarray(1).toString()), { metadata: {}, status: "Success" });
  t.notOk(
    s.frames.some((f) => f[0] === 255),
    "the server never sends CLOSE",
  );
});

t.test("refusals come before the upgrade, with the server's message", async (t) => {
  const refused = (command: string[], container: string) =>
    run(command, { container }).then(
      () => undefined,
      (e: unknown) => e,
    );
  const e1 = (await refused(["true"], "nope")) as ExecRefused;
  t.type(e1, ExecRefused);
  t.equal(e1.code, 400);
  t.equal(e1.message, "container nope is not valid for pod box");

  const e2 = (await refused(["no-such-binary"], "main")) as ExecRefused;
  t.equal(e2.code, 500);
  t.match(e2.message, /executable file not found in \$PATH/);

  const undo = c.api.addFault({
    match: (r) => r.subresource === "exec",
    code: 403,
    message:
      'pods "box" is forbidden: User "dev" cannot create resource "pods/exec" in API group "" in the namespace "default"',
  });
  const e3 = (await refused(["true"], "main")) as ExecRefused;
  undo();
  t.equal(e3.code, 403);
  t.match(e3.message, /cannot create resource "pods\/exec"/);

  const plain = await fetch(`${c.api.url}/api/v1/namespaces/default/pods/box/exec?command=true&stdout=1`, {
    method: "POST",
    headers: { Authorization: `Bearer ${c.api.token}` },
  });
  t.equal(plain.status, 400);
  t.equal(((await plain.json()) as { message: string }).message, "Upgrade request required");

  await t.rejects(raw("container=main&stdout=1&command=true", ["v3.channel.k8s.io"]), /400/);
});

t.test("a session ends with its container", async (t) => {
  const started = Date.now();
  const pending = run(["sleep", "30"], { container: "other" });
  await new Promise((r) => setTimeout(r, 300));
  t.ok(c.kubelet.kill("default", "box", "other"));
  const r = await pending;
  t.not(r.exitCode, 0);
  t.ok(Date.now() - started < 10_000);
});
