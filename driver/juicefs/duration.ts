// Go time.ParseDuration, in milliseconds: "90s", "1m30s", "1.5h", "500ms", "-2m", "0". Units ns us µs μs ms s m h.

const unitMs: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1e3,
  m: 60e3,
  h: 3600e3,
};

const partRe = /([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/y;

/** A Go duration string as milliseconds; undefined if Go would refuse it. */
export function parseDuration(d: string): number | undefined {
  if (typeof d !== "string" || d === "") return undefined;
  let s = d;
  let sign = 1;
  if (s[0] === "+" || s[0] === "-") {
    sign = s[0] === "-" ? -1 : 1;
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") return undefined;
  let total = 0;
  partRe.lastIndex = 0;
  while (partRe.lastIndex < s.length) {
    const m = partRe.exec(s);
    if (!m) return undefined;
    const num = m[1]!;
    // Go needs at least one digit on one side of the dot: "s", ".s" are errors.
    if (!/[0-9]/.test(num)) return undefined;
    total += Number(num) * unitMs[m[2]!]!;
  }
  return Number.isFinite(total) ? sign * total : undefined;
}
