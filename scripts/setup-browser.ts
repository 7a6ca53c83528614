// The dashboard's browser tests (test/dashboard/browser.test.ts) drive Debian's chromium, headless,
// through playwright-core (which downloads no browser of its own). This step installs the package
// with apt-get when it is missing and this machine can (root, apt-get); otherwise it says what is
// missing. It never fails the set-up: the browser tests skip and say why.
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";

export const browserPackage = "chromium";
/** Where Debian's package puts the browser; $CHROMIUM overrides. */
export const browserCandidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The browser to drive, or undefined. */
export function findBrowser(): string | undefined {
  return [process.env.CHROMIUM, ...browserCandidates].find((p): p is string => !!p && executable(p));
}

/** Installs chromium with apt-get when missing; returns the problem left, if any. */
export function setupBrowser(log: (msg: string) => void): string | undefined {
  if (findBrowser()) return undefined;
  const problem = `no chromium (looked at $CHROMIUM, ${browserCandidates.join(", ")})`;
  const aptGet = (process.env.PATH ?? "/usr/bin:/bin")
    .split(":")
    .some((d) => executable(join(d || ".", "apt-get")));
  if (process.getuid?.() !== 0 || !aptGet)
    return `${problem}: install the Debian package ${browserPackage} as root (apt-get install -y ${browserPackage})`;
  log(`installing ${browserPackage} (the dashboard's browser tests) with apt-get`);
  const install = () =>
    spawnSync("apt-get", ["install", "-y", "--no-install-recommends", browserPackage], {
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
    return `apt-get install ${browserPackage} failed: ${(r.stderr ?? "").trim().split("\n").slice(-2).join("; ")}`;
  return findBrowser() ? undefined : problem;
}
