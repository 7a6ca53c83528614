// What the set-up steps (setup-fuse, setup-browser) share: finding a program on PATH and installing a
// Debian package with apt-get as root, once more after `apt-get update` on a machine with no lists yet.
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";

export function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    const p = join(dir || ".", name);
    if (executable(p)) return p;
  }
  return undefined;
}

/** Why this process cannot install `pkg` (not root, no apt-get), with the command to run by hand. */
export function aptUnavailable(pkg: string): string | undefined {
  if (process.getuid?.() !== 0 || !onPath("apt-get"))
    return `install the Debian package ${pkg} as root (apt-get install -y ${pkg})`;
  return undefined;
}

/** Installs `pkg` with apt-get (see aptUnavailable first): undefined when it went through, else why not. */
export function aptInstall(pkg: string, purpose: string, log: (msg: string) => void): string | undefined {
  log(`installing ${pkg} (${purpose}) with apt-get`);
  const install = () =>
    spawnSync("apt-get", ["install", "-y", "--no-install-recommends", pkg], {
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
  if (r.status !== 0)
    return `apt-get install ${pkg} failed: ${(r.stderr ?? "").trim().split("\n").slice(-2).join("; ")}`;
  return undefined;
}
