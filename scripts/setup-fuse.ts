// The JuiceFS stand-in (test/stand-ins/juicefs) serves its mounts through FUSE with Debian's
// unionfs-fuse, like the real client leaves a dead mount (ENOTCONN) when it is killed. This step
// installs the package when it is missing and this machine can (root, apt-get, /dev/fuse); otherwise it
// says what is missing. It never fails the set-up: tests that mount need root and FUSE and say so.
import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { join } from "node:path";

export const fusePackage = "unionfs-fuse";

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    const p = join(dir || ".", name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Why the FUSE stand-in cannot run here (undefined: it can). */
export function fuseUnavailable(): string | undefined {
  if (!existsSync("/dev/fuse")) return "/dev/fuse does not exist (FUSE is not available on this machine)";
  if (!onPath("setpriv")) return "setpriv (util-linux) is not installed";
  if (!onPath("unionfs-fuse")) return `${fusePackage} is not installed`;
  return undefined;
}

/** Installs unionfs-fuse with apt-get when missing; returns the problem left, if any. */
export function setupFuse(log: (msg: string) => void): string | undefined {
  let problem = fuseUnavailable();
  if (problem === undefined || onPath("unionfs-fuse") || !existsSync("/dev/fuse")) return problem;
  if (process.getuid?.() !== 0 || !onPath("apt-get"))
    return `${problem}: install the Debian package ${fusePackage} as root (apt-get install -y ${fusePackage})`;
  log(`installing ${fusePackage} (the FUSE server of the JuiceFS stand-in) with apt-get`);
  const install = () =>
    spawnSync("apt-get", ["install", "-y", "--no-install-recommends", fusePackage], {
      stdio: ["ignore", "ignore", "pipe"],
      encoding: "utf8",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  let r = install();
  if (r.status !== 0) {
    // A fresh machine may have no package lists yet.
    spawnSync("apt-get", ["update"], { stdio: "ignore" });
    r = install();
  }
  problem = fuseUnavailable();
  if (r.status !== 0)
    return `apt-get install ${fusePackage} failed: ${(r.stderr ?? "").trim().split("\n").slice(-2).join("; ")}`;
  return problem;
}
