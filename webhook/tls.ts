// Serving certificate from files, reloaded without a restart. Kubernetes updates a mounted Secret by
// swapping a symlink, cert-manager rewrites files in place: both are caught by watching the folder and
// by a periodic check of the files. A new pair is swapped in only if key and certificate match, so a
// half-written update never breaks handshakes; established connections keep their session.
import { type FSWatcher, watch } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { createSecureContext, type SecureContextOptions } from "node:tls";

export interface KeyPair {
  cert: string;
  key: string;
}

/** TLS 1.2 or newer: the API server speaks both; older versions are refused. */
export const tlsBase: SecureContextOptions = { minVersion: "TLSv1.2" };

export async function readKeyPair(certFile: string, keyFile: string): Promise<KeyPair> {
  const [cert, key] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]);
  // Throws when the key does not belong to the certificate or either is not PEM.
  createSecureContext({ ...tlsBase, cert, key });
  return { cert, key };
}

export interface Reloadable {
  setSecureContext(options: SecureContextOptions): void;
}

export interface CertWatcherOptions {
  certFile: string;
  keyFile: string;
  intervalMs: number;
  onReload?: (pair: KeyPair) => void;
  onError?: (err: unknown) => void;
  /** Kept in every reloaded context: the CA that client certificates are verified against. */
  clientCA?: string;
}

export class CertWatcher {
  private readonly opts: CertWatcherOptions;
  private server: Reloadable | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watchers: FSWatcher[] = [];
  private debounce: NodeJS.Timeout | undefined;
  private fingerprint = "";
  private current: KeyPair | undefined;
  private checking: Promise<void> | undefined;

  constructor(opts: CertWatcherOptions) {
    this.opts = opts;
  }

  /** Reads the pair for the first time (throws if it is unusable: the server cannot start without it). */
  async load(): Promise<KeyPair> {
    const pair = await readKeyPair(this.opts.certFile, this.opts.keyFile);
    this.current = pair;
    this.fingerprint = await this.filesFingerprint();
    return pair;
  }

  start(server: Reloadable): void {
    this.server = server;
    this.timer = setInterval(() => void this.check(), this.opts.intervalMs);
    this.timer.unref();
    for (const dir of new Set([dirname(this.opts.certFile), dirname(this.opts.keyFile)])) {
      try {
        const w = watch(dir, () => this.soon());
        w.on("error", () => {}); // the periodic check still runs
        w.unref();
        this.watchers.push(w);
      } catch {
        // Folder not watchable (e.g. some overlay filesystems): the periodic check covers it.
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }

  private soon(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.check(), 50);
    this.debounce.unref();
  }

  /** Compares the files with what is served and swaps in a new, valid pair. */
  check(): Promise<void> {
    this.checking ??= this.doCheck().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async doCheck(): Promise<void> {
    let fp: string;
    try {
      fp = await this.filesFingerprint();
    } catch (err) {
      this.opts.onError?.(err);
      return;
    }
    if (fp === this.fingerprint) return;
    let pair: KeyPair;
    try {
      pair = await readKeyPair(this.opts.certFile, this.opts.keyFile);
    } catch (err) {
      // Likely mid-update (new cert, old key): keep serving the old pair, try again later.
      this.opts.onError?.(err);
      return;
    }
    this.fingerprint = fp;
    if (this.current && pair.cert === this.current.cert && pair.key === this.current.key) return;
    this.current = pair;
    this.server?.setSecureContext({
      ...tlsBase,
      ...pair,
      ...(this.opts.clientCA ? { ca: this.opts.clientCA } : {}),
    });
    this.opts.onReload?.(pair);
  }

  private async filesFingerprint(): Promise<string> {
    const [c, k] = await Promise.all([stat(this.opts.certFile), stat(this.opts.keyFile)]);
    return `${c.ino}:${c.size}:${c.mtimeMs}|${k.ino}:${k.size}:${k.mtimeMs}`;
  }
}
