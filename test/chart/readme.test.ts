// The README's parameter table is generated from values.yaml's `## @param` comments and is current;
// the generator also fails when a value has no comment (every value is documented).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import {
  currentTable,
  readmePath,
  renderParamsTable,
  valuesPath,
  withTable,
} from "../../scripts/chart-readme.ts";

t.test("README.md's Helm parameter table is up to date (node scripts/chart-readme.ts)", async (t) => {
  const readme = readFileSync(readmePath, "utf8");
  t.match(readme, "## Install with Helm");
  t.equal(currentTable(readme), renderParamsTable(), "regenerate with: node scripts/chart-readme.ts");
});

t.test("a value without a @param comment fails the generator", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "values-"));
  try {
    const bad = join(dir, "values.yaml");
    writeFileSync(bad, `${readFileSync(valuesPath, "utf8")}\nundocumented: true\n`);
    t.throws(() => renderParamsTable(bad), /Missing metadata for key: undocumented/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t.test("the table goes between the markers and nowhere else", async (t) => {
  const doc = "# x\n\nbefore\n<!-- helm-params:start -->\nold\n<!-- helm-params:end -->\nafter\n";
  const out = withTable(doc, "| a |\n");
  t.equal(out, "# x\n\nbefore\n<!-- helm-params:start -->\n\n| a |\n\n<!-- helm-params:end -->\nafter\n");
  t.equal(currentTable(out), "| a |\n");
  t.throws(() => withTable("# no markers\n", "| a |\n"), /no <!-- helm-params:start -->/);
});
