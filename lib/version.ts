import { readFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "./paths.ts";

const pkg = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as {
  name: string;
  version: string;
};

/** The product version, from package.json (one source of truth for CLI, CSI GetPluginInfo and images). */
export const version: string = pkg.version;
export const packageName: string = pkg.name;
