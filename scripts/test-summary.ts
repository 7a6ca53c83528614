// Totals the TAP files tap saves under .tap/test-results and prints the plain line
// "N passed, N failed, N skipped" that CI reads, so a run that executed no test is visible.
// Counts leaf assertions: each parser's points minus the points that close a subtest.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Parser } from "tap-parser";

export interface Totals {
  passed: number;
  failed: number;
  skipped: number;
}

export function countTap(tap: string): Totals {
  const totals: Totals = { passed: 0, failed: 0, skipped: 0 };
  const watch = (p: Parser): void => {
    let childNames = new Set<string>();
    p.on("child", (c: Parser) => {
      childNames.add(c.name);
      watch(c);
    });
    p.on("assert", (a: { ok: boolean; name: string; skip?: unknown; todo?: unknown }) => {
      if (childNames.has(a.name)) {
        childNames.delete(a.name);
        return;
      }
      if (a.skip || a.todo) totals.skipped++;
      else if (a.ok) totals.passed++;
      else totals.failed++;
    });
    p.on("complete", () => {
      childNames = new Set();
    });
  };
  const parser = new Parser();
  watch(parser);
  parser.end(tap);
  return totals;
}

function tapFiles(dir: string): string[] {
  let out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out = out.concat(tapFiles(p));
    else if (n.endsWith(".tap")) out.push(p);
  }
  return out;
}

export function summarize(dir = ".tap/test-results"): Totals {
  const t: Totals = { passed: 0, failed: 0, skipped: 0 };
  for (const f of tapFiles(dir)) {
    const c = countTap(readFileSync(f, "utf8"));
    t.passed += c.passed;
    t.failed += c.failed;
    t.skipped += c.skipped;
  }
  return t;
}

if (import.meta.main) {
  const t = summarize(process.argv[2]);
  console.log(`${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
}
