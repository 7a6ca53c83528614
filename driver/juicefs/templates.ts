// Templates in mountOptions and pathPattern, as the Go JuiceFS CSI Driver documents them (issue 13):
// `${.node.name}`, `${.node.podCIDR}`, `${.node.labels.KEY}`, `${.node.annotations.KEY}`,
// `${.pvc.name}`, `${.pvc.namespace}`, `${.pvc.labels.KEY}`, `${.pvc.annotations.KEY}` (object names in
// any case: the Go docs write `.PVC`). Pure: the caller passes the objects it knows (the node plugin its
// Node and the claim of the PV; the controller the claim); an unknown reference is always an error, and
// a reference to an object the caller does not know is left as written only when the caller asks to
// validate (admission), never when it mounts.

/** The parts of a Node and a PVC templates can read. */
export interface TemplateObjects {
  node?: {
    name: string;
    podCIDR?: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
  pvc?: {
    name: string;
    namespace: string;
    /** Read only by the global config's pvcSelector.matchStorageClassName. */
    storageClassName?: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
}

export type TemplateObject = "node" | "pvc";

// A template starts with a dot (`${.node.name}`): any other `${...}` is literal text, as a value may hold
// one (passwords, shell snippets in options) and must reach the client verbatim.
const refRe = /\$\{\s*(\.[^}]*?)\s*\}/g;
const exprRe = /^\.(node|pvc|pv)\.(name|namespace|podcidr|labels|annotations)(?:\.(.+))?$/i;

interface Ref {
  text: string;
  obj: "node" | "pvc" | "pv";
  field: "name" | "namespace" | "podCIDR" | "labels" | "annotations";
  key?: string;
}

/** Parses one `${...}` expression; a string is the error. */
function parseRef(text: string, expr: string): Ref | string {
  const m = exprRe.exec(expr);
  if (!m)
    return `unknown reference ${text}; known: \${.node.name}, \${.node.podCIDR}, \${.node.labels.KEY}, \${.node.annotations.KEY}, \${.pvc.name}, \${.pvc.namespace}, \${.pvc.labels.KEY}, \${.pvc.annotations.KEY}`;
  const obj = m[1]!.toLowerCase() as Ref["obj"];
  const lower = m[2]!.toLowerCase();
  const field = (lower === "podcidr" ? "podCIDR" : lower) as Ref["field"];
  const key = m[3];
  const keyed = field === "labels" || field === "annotations";
  if (keyed && !key) return `${text} needs a key, e.g. \${.${obj}.${field}.KEY}`;
  if (!keyed && key) return `unknown reference ${text}`;
  if (obj === "node" && field === "namespace") return `unknown reference ${text}: a Node has no namespace`;
  if (obj === "pvc" && field === "podCIDR") return `unknown reference ${text}: podCIDR is a Node field`;
  if (obj === "pv" && field !== "name") return `unknown reference ${text}`;
  return { text, obj, field, ...(key ? { key } : {}) };
}

/** The objects the templates of these texts read (none: nothing to look up). */
export function templateNeeds(texts: readonly string[]): Set<TemplateObject> {
  const out = new Set<TemplateObject>();
  for (const t of texts)
    for (const m of t.matchAll(refRe)) {
      const r = parseRef(m[0], m[1] ?? "");
      if (typeof r !== "string" && r.obj !== "pv") out.add(r.obj);
    }
  return out;
}

export interface FillOptions {
  /** Leave references to objects not in `objs` as written (validation only); default: an error. */
  keepUnknown?: boolean;
  /** Objects whose references stay as written whatever `objs` holds (the controller keeps `.node`). */
  keep?: readonly TemplateObject[];
  /** Refuse values with these characters (e.g. "," in a mount option, "/" in a path element). */
  forbidden?: RegExp;
  /** Why an object absent from `objs` is not known (appended to that error). */
  missingWhy?: string;
}

/** Fills the templates of `text`; errors name the reference and what is missing. */
export function fillTemplates(
  text: string,
  objs: TemplateObjects,
  opts: FillOptions = {},
): { value: string; errors: string[] } {
  const errors: string[] = [];
  const value = text.replace(refRe, (whole: string, expr: string) => {
    const r = parseRef(whole, expr);
    if (typeof r === "string") {
      errors.push(r);
      return whole;
    }
    if (r.obj === "pv") return whole; // pathPattern's ${.pv.name}: the controller's own
    if (opts.keep?.includes(r.obj)) return whole;
    const o = objs[r.obj];
    if (!o) {
      if (!opts.keepUnknown)
        errors.push(
          `${whole} needs the ${r.obj === "node" ? "Node" : "PersistentVolumeClaim"}, which is not known here${opts.missingWhy ? `: ${opts.missingWhy}` : ""}`,
        );
      return whole;
    }
    let v: string | undefined;
    if (r.field === "labels" || r.field === "annotations") v = o[r.field][r.key!];
    else v = (o as unknown as Record<string, string | undefined>)[r.field];
    if (v === undefined || v === "") {
      const what =
        r.obj === "node"
          ? `Node ${objs.node?.name}`
          : `PersistentVolumeClaim ${objs.pvc?.namespace}/${objs.pvc?.name}`;
      errors.push(`${whole}: ${what} has no ${r.key ? `${r.field.slice(0, -1)} "${r.key}"` : r.field}`);
      return whole;
    }
    if (opts.forbidden?.test(v)) {
      errors.push(`${whole}: the value "${v}" contains a character this place cannot hold`);
      return whole;
    }
    return v;
  });
  return { value, errors };
}
