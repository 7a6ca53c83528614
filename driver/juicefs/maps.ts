// Small YAML/JSON map readers and Kubernetes name validators shared by the settings parser.
import { parse } from "yaml";

/** Parse a YAML (or JSON, which is YAML) document that must be a flat map of scalars; values become strings. */
export function parseStringMap(text: string): { map: Record<string, string> } | { error: string } {
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 10, prettyErrors: false, uniqueKeys: true });
  } catch (e) {
    const msg = e instanceof Error ? (e.message.split("\n")[0] ?? "") : String(e);
    return { error: `is not valid YAML or JSON (${msg})` };
  }
  if (doc === null || doc === undefined) return { map: {} };
  if (typeof doc !== "object" || Array.isArray(doc))
    return { error: 'must be a map (key: value), e.g. {"a": "b"}' };
  const map: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (v === null || v === undefined) map[k] = "";
    else if (
      typeof v === "string" ||
      typeof v === "number" ||
      typeof v === "boolean" ||
      typeof v === "bigint"
    )
      map[k] = String(v);
    else return { error: `has a nested value under "${k}"; values must be strings, numbers or booleans` };
  }
  return { map: { ...map } };
}

const dns1123Label = "[a-z0-9](?:[-a-z0-9]*[a-z0-9])?";
const dns1123SubdomainRe = new RegExp(`^${dns1123Label}(?:\\.${dns1123Label})*$`);

/** DNS-1123 subdomain (names of Secrets, PVCs, ...). */
export const isDns1123Subdomain = (s: string): boolean => s.length <= 253 && dns1123SubdomainRe.test(s);

const qualifiedNameRe = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** Kubernetes qualified name (label and annotation keys): optional DNS-subdomain prefix + "/" + name (<= 63). */
export function isQualifiedName(s: string): boolean {
  const parts = s.split("/");
  if (parts.length > 2) return false;
  if (parts.length === 2 && (parts[0] === "" || !isDns1123Subdomain(parts[0]!))) return false;
  return qualifiedNameRe.test(parts[parts.length - 1]!);
}

/** Kubernetes label value: empty, or <= 63 of [A-Za-z0-9-_.] starting and ending with an alphanumeric. */
export const isLabelValue = (s: string): boolean =>
  s === "" || /^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(s);

/** Environment variable name as Kubernetes validates it (before the 1.34 relaxation). */
export const isEnvName = (s: string): boolean => /^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(s);
