// The global config as the node plugin and the webhook see it: the ConfigMap juicefs-csi-driver-config
// mounted as a volume (optional: absent means no patches), read again every few seconds. The kubelet
// updates a mounted ConfigMap by swapping a symlink, on its own sync period (about a minute), so a
// change reaches new Mount Pods and sidecars without restarting anything, after that delay. Reading
// the file needs no API access (no RBAC on ConfigMaps). A config that does not parse is logged and the
// last good one kept (the webhook refuses such a ConfigMap when it is applied, naming the field).
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import { type GlobalConfig, parseGlobalConfig } from "./juicefs/global-config.ts";

export const defaultGlobalConfigReloadMs = 10_000;

export class GlobalConfigFile {
  readonly #path: string;
  readonly #log: Logger | undefined;
  readonly #intervalMs: number;
  #text: string | undefined;
  #config: GlobalConfig | undefined;
  #problem: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #generation = 0;

  constructor(path: string, opts: { logger?: Logger; intervalMs?: number } = {}) {
    this.#path = path;
    this.#log = opts.logger;
    this.#intervalMs = opts.intervalMs ?? defaultGlobalConfigReloadMs;
  }

  /** The config in force (undefined: none, or none valid yet). The object changes only when the file does. */
  current(): GlobalConfig | undefined {
    return this.#config;
  }

  /** Why the file's current content is not in force (undefined: it is). */
  problem(): string | undefined {
    return this.#problem;
  }

  /** How many times the config in force changed (tests wait on it). */
  get generation(): number {
    return this.#generation;
  }

  /** Reads the file now; called by start() and by the timer. */
  async reload(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#path, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") {
        this.#problem = `${this.#path}: ${code ?? String(err)}`;
        this.#log?.error({ file: this.#path, code }, "global config cannot be read; keeping the last one");
        return;
      }
      text = ""; // the optional ConfigMap is absent: no patches
    }
    if (text === this.#text) return;
    this.#text = text;
    const r = parseGlobalConfig(text);
    if (!r.ok) {
      this.#problem = r.errors.join("; ");
      this.#log?.error(
        { file: this.#path, errors: r.errors },
        "global config is invalid; keeping the last valid one (fix the ConfigMap)",
      );
      return;
    }
    for (const w of r.warnings) this.#log?.warn({ file: this.#path }, w);
    this.#problem = undefined;
    this.#config = r.config.mountPodPatch.length > 0 ? r.config : undefined;
    this.#generation++;
    this.#log?.info(
      { file: this.#path, entries: r.config.mountPodPatch.length },
      "global config loaded: new Mount Pods and sidecars use it; running ones keep their settings until recreated",
    );
  }

  async start(): Promise<void> {
    await this.reload();
    this.#timer = setInterval(() => void this.reload(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
