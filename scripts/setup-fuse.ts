// The JuiceFS stand-in (test/stand-ins/juicefs) serves its mounts through FUSE with Debian's
// unionfs-fuse, like the real client leaves a dead mount (ENOTCONN) when it is killed. This step
// installs the package when it is missing and this machine can (root, apt-get, /dev/fuse); otherwise it
// says what is missing. It never fails the set-up: tests that mount need root and FUSE and say so.
import { existsSync } from "node:fs";
import { aptInstall, aptUnavailable, onPath } from "./apt.ts";

export const fusePackage = "unionfs-fuse";

/** Why the FUSE stand-in cannot run here (undefined: it can). */
export function fuseUnavailable(): string | undefined {
  if (!existsSync("/dev/fuse")) return "/dev/fuse does not exist (FUSE is not available on this machine)";
  if (!onPath("setpriv")) return "setpriv (util-linux) is not installed";
  if (!onPath("unionfs-fuse")) return `${fusePackage} is not installed`;
  return undefined;
}

/** Installs unionfs-fuse with apt-get when missing; returns the problem left, if any. */
export function setupFuse(log: (msg: string) => void): string | undefined {
  const problem = fuseUnavailable();
  if (problem === undefined || onPath("unionfs-fuse") || !existsSync("/dev/fuse")) return problem;
  const manual = aptUnavailable(fusePackage);
  if (manual) return `${problem}: ${manual}`;
  const failed = aptInstall(fusePackage, "the FUSE server of the JuiceFS stand-in", log);
  if (failed) return failed;
  return fuseUnavailable();
}
