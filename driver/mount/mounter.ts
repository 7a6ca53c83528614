// Bind mounts and unmounts through mount(8)/umount(8). Unmounting never stats the path first:
// a dead FUSE client answers ENOTCONN to everything, and only the mount table is safe to ask.
import { lastLines, run } from "./exec.ts";
import { readMountTable } from "./mountinfo.ts";

export class MountError extends Error {
  override name = "MountError";
}

export interface Mounter {
  /** Bind `source` onto `target` (read-only when asked). */
  bind(source: string, target: string, opts?: { readOnly?: boolean }): Promise<void>;
  /** Unmount every mount stacked at `target`; a busy or broken mount is detached lazily. Absent → no-op. */
  unmountAll(target: string): Promise<void>;
}

export interface MounterOptions {
  mountPath?: string;
  umountPath?: string;
  mountInfoPath?: string;
  timeoutMs?: number;
}

export class SystemMounter implements Mounter {
  readonly #mount: string;
  readonly #umount: string;
  readonly #mountInfo: string | undefined;
  readonly #timeout: number;

  constructor(opts: MounterOptions = {}) {
    this.#mount = opts.mountPath ?? "mount";
    this.#umount = opts.umountPath ?? "umount";
    this.#mountInfo = opts.mountInfoPath;
    this.#timeout = opts.timeoutMs ?? 30_000;
  }

  async bind(source: string, target: string, opts: { readOnly?: boolean } = {}): Promise<void> {
    // util-linux turns `--bind -o ro` into bind + read-only remount in one call.
    const args = opts.readOnly ? ["--bind", "-o", "ro", source, target] : ["--bind", source, target];
    const r = await run(this.#mount, args, { timeoutMs: this.#timeout, stderrOnly: true });
    if (r.code !== 0) {
      throw new MountError(
        `bind mount ${source} → ${target} failed: ${lastLines(r.stderr || r.stdout, 3).join("; ") || describe(r)}`,
      );
    }
  }

  async unmountAll(target: string): Promise<void> {
    // Bounded: stacked mounts are rare, a loop that never converges must not hang the RPC.
    for (let i = 0; i < 16; i++) {
      const table = await readMountTable(this.#mountInfo);
      if (!table.at(target)) return;
      const r = await run(this.#umount, [target], { timeoutMs: this.#timeout, stderrOnly: true });
      if (r.code === 0) continue;
      // Busy (still open by a container) or broken (ENOTCONN): detach now, the kernel finishes later.
      const lazy = await run(this.#umount, ["-l", target], { timeoutMs: this.#timeout, stderrOnly: true });
      if (lazy.code !== 0) {
        const after = await readMountTable(this.#mountInfo);
        if (!after.at(target)) return;
        throw new MountError(
          `unmount ${target} failed: ${lastLines(lazy.stderr || r.stderr, 3).join("; ") || describe(lazy)}`,
        );
      }
    }
    throw new MountError(`unmount ${target}: still mounted after 16 attempts`);
  }
}

function describe(r: { code: number | null; signal: string | null; timedOut: boolean }): string {
  if (r.timedOut) return "timed out";
  return r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
}
