// Which containers of an injected pod are JuiceFS clients: the record first, the reference driver's
// names (and ours before the rename) when there is no record, never the envs init containers.
import t from "tap";
import {
  injectedVolumesAnnotation,
  isSidecarClientName,
  sidecarClientContainers,
} from "../../driver/juicefs/injected.ts";

const ctr = (name: string, mounts: { name: string; mountPath: string }[] = []) => ({
  name,
  image: "x",
  volumeMounts: mounts,
});

t.test("names: the reference driver's rule and the legacy one", async (t) => {
  for (const n of ["jfs-mount", "jfs-mount-1", "jfs-mount-12", "juicefs-mount-data"])
    t.ok(isSidecarClientName(n), n);
  for (const n of [
    "jfs-mount-envs",
    "jfs-mount-1-envs",
    "jfs-mount-",
    "jfs-mounts",
    "juicefs-mount-data-envs",
    "app",
  ])
    t.notOk(isSidecarClientName(n), n);
});

t.test("the record names the clients; its envs init container (listed first) is not one", async (t) => {
  const pod = {
    metadata: {
      annotations: {
        [injectedVolumesAnnotation]: JSON.stringify({
          data: { subPath: "jfs/pv-1", container: "jfs-mount" },
        }),
      },
    },
    spec: {
      initContainers: [ctr("jfs-mount-envs"), ctr("jfs-mount", [{ name: "data", mountPath: "/jfs" }])],
      containers: [ctr("jfs-mount-1"), ctr("app")],
      volumes: [{ name: "data", emptyDir: {} }],
    },
  };
  // jfs-mount-1 is the user's own container here: the record says which ones are ours.
  t.same(sidecarClientContainers(pod), ["jfs-mount"]);
});

t.test("no record (the reference driver's pod): by name", async (t) => {
  const pod = {
    metadata: { labels: { "done.sidecar.juicefs.com/inject": "true" } },
    spec: { containers: [ctr("jfs-mount"), ctr("jfs-mount-1"), ctr("app"), ctr("juicefs-mount-old-envs")] },
  };
  t.same(sidecarClientContainers(pod), ["jfs-mount", "jfs-mount-1"]);
});
