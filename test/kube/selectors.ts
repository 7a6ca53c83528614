// Label and field selectors with the API server's grammar (k8s.io/apimachinery labels.Parse and
// fields.ParseSelector), so the product's queries behave here exactly as against a real cluster.

export type LabelRequirement =
  | { key: string; op: "=" | "!="; values: [string] }
  | { key: string; op: "in" | "notin"; values: string[] }
  | { key: string; op: "exists" | "!exists"; values: [] };

export class SelectorError extends Error {}

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((p) => p.trim()).filter((p) => p !== "");
}

const keyRe = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$/;
const valueRe = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function checkKey(k: string, whole: string): string {
  if (!keyRe.test(k))
    throw new SelectorError(`unable to parse requirement: invalid label key "${k}" in "${whole}"`);
  return k;
}
function checkValue(v: string, whole: string): string {
  if (v.length > 63 || !valueRe.test(v))
    throw new SelectorError(`unable to parse requirement: invalid label value "${v}" in "${whole}"`);
  return v;
}

export function parseLabelSelector(s: string | undefined): LabelRequirement[] {
  if (!s) return [];
  return splitTop(s).map((part): LabelRequirement => {
    let m = /^(\S+?)\s+(in|notin)\s+\((.*)\)$/.exec(part);
    if (m) {
      const values = m[3]!
        .split(",")
        .map((v) => v.trim())
        .map((v) => checkValue(v, part));
      return { key: checkKey(m[1]!, part), op: m[2] as "in" | "notin", values };
    }
    m = /^(!?)([^=!\s]+)$/.exec(part);
    if (m) return { key: checkKey(m[2]!, part), op: m[1] ? "!exists" : "exists", values: [] };
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
    if (m) {
      const op = m[2] === "!=" ? "!=" : "=";
      return { key: checkKey(m[1]!, part), op, values: [checkValue(m[3]!, part)] };
    }
    throw new SelectorError(`unable to parse requirement: "${part}"`);
  });
}

export function matchLabels(reqs: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.hasOwn(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case "=":
        return has && v === r.values[0];
      case "!=":
        return !has || v !== r.values[0];
      case "in":
        return has && r.values.includes(v!);
      case "notin":
        return !has || !r.values.includes(v!);
      case "exists":
        return has;
      case "!exists":
        return !has;
    }
    return false;
  });
}

export interface FieldRequirement {
  path: string;
  op: "=" | "!=";
  value: string;
}

/** Fields each resource can be selected by (a real API server refuses others with 400). */
export const selectableFields: Record<string, string[]> = {
  pods: [
    "spec.nodeName",
    "status.phase",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.podIP",
    "status.nominatedNodeName",
  ],
  events: [
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
  ],
  secrets: ["type"],
  namespaces: ["status.phase"],
  nodes: ["spec.unschedulable"],
  jobs: ["status.successful"],
  persistentvolumeclaims: [],
  persistentvolumes: [],
};

export function parseFieldSelector(s: string | undefined, plural: string): FieldRequirement[] {
  if (!s) return [];
  const allowed = new Set(["metadata.name", "metadata.namespace", ...(selectableFields[plural] ?? [])]);
  return splitTop(s).map((part) => {
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw new SelectorError(`invalid selector: '${part}'; can't understand '${part}'`);
    const path = m[1]!;
    if (!allowed.has(path))
      throw new SelectorError(`"${path}" is not a known field selector: only "${[...allowed].join('", "')}"`);
    return { path, op: m[2] === "!=" ? "!=" : "=", value: m[3]! };
  });
}

function fieldValue(obj: unknown, path: string): string {
  let cur: unknown = obj;
  for (const p of path.split(".")) {
    if (cur === null || typeof cur !== "object") return "";
    cur = (cur as Record<string, unknown>)[p];
  }
  if (cur === undefined || cur === null) return "";
  if (path === "source" && typeof cur === "object")
    return String((cur as { component?: string }).component ?? "");
  return String(cur);
}

export function matchFields(reqs: FieldRequirement[], obj: unknown): boolean {
  return reqs.every((r) => (fieldValue(obj, r.path) === r.value) === (r.op === "="));
}
