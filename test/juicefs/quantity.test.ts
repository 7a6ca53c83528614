import t from "tap";
import { formatCpu, formatMemory, parseDuration, parseQuantity } from "../../driver/juicefs/index.ts";

const Ki = 1024;
const Mi = Ki * 1024;
const Gi = Mi * 1024;

const quantities: [string, number | undefined][] = [
  ["1", 1],
  ["0", 0],
  ["500m", 0.5],
  ["1500m", 1.5],
  ["1.5", 1.5],
  [".5", 0.5],
  ["2.", 2],
  ["+3", 3],
  ["-1", -1],
  ["1e3", 1000],
  ["1E3", 1000],
  ["1e-3", 0.001],
  ["1e+2", 100],
  ["2k", 2000],
  ["1M", 1e6],
  ["1G", 1e9],
  ["1T", 1e12],
  ["1P", 1e15],
  ["1E", 1e18],
  ["100n", 100e-9],
  ["100u", 100e-6],
  ["1Ki", Ki],
  ["1Mi", Mi],
  ["1.5Gi", 1.5 * Gi],
  ["5Gi", 5 * Gi],
  ["1Ti", 1024 * Gi],
  ["1Pi", 1024 * 1024 * Gi],
  ["1Ei", 2 ** 60],
  ["", undefined],
  ["abc", undefined],
  ["1 Gi", undefined],
  [" 1", undefined],
  ["1GB", undefined],
  ["1gi", undefined],
  ["1K", undefined],
  ["Gi", undefined],
  ["1.2.3", undefined],
  ["0x10", undefined],
  ["1e", undefined],
  ["Infinity", undefined],
  ["NaN", undefined],
  ["1m\n", undefined],
];
for (const [q, want] of quantities) {
  t.test(`parseQuantity(${JSON.stringify(q)})`, async (t) => {
    const got = parseQuantity(q);
    if (want === undefined) t.equal(got, undefined);
    else t.ok(got !== undefined && Math.abs(got - want) <= Math.abs(want) * 1e-12, `${got} ≈ ${want}`);
  });
}

const cpus: [number, string][] = [
  [1, "1"],
  [0.5, "500m"],
  [5, "5"],
  [0.0001, "1m"],
  [1.2345, "1235m"],
  [0, "0"],
];
for (const [n, want] of cpus) t.test(`formatCpu(${n})`, async (t) => t.equal(formatCpu(n), want));

const mems: [number, string][] = [
  [Gi, "1Gi"],
  [1.5 * Gi, "1536Mi"],
  [5 * Gi, "5Gi"],
  [1e9, "1G"],
  [1e10, "10G"],
  [1000, "1k"],
  [1023, "1023"],
  [0, "0"],
  [1.5, "2"],
];
for (const [n, want] of mems) t.test(`formatMemory(${n})`, async (t) => t.equal(formatMemory(n), want));

const durations: [string, number | undefined][] = [
  ["0", 0],
  ["90s", 90_000],
  ["1m30s", 90_000],
  ["1h", 3_600_000],
  ["1h2m3s", 3_723_000],
  ["500ms", 500],
  ["1.5s", 1500],
  ["1.5h", 5_400_000],
  ["100us", 0.1],
  ["100µs", 0.1],
  ["1000000ns", 1],
  ["-2m", -120_000],
  ["+5s", 5000],
  [".5s", 500],
  ["1m1m", 120_000],
  ["", undefined],
  ["90", undefined],
  ["1d", undefined],
  ["s", undefined],
  [".s", undefined],
  ["1 s", undefined],
  ["-", undefined],
  ["1s ", undefined],
  ["1S", undefined],
];
for (const [d, want] of durations) {
  t.test(`parseDuration(${JSON.stringify(d)})`, async (t) => {
    const got = parseDuration(d);
    if (want === undefined) t.equal(got, undefined);
    else t.ok(got !== undefined && Math.abs(got - want) < 1e-9, `${got} = ${want}`);
  });
}
