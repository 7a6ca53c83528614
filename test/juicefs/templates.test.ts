// ${.node.*} / ${.pvc.*} templates of the Go JuiceFS CSI Driver in mountOptions and subPath (issue 13):
// filled where the objects are known, an unknown reference is always an error naming it, and
// validation (no objects given) checks references without filling them.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the templates are ${...} in plain strings
import t from "tap";
import { resolvePathPattern } from "../../driver/csi/path-pattern.ts";
import {
  fillTemplates,
  parseSettings,
  type TemplateObjects,
  templateNeeds,
} from "../../driver/juicefs/index.ts";
import { input } from "./fixtures.ts";

const objs: TemplateObjects = {
  node: { name: "node-1", podCIDR: "10.244.1.0/24", labels: { zone: "zone-a" }, annotations: { rack: "r7" } },
  pvc: { name: "data", namespace: "team-a", labels: { app: "db" }, annotations: { tier: "gold" } },
};

t.test("every documented reference is filled", async (t) => {
  const cases: [string, string][] = [
    ["${.node.name}", "node-1"],
    ["${.node.podCIDR}", "10.244.1.0/24"],
    ["${.node.labels.zone}", "zone-a"],
    ["${.node.annotations.rack}", "r7"],
    ["${.pvc.name}", "data"],
    ["${.pvc.namespace}", "team-a"],
    ["${.pvc.labels.app}", "db"],
    ["${.pvc.annotations.tier}", "gold"],
    ["${.PVC.namespace}-${ .PVC.name }", "team-a-data"],
    ["cache-dir=/var/jfs/${.node.labels.zone}", "cache-dir=/var/jfs/zone-a"],
  ];
  for (const [tpl, want] of cases) t.same(fillTemplates(tpl, objs), { value: want, errors: [] }, tpl);
  t.same([...templateNeeds(["${.node.name}", "x", "${.pvc.labels.a}"])].sort(), ["node", "pvc"]);
  t.same([...templateNeeds(["no templates", "${.pv.name}"])], []);
});

t.test("unknown references, missing keys and missing objects are errors naming them", async (t) => {
  t.match(fillTemplates("${.node.uid}", objs).errors[0], /unknown reference \$\{\.node\.uid\}; known: /);
  t.match(fillTemplates("${.pod.name}", objs).errors[0], /unknown reference \$\{\.pod\.name\}/);
  t.match(fillTemplates("${.node.labels}", objs).errors[0], /needs a key/);
  t.match(fillTemplates("${.node.namespace}", objs).errors[0], /a Node has no namespace/);
  t.match(fillTemplates("${.node.labels.nope}", objs).errors[0], /Node node-1 has no label "nope"/);
  t.match(
    fillTemplates("${.pvc.name}", {}).errors[0],
    /needs the PersistentVolumeClaim, which is not known here/,
  );
  t.same(fillTemplates("${.pvc.name}", {}, { keepUnknown: true }), { value: "${.pvc.name}", errors: [] });
  t.match(fillTemplates("${.node.annotations.rack}", objs, { forbidden: /r/ }).errors[0], /cannot hold/);
});

t.test("parseSettings fills mountOptions and subPath from the objects it is given", async (t) => {
  const r = parseSettings(
    input({
      pvMountOptions: ["cache-dir=/var/jfsCache/${.node.labels.zone}", "cache-size=100"],
      volumeContext: { subPath: "${.pvc.namespace}/${.pvc.name}-${.node.name}" },
      templateObjects: objs,
    }),
  );
  t.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  if (r.ok) {
    t.same(r.settings.cacheDirs, ["/var/jfsCache/zone-a"]);
    t.equal(r.settings.subPath, "team-a/data-node-1");
  }
  const missing = parseSettings(
    input({ pvMountOptions: ["cache-dir=/c/${.node.name}"], templateObjects: {} }),
  );
  t.notOk(missing.ok, "a mount without the Node refuses the template");
  if (!missing.ok)
    t.match(
      missing.errors[0]?.message ?? "",
      /PersistentVolume pvc-1 mountOptions: \$\{\.node\.name\} needs the Node/,
    );
  const slash = parseSettings(
    input({ volumeContext: { subPath: "${.node.podCIDR}" }, templateObjects: objs }),
  );
  t.notOk(slash.ok, "a value with / cannot become a path element");
  const validating = parseSettings(input({ pvMountOptions: ["cache-dir=/c/${.node.name}"] }));
  t.ok(validating.ok, "validation without objects accepts a known reference");
  const typo = parseSettings(input({ pvMountOptions: ["cache-dir=/c/${.nod.name}"] }));
  t.notOk(typo.ok, "and refuses an unknown one");
  if (!typo.ok) t.match(typo.errors[0]?.message ?? "", /unknown reference \$\{\.nod\.name\}/);
});

t.test("pathPattern: the controller fills ${.pvc.*} and keeps ${.node.*} for the node plugin", async (t) => {
  t.equal(
    resolvePathPattern("${.pvc.namespace}/${.node.name}", { name: "data", namespace: "team-a" }),
    "team-a/${.node.name}",
  );
  t.throws(() => resolvePathPattern("${.node.uid}", { name: "d", namespace: "n" }), /unknown reference/);
});
