// driver/juicefs is pure: no Kubernetes client at runtime (type-only imports are fine), no fs,
// child_process or network modules, no dynamic imports or require.
import { readdirSync, readFileSync } from "node:fs";
import { registerHooks } from "node:module";
import { join } from "node:path";
import t from "tap";

const dir = join(import.meta.dirname, "../../driver/juicefs");
const files = readdirSync(dir).filter((f) => f.endsWith(".ts"));
const allowedRuntime = new Set(["node:crypto", "yaml"]);
const forbidden =
  /^(node:)?(fs|fs\/promises|child_process|net|http|https|http2|dgram|tls|dns|worker_threads|cluster)$|^@kubernetes\/client-node/;

t.ok(files.length >= 10, "the domain's modules are found");
for (const f of files) {
  t.test(f, async (t) => {
    const src = readFileSync(join(dir, f), "utf8");
    const imports = [...src.matchAll(/^\s*(import|export)\s+(type\s+)?([^;]*?)\s+from\s+"([^"]+)"/gms)];
    for (const m of imports) {
      const typeOnly = m[2] !== undefined || /^\{\s*(type\s+[^,}]+,?\s*)+\}$/.test(m[3]!.trim());
      const spec = m[4]!;
      if (spec.startsWith("./")) continue;
      if (typeOnly) {
        t.notMatch(spec, /^(node:)?(fs|child_process|net|http|https)$/, `${spec}: type-only import allowed`);
        continue;
      }
      t.notMatch(spec, forbidden, `${f} imports ${spec} at runtime`);
      t.ok(allowedRuntime.has(spec), `${f}: runtime import ${spec} is in the allowed list`);
    }
    t.notMatch(src, /\bimport\s*\(/, "no dynamic import");
    t.notMatch(src, /\brequire\s*\(/, "no require");
    t.notMatch(src, /^\s*import\s+"[^"]+"/m, "no side-effect imports");
    t.notMatch(src, /\bprocess\.(env|exit|cwd)\b/, "no process state");
  });
}

t.test("loading the index at runtime resolves no forbidden module", async (t) => {
  const resolved: string[] = [];
  registerHooks({
    resolve(specifier, context, next) {
      resolved.push(specifier);
      return next(specifier, context);
    },
  });
  const mod = await import("../../driver/juicefs/index.ts");
  t.type(mod.parseSettings, "function");
  t.ok(resolved.includes("yaml"), "the hook saw the domain's imports");
  t.same(
    resolved.filter((s) => forbidden.test(s)),
    [],
    "no Kubernetes client, fs, child_process or network module",
  );
});
