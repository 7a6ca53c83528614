// Keeps credentials out of anything a user or a log sees (gRPC error messages, client log tails).
// Values are removed by content, because a client prints its meta URL or keys in free text.

/** Secret keys whose values are not credentials (a file system name is needed to read errors). */
const notSecret = new Set(["name", "storage"]);
/** Shorter values would blank unrelated words; credentials are never this short. */
const minLength = 4;

/** The values to hide, taken from decoded Secret data. */
export function secretValues(secret: Record<string, string> | undefined): string[] {
  if (!secret) return [];
  const out = new Set<string>();
  for (const [k, v] of Object.entries(secret)) {
    if (notSecret.has(k) || typeof v !== "string") continue;
    const t = v.trim();
    if (t.length >= minLength) out.add(t);
    // A meta URL's password also appears on its own (e.g. in a driver's "connecting to" line).
    const pw = /^[a-z][\w+.-]*:\/\/[^:/@]*:([^@/]+)@/i.exec(t)?.[1];
    if (pw && pw.length >= minLength) out.add(pw);
  }
  // Longest first, so a URL is replaced whole before its password part.
  return [...out].sort((a, b) => b.length - a.length);
}

/** Replaces every secret value and any URL password in `text`. */
export function redact(text: string, values: readonly string[] = []): string {
  let out = text;
  for (const v of values) out = out.split(v).join("[REDACTED]");
  return out.replace(/(\b[a-z][\w+.-]*:\/\/[^:/@\s]*:)[^@/\s]+@/gi, "$1[REDACTED]@");
}
