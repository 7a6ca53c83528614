// `juicefs-csi write-envs`: the init container of a sidecar whose Secret has `envs`. The Secret's
// `envs` value (YAML/JSON map, the same parser as the driver's settings) arrives as a file from a
// Secret volume; each variable becomes one file named after it in a memory emptyDir, which the
// client's fixed start script reads (container.ts startScript). No value is ever printed.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { reservedEnvNames } from "../driver/juicefs/commands.ts";
import { isEnvName, parseStringMap } from "../driver/juicefs/maps.ts";

export async function writeEnvs(opts: { from: string; to: string }): Promise<{ names: string[] }> {
  const text = await readFile(opts.from, "utf8");
  const r = parseStringMap(text);
  if ("error" in r) throw new Error(`Secret key "envs" ${r.error}`);
  await mkdir(opts.to, { recursive: true });
  const names = Object.keys(r.map).sort();
  for (const name of names) {
    // The start script passes each file as NAME=VALUE to `env`: a name starting with "-" would be
    // read as an option, and a "/" would leave the folder. The driver's settings refuse the rest.
    if (!isEnvName(name) || name.startsWith("-"))
      throw new Error(
        `Secret key "envs": "${name}" is not a usable variable name (letters, digits, "_", "-", ".")`,
      );
    if (reservedEnvNames.has(name))
      throw new Error(`Secret key "envs" sets "${name}", which the driver defines from the Secret itself`);
  }
  for (const name of names) await writeFile(join(opts.to, name), r.map[name]!, { mode: 0o400 });
  return { names };
}
