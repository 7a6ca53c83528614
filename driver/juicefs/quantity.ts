// Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource), parsed without the API machinery.
// Grammar: <signedNumber><suffix>, suffix = binarySI (Ki Mi Gi Ti Pi Ei) | decimalSI (n u m "" k M G T P E)
// | decimalExponent (e|E followed by a signed integer). No whitespace, no "+Inf", no hex.

const binary: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const decimal: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

const quantityRe =
  /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE]?)$/;

/** A Kubernetes quantity as a number (cores for CPU, bytes for memory); undefined if it is not one. */
export function parseQuantity(q: string): number | undefined {
  if (typeof q !== "string") return undefined;
  const m = quantityRe.exec(q);
  if (!m) return undefined;
  const num = Number(m[1]);
  const suffix = m[2] ?? "";
  let factor: number | undefined;
  if (suffix in binary) factor = binary[suffix];
  else if (/^[eE][+-]?[0-9]+$/.test(suffix)) factor = 10 ** Number(suffix.slice(1));
  else factor = decimal[suffix];
  if (factor === undefined) return undefined;
  const v = num * factor;
  return Number.isFinite(v) ? v : undefined;
}

/** Canonical CPU quantity: whole cores as "N", else millicores "Nm" (rounded up, as Kubernetes does). */
export function formatCpu(cores: number): string {
  const milli = Math.ceil(Math.round(cores * 1e6) / 1e3);
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}

/** Canonical memory quantity: the shortest exact form with a binary (Ki..Ei) or decimal (k..E) unit, else bytes (rounded up). */
export function formatMemory(bytes: number): string {
  const b = Math.ceil(bytes);
  let best = String(b);
  const consider = (s: string) => {
    if (s.length < best.length) best = s;
  };
  for (const [s, f] of Object.entries(binary).reverse()) if (b !== 0 && b % f === 0) consider(`${b / f}${s}`);
  for (const s of ["E", "P", "T", "G", "M", "k"]) {
    const f = decimal[s]!;
    if (b !== 0 && b % f === 0) consider(`${b / f}${s}`);
  }
  return best;
}
