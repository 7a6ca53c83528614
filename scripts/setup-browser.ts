// The dashboard's browser tests (test/dashboard/browser.test.ts) drive Debian's chromium, headless,
// through playwright-core (which downloads no browser of its own). This step installs the package
// with apt-get when it is missing and this machine can (root, apt-get); otherwise it says what is
// missing. It never fails the set-up: the browser tests skip and say why.
import { aptInstall, aptUnavailable, executable } from "./apt.ts";

export const browserPackage = "chromium";
/** Where Debian's package puts the browser; $CHROMIUM overrides. */
export const browserCandidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** The browser to drive, or undefined. */
export function findBrowser(): string | undefined {
  return [process.env.CHROMIUM, ...browserCandidates].find((p): p is string => !!p && executable(p));
}

/** Installs chromium with apt-get when missing; returns the problem left, if any. */
export function setupBrowser(log: (msg: string) => void): string | undefined {
  if (findBrowser()) return undefined;
  const problem = `no chromium (looked at $CHROMIUM, ${browserCandidates.join(", ")})`;
  const manual = aptUnavailable(browserPackage);
  if (manual) return `${problem}: ${manual}`;
  const failed = aptInstall(browserPackage, "the dashboard's browser tests", log);
  if (failed) return failed;
  return findBrowser() ? undefined : problem;
}
