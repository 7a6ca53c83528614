import { spawn } from "node:child_process";
import { join } from "node:path";
import { projectRoot } from "../../lib/paths.ts";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real juicefs-csi executable as a child process (same Node binary as the test). */
export function runCli(
  args: string[],
  opts: {
    input?: string;
    env?: NodeJS.ProcessEnv /** File in bin/ (default juicefs-csi.js). */;
    bin?: string;
  } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(projectRoot, "bin", opts.bin ?? "juicefs-csi.js"), ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? "");
  });
}
