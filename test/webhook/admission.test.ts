// The AdmissionReview envelope and the answer helpers: decoding names what is wrong, answers keep
// the uid, patches are RFC 6902 diffs with JSON Pointer escaping, warnings are bounded.
import t from "tap";
import {
  allowed,
  decodeReview,
  denied,
  errored,
  jsonDeeperThan,
  patched,
  toReviewResponse,
} from "../../webhook/admission.ts";
import { applyPatch, decodePatch } from "./helpers.ts";

const review = (request: unknown, extra: object = {}) => ({
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  request,
  ...extra,
});
const req = {
  uid: "u-1",
  kind: { group: "", version: "v1", kind: "Pod" },
  resource: { group: "", version: "v1", resource: "pods" },
  operation: "CREATE",
  namespace: "default",
  object: { metadata: { name: "x" } },
};

t.test("decodeReview accepts a v1 review and tolerates unknown fields", async (t) => {
  const d = decodeReview(review({ ...req, newField: 1 }, { extra: true }));
  t.ok(d.ok);
  if (d.ok) t.equal(d.request.uid, "u-1");
});

t.test("jsonDeeperThan: one pass, strings skipped", async (t) => {
  t.equal(jsonDeeperThan("[[[1]]]", 3), false);
  t.equal(jsonDeeperThan("[[[[1]]]]", 3), true);
  t.equal(jsonDeeperThan(`{"a":"${"[".repeat(50)}"}`, 3), false, "brackets inside strings do not count");
  t.equal(jsonDeeperThan('["a\\"b",[[1]]]', 2), true, "an escaped quote does not end the string");
  t.equal(jsonDeeperThan('["a\\"b",[[1]]]', 3), false);
  t.equal(
    jsonDeeperThan('["\\\\",[[1]]]', 2),
    true,
    "an escaped backslash does not escape the quote after it",
  );
  t.equal(jsonDeeperThan(`${"[".repeat(20000)}${"]".repeat(20000)}`, 10000), true, "no recursion");
});

t.test("decodeReview names what is wrong", async (t) => {
  const cases: [unknown, RegExp, string | undefined][] = [
    [undefined, /request body is empty/, undefined],
    [null, /request body is empty/, undefined],
    [42, /JSON number/, undefined],
    [[review(req)], /JSON array/, undefined],
    // A wrong envelope with a request uid is still answered in a review (issue 12).
    [{ ...review(req), kind: "Pod" }, /kind is "Pod"/, "u-1"],
    [{ ...review(req), apiVersion: "admission.k8s.io/v1beta1" }, /only "admission\.k8s\.io\/v1"/, "u-1"],
    [{ ...review(req), apiVersion: undefined }, /apiVersion is missing/, "u-1"],
    [{ kind: "Pod", request: { uid: 7 } }, /kind is "Pod"/, undefined],
    [review(undefined), /request is missing/, undefined],
    [review("req"), /request is missing/, undefined],
    [review({ ...req, uid: "" }), /request\.uid is missing/, undefined],
    [review({ ...req, uid: 7 }), /request\.uid is missing/, undefined],
    [review({ ...req, operation: "PATCH" }), /request\.operation is "PATCH"/, "u-1"],
    [review({ ...req, operation: undefined }), /request\.operation is missing/, "u-1"],
    [review({ ...req, kind: "Pod" }), /request\.kind is missing/, "u-1"],
    [review({ ...req, resource: {} }), /request\.resource is missing/, "u-1"],
    [review({ ...req, object: [] }), /request\.object is a JSON array/, "u-1"],
    [review({ ...req, oldObject: "x" }), /request\.oldObject is a JSON string/, "u-1"],
    [review({ ...req, object: { metadata: 1 } }), /request\.object\.metadata is a JSON number/, "u-1"],
    [review({ ...req, namespace: 3 }), /request\.namespace is not a string/, "u-1"],
  ];
  for (const [body, message, uid] of cases) {
    const d = decodeReview(body);
    t.equal(d.ok, false, String(message));
    if (!d.ok) {
      t.match(d.message, message);
      t.equal(d.uid, uid, `uid for ${message}`);
    }
  }
  const long = decodeReview({ ...review(req), kind: "x".repeat(500) });
  t.ok(!long.ok && long.message.length < 200, "long values are shortened in messages");
});

t.test("answers keep the uid and carry status, patch and warnings", async (t) => {
  t.same(toReviewResponse("a", allowed()), {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    response: { uid: "a", allowed: true },
  });
  t.same(toReviewResponse("b", denied("no", ["w"])).response, {
    uid: "b",
    allowed: false,
    status: { code: 403, message: "no", reason: "Forbidden" },
    warnings: ["w"],
  });
  t.same(toReviewResponse("c", errored(400, "bad")).response.status, {
    code: 400,
    message: "bad",
    reason: "BadRequest",
  });
  t.same(toReviewResponse("d", errored(500, "boom")).response.status, {
    code: 500,
    message: "boom",
    reason: "InternalError",
  });
  const many = toReviewResponse("e", allowed(Array.from({ length: 50 }, (_, i) => `${i}${"w".repeat(400)}`)));
  t.equal(many.response.warnings?.length, 20, "at most 20 warnings");
  t.ok(
    many.response.warnings?.every((w) => w.length <= 256 && w.endsWith("...")),
    "long warnings are cut",
  );
});

t.test("patched: the RFC 6902 diff, escaped keys, none when equal", async (t) => {
  const original = {
    metadata: { labels: { "a/b": "1", "c~d": "2" }, annotations: { keep: "x" } },
    spec: { containers: [{ name: "app" }] },
  };
  const mutated = structuredClone(original) as typeof original & {
    metadata: { labels: Record<string, string> };
  };
  mutated.metadata.labels["done.sidecar.juicefs.com/inject"] = "true";
  mutated.metadata.labels["c~d"] = "3";
  mutated.spec.containers.unshift({ name: "sidecar" });
  const r = patched(original, mutated, ["note"]);
  t.ok(r.allowed);
  const response = toReviewResponse("u", r);
  t.equal(response.response.patchType, "JSONPatch");
  const ops = decodePatch(response)!;
  const paths = ops.map((o) => o.path);
  t.ok(paths.includes("/metadata/labels/done.sidecar.juicefs.com~1inject"), "/ is escaped as ~1");
  t.ok(paths.includes("/metadata/labels/c~0d"), "~ is escaped as ~0");
  t.same(applyPatch(original, ops), mutated, "the patch applies cleanly to the original");
  t.same(response.response.warnings, ["note"]);
  t.same(patched(original, structuredClone(original)), { allowed: true }, "no patch when nothing changed");
});
