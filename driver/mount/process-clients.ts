// Process mode: the plugin runs `juicefs mount --foreground` itself, one process per
// (volume, settings hash), mounted at hostMountPoint(settings, hash).
//
// State lives where it survives a plugin restart: the mount table says what is mounted and which
// targets are bound from it (the references); a small record per client (pid, volume) and the
// client's log file sit in the state dir. A restarted plugin adopts a running client instead of
// starting a second one. Clients are started detached with their output going to a file, so they
// outlive the plugin process and never die of a closed pipe.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, posix } from "node:path";
import type { Logger } from "pino";
import {
  clientCommands,
  expandEnvRefs,
  hostMountPoint,
  type JuiceFSSettings,
  metaPasswordEnv,
  secretEnv,
  splitMetaPassword,
  timeouts,
} from "../juicefs/index.ts";
import {
  ClientError,
  type ClientInfo,
  type ClientLease,
  type ClientManager,
  type ClientRequest,
  type ReleaseResult,
} from "./clients.ts";
import { lastLines, run } from "./exec.ts";
import { type Mounter, SystemMounter } from "./mounter.ts";
import { isWithin, type MountEntry, type MountTable, normalizePath, readMountTable } from "./mountinfo.ts";
import { KeyedMutex } from "./mutex.ts";
import { redact, secretValues } from "./redact.ts";

export interface ProcessClientOptions {
  /** Folder for client records and logs (must survive plugin restarts, e.g. a hostPath). */
  stateDir: string;
  /** The folder client mount points are made in (settings.hostMountRoot); used to find unrecorded clients. */
  mountRoot: string;
  /** Mounts below these folders are clients, never references (node and controller mount roots). */
  clientRoots?: string[];
  /** The juicefs executable; default "juicefs" looked up on PATH. */
  juicefsPath?: string;
  /** Base environment of client processes (default: this process's). */
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
  prepareTimeoutMs?: number;
  stopTimeoutMs?: number;
  mounter?: Mounter;
  mountInfoPath?: string;
  /**
   * Recover clients that die while targets use them (node clients): restart and re-bind, soon after a
   * client of this process exits and on a periodic sweep at this interval (adopted clients). 0: off.
   */
  recoverIntervalMs?: number;
  logger?: Logger;
}

interface ClientRecord {
  volumeId: string;
  hash: string;
  mountPoint: string;
  pid?: number;
  /** `juicefs umount ...` argv when it holds no secret (it never should). */
  umount?: string[];
  startedAt: string;
}

interface ClientState {
  entry?: MountEntry;
  pid?: number;
  healthy: boolean;
  status: string;
}

const logTailLines = 12;
/** A FUSE mount whose daemon hangs never answers: give up on it after this long. */
const statTimeoutMs = 5000;

export class ProcessClientManager implements ClientManager {
  readonly #opts: Required<
    Omit<ProcessClientOptions, "logger" | "mountInfoPath" | "juicefsPath" | "recoverIntervalMs">
  > & {
    logger: Logger | undefined;
    mountInfoPath: string | undefined;
    juicefsPath: string;
  };
  readonly #locks = new KeyedMutex();
  readonly #pins = new Map<string, number>();
  readonly #children = new Map<number, ChildProcess>();
  /** Records this process read or wrote (it is their only writer); the files serve restarts. */
  readonly #recordCache = new Map<string, ClientRecord | null>();
  /**
   * The last request per client mount point: what a dead client is restarted with (settings hold the
   * Secret, so they are never written to disk; after a plugin restart the next publish brings them).
   */
  readonly #requests = new Map<string, ClientRequest>();
  #recoverTimer: NodeJS.Timeout | undefined;
  #recoverIntervalMs = 0;
  #closed = false;

  constructor(opts: ProcessClientOptions) {
    this.#opts = {
      stateDir: opts.stateDir,
      mountRoot: normalizePath(opts.mountRoot),
      clientRoots: (opts.clientRoots ?? [opts.mountRoot]).map(normalizePath),
      juicefsPath: opts.juicefsPath ?? "juicefs",
      env: opts.env ?? process.env,
      readyTimeoutMs: opts.readyTimeoutMs ?? timeouts.mountReady,
      prepareTimeoutMs: opts.prepareTimeoutMs ?? 120_000,
      stopTimeoutMs: opts.stopTimeoutMs ?? 10_000,
      mounter: opts.mounter ?? new SystemMounter({ mountInfoPath: opts.mountInfoPath }),
      mountInfoPath: opts.mountInfoPath,
      logger: opts.logger,
    };
  }

  get juicefsPath(): string {
    return this.#opts.juicefsPath;
  }

  async ensure(req: ClientRequest): Promise<ClientLease> {
    const mountPoint = normalizePath(hostMountPoint(req.settings, req.hash));
    return this.#locks.run(mountPoint, async () => {
      this.#requests.set(mountPoint, req);
      const table = await this.#table();
      const record = await this.#readRecord(mountPoint);
      const state = await this.#inspect(mountPoint, table, record);
      if (state.healthy) {
        if (!record || record.pid !== state.pid) {
          // Found in the mount table (a previous plugin run started it): adopt, never duplicate.
          this.#log(
            "info",
            { volumeId: req.settings.volumeId, mountPoint, pid: state.pid },
            "adopted client",
          );
          await this.#writeRecord({
            volumeId: req.settings.volumeId,
            hash: req.hash,
            mountPoint,
            ...(state.pid === undefined ? {} : { pid: state.pid }),
            ...(record?.umount ? { umount: record.umount } : {}),
            startedAt: record?.startedAt ?? new Date().toISOString(),
          });
        }
        return this.#lease(mountPoint, table);
      }
      await this.#replace(req, mountPoint, table, state, record);
      return this.#lease(mountPoint, await this.#table());
    });
  }

  async release(mountPoint: string): Promise<ReleaseResult> {
    const mp = normalizePath(mountPoint);
    return this.#locks.run(mp, async () => {
      if ((this.#pins.get(mp) ?? 0) > 0) return "in-use";
      const table = await this.#table();
      const entry = table.at(mp);
      const record = await this.#readRecord(mp);
      if (!entry && !record) return "absent";
      if (entry && this.#references(table, entry).length > 0) return "in-use";
      await this.#stop(mp, record);
      return "stopped";
    });
  }

  async list(snapshot?: MountTable): Promise<ClientInfo[]> {
    const table = snapshot ?? (await this.#table());
    const records = await this.#records();
    const seen = new Set(records.map((r) => r.mountPoint));
    const infos: ClientInfo[] = [];
    for (const r of records) {
      const state = await this.#inspect(r.mountPoint, table, r);
      infos.push(this.#info(r.volumeId, r.hash, r.mountPoint, state, table));
    }
    // A client mount without a record (state dir lost): still reported so it can be released.
    for (const e of table.below(this.#opts.mountRoot)) {
      if (dirname(e.mountPoint) !== this.#opts.mountRoot || seen.has(e.mountPoint)) continue;
      seen.add(e.mountPoint);
      const state = await this.#inspect(e.mountPoint, table, undefined);
      infos.push(this.#info("", "", e.mountPoint, state, table));
    }
    return infos;
  }

  async stopAll(): Promise<void> {
    const infos = await this.list();
    await Promise.all(
      infos.map((c) =>
        this.#locks.run(c.mountPoint, async () =>
          this.#stop(c.mountPoint, await this.#readRecord(c.mountPoint)),
        ),
      ),
    );
  }

  // ---- recovery of dead clients (the process-mode counterpart of the Mount Pod reconciler) ----

  /** Starts recovering dead clients (a sweep every `recoverIntervalMs`, and right after a client exits). */
  startRecovery(intervalMs: number): void {
    this.#recoverIntervalMs = intervalMs;
    if (intervalMs <= 0 || this.#recoverTimer) return;
    const tick = () => {
      this.#recoverTimer = setTimeout(async () => {
        await this.recover().catch(() => {});
        if (!this.#closed) tick();
      }, intervalMs);
      this.#recoverTimer.unref();
    };
    tick();
  }

  /** Stops recovering (pending work finishes; clients keep running). */
  close(): void {
    this.#closed = true;
    if (this.#recoverTimer) clearTimeout(this.#recoverTimer);
    this.#recoverTimer = undefined;
  }

  /**
   * Restarts every known client (or the one at `only`) that no longer serves while targets still show
   * it, and re-binds those targets from the new client (#replace). Idle dead clients are left to release().
   */
  async recover(only?: string): Promise<number> {
    let recovered = 0;
    for (const [mountPoint, req] of [...this.#requests]) {
      if (only !== undefined && mountPoint !== only) continue;
      await this.#locks.run(mountPoint, async () => {
        if (this.#closed || this.#requests.get(mountPoint) !== req) return;
        const table = await this.#table();
        const record = await this.#readRecord(mountPoint);
        const state = await this.#inspect(mountPoint, table, record);
        if (state.healthy || !state.entry || this.#references(table, state.entry).length === 0) return;
        this.#log("warn", { mountPoint, status: state.status }, "client died while in use; restarting it");
        await this.#replace(req, mountPoint, table, state, record);
        recovered++;
      });
    }
    return recovered;
  }

  // ---- internals ----

  #info(
    volumeId: string,
    hash: string,
    mountPoint: string,
    state: ClientState,
    table: MountTable,
  ): ClientInfo {
    return {
      volumeId,
      hash,
      mountPoint,
      ...(state.entry ? { entry: state.entry } : {}),
      ...(state.pid === undefined ? {} : { pid: state.pid }),
      healthy: state.healthy,
      status: state.status,
      targets: state.entry ? this.#references(table, state.entry).map((e) => e.mountPoint) : [],
    };
  }

  #lease(mountPoint: string, table: MountTable): ClientLease {
    this.#pins.set(mountPoint, (this.#pins.get(mountPoint) ?? 0) + 1);
    let done = false;
    return {
      mountPoint,
      table,
      done: () => {
        if (done) return;
        done = true;
        const n = (this.#pins.get(mountPoint) ?? 1) - 1;
        if (n <= 0) this.#pins.delete(mountPoint);
        else this.#pins.set(mountPoint, n);
      },
    };
  }

  #table(): Promise<MountTable> {
    return readMountTable(this.#opts.mountInfoPath);
  }

  /** Bind mounts of the client's tree that are not themselves client mounts. */
  #references(table: MountTable, entry: MountEntry): MountEntry[] {
    return table
      .servedBy(entry)
      .filter(
        (e) =>
          !isWithin(entry.mountPoint, e.mountPoint) &&
          !this.#opts.clientRoots.some((r) => isWithin(r, e.mountPoint)),
      );
  }

  async #inspect(
    mountPoint: string,
    table: MountTable,
    record: ClientRecord | undefined,
  ): Promise<ClientState> {
    const entry = table.at(mountPoint);
    if (!entry) return { healthy: false, status: "not mounted" };
    let pid = record?.pid;
    let exited: number | undefined;
    if (pid !== undefined && !(await isClientProcess(pid, mountPoint))) {
      exited = pid;
      pid = undefined;
    }
    if (pid === undefined) pid = await findClientProcess(mountPoint);
    if (pid === undefined && exited !== undefined) {
      return { entry, healthy: false, status: `client process ${exited} exited` };
    }
    try {
      await statWithin(mountPoint, statTimeoutMs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      return {
        entry,
        ...(pid === undefined ? {} : { pid }),
        healthy: false,
        status: `mount point does not answer (${code})`,
      };
    }
    return {
      entry,
      ...(pid === undefined ? {} : { pid }),
      healthy: true,
      status: pid === undefined ? "serving (client process not visible)" : `pid ${pid} serving`,
    };
  }

  /** Starts a client; a broken one at the same mount point is cleared first and its targets re-bound. */
  async #replace(
    req: ClientRequest,
    mountPoint: string,
    table: MountTable,
    state: ClientState,
    record: ClientRecord | undefined,
  ): Promise<void> {
    // A recorded process that is alive but not serving (stuck, or its mount was removed) goes too.
    if (
      record?.pid !== undefined &&
      record.pid !== state.pid &&
      (await isClientProcess(record.pid, mountPoint))
    ) {
      this.#log(
        "warn",
        { mountPoint, pid: record.pid },
        "stopping a client that does not serve its mount point",
      );
      await this.#terminate(record.pid);
    }
    const stale = state.entry ? this.#references(table, state.entry) : [];
    if (state.entry) {
      this.#log(
        "warn",
        { volumeId: req.settings.volumeId, mountPoint, status: state.status, targets: stale.length },
        "replacing broken client",
      );
      if (state.pid !== undefined) await this.#terminate(state.pid);
      await this.#opts.mounter.unmountAll(mountPoint);
    }
    await this.#start(req, mountPoint);
    for (const t of stale) {
      // A target bound from the dead client answers ENOTCONN: bind it again from the new one.
      const sub = posix.relative(state.entry?.root ?? "/", t.root);
      const source = sub ? join(mountPoint, sub) : mountPoint;
      try {
        await this.#opts.mounter.unmountAll(t.mountPoint);
        await this.#opts.mounter.bind(source, t.mountPoint, { readOnly: t.options.includes("ro") });
        this.#log("info", { mountPoint, target: t.mountPoint }, "re-bound target of replaced client");
      } catch (err) {
        this.#log("warn", { mountPoint, target: t.mountPoint, err: String(err) }, "could not re-bind target");
      }
    }
  }

  async #start(req: ClientRequest, mountPoint: string): Promise<void> {
    const { settings, hash } = req;
    const cmds = resolveCommands(settings, mountPoint);
    const env = { ...this.#opts.env, ...cmds.env };
    const bin = this.#opts.juicefsPath;
    const logPath = this.#logPath(mountPoint);
    await mkdir(dirname(logPath), { recursive: true });
    await mkdir(mountPoint, { recursive: true });
    // Keep the previous run's log (why did it die?) next to the new one.
    await rename(logPath, `${logPath}.1`).catch(() => {});
    await writeFile(logPath, "");

    if (cmds.prepare) {
      const r = await run(bin, cmds.prepare.slice(1), { env, timeoutMs: this.#opts.prepareTimeoutMs }).catch(
        (err: Error) => {
          throw new ClientError("failed", `cannot run ${bin}: ${err.message}`);
        },
      );
      await writeFile(logPath, redact(`${r.stdout}${r.stderr}`, cmds.secrets), { flag: "a" });
      if (r.code !== 0) {
        const why = r.timedOut ? "timed out" : `exit code ${r.code ?? r.signal}`;
        const tail = lastLines(redact(`${r.stdout}\n${r.stderr}`, cmds.secrets), logTailLines);
        throw new ClientError(
          "failed",
          `juicefs ${cmds.prepare[1] ?? "prepare"} failed (${why})${fmtTail(tail)}`,
        );
      }
    }

    const fd = openSync(logPath, "a");
    let child: ChildProcess;
    try {
      child = spawn(bin, cmds.mount.slice(1), { env, detached: true, stdio: ["ignore", fd, fd] });
    } finally {
      closeSync(fd);
    }
    const spawned = new Promise<void>((resolve, reject) => {
      child.once("spawn", () => resolve());
      child.once("error", (err) => reject(new ClientError("failed", `cannot run ${bin}: ${err.message}`)));
    });
    await spawned;
    child.on("error", () => {}); // a failed kill later must not crash the plugin
    const pid = child.pid as number;
    child.unref();
    this.#children.set(pid, child);
    child.once("exit", () => {
      this.#children.delete(pid);
      // A client that dies on its own (OOM, crash) while targets use it: bring it back soon.
      if (this.#recoverIntervalMs > 0 && !this.#closed && this.#requests.has(mountPoint))
        setTimeout(() => void this.recover(mountPoint).catch(() => {}), 50).unref();
    });
    await this.#writeRecord({
      volumeId: settings.volumeId,
      hash,
      mountPoint,
      pid,
      ...(cmds.umountSafe ? { umount: cmds.umount } : {}),
      startedAt: new Date().toISOString(),
    });
    this.#log("info", { volumeId: settings.volumeId, mountPoint, pid }, "started client");

    try {
      await this.#waitReady(child, mountPoint);
    } catch (err) {
      await this.#terminate(pid);
      await this.#opts.mounter.unmountAll(mountPoint).catch(() => {});
      await this.#removeRecord(mountPoint);
      const tail = lastLines(redact(await readTail(logPath), cmds.secrets), logTailLines);
      const e = err as ClientError;
      throw new ClientError(e.kind ?? "failed", `${e.message}${fmtTail(tail)}`);
    }
  }

  async #waitReady(child: ChildProcess, mountPoint: string): Promise<void> {
    let exit: string | undefined;
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      exit = signal ? `killed by ${signal}` : `exit code ${code}`;
    };
    if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode);
    else child.once("exit", onExit);
    const deadline = Date.now() + this.#opts.readyTimeoutMs;
    let delay = 10;
    try {
      for (;;) {
        const table = await this.#table();
        if (table.at(mountPoint)) {
          try {
            await statWithin(mountPoint, statTimeoutMs);
            return;
          } catch {
            // mounted but not answering yet
          }
        }
        if (exit !== undefined) {
          throw new ClientError("failed", `JuiceFS client exited before the mount was ready (${exit})`);
        }
        if (Date.now() >= deadline) {
          throw new ClientError(
            "timeout",
            `JuiceFS client did not mount ${mountPoint} within ${Math.round(this.#opts.readyTimeoutMs / 1000)}s`,
          );
        }
        await sleep(delay);
        delay = Math.min(delay * 2, 200);
      }
    } finally {
      child.off("exit", onExit);
    }
  }

  async #stop(mountPoint: string, record: ClientRecord | undefined): Promise<void> {
    this.#requests.delete(mountPoint);
    const pid = record?.pid;
    if (record?.umount) {
      const r = await run(this.#opts.juicefsPath, record.umount.slice(1), {
        timeoutMs: this.#opts.stopTimeoutMs,
        env: this.#opts.env,
      }).catch((err: Error) => ({ code: -1, stderr: err.message, stdout: "" }));
      if (r.code !== 0) {
        this.#log("debug", { mountPoint, out: lastLines(r.stderr || r.stdout, 2) }, "juicefs umount failed");
      }
    }
    if (pid !== undefined && (await isClientProcess(pid, mountPoint))) await this.#terminate(pid);
    else {
      const other = await findClientProcess(mountPoint);
      if (other !== undefined) await this.#terminate(other);
    }
    await this.#opts.mounter.unmountAll(mountPoint);
    await this.#removeRecord(mountPoint);
    await rmdir(mountPoint).catch(() => {});
    this.#log("info", { volumeId: record?.volumeId, mountPoint, pid }, "stopped client");
  }

  /** SIGTERM (juicefs unmounts and exits), then SIGKILL when it does not go in time. */
  async #terminate(pid: number): Promise<void> {
    if (!signal(pid, "SIGTERM")) return;
    const deadline = Date.now() + this.#opts.stopTimeoutMs;
    while (Date.now() < deadline) {
      if (!(await isAlive(pid))) return;
      await sleep(20);
    }
    signal(pid, "SIGKILL");
    for (let i = 0; i < 50 && (await isAlive(pid)); i++) await sleep(20);
  }

  #recordPath(mountPoint: string): string {
    return join(this.#opts.stateDir, "clients", `${basename(mountPoint)}.json`);
  }

  #logPath(mountPoint: string): string {
    return join(this.#opts.stateDir, "logs", `${basename(mountPoint)}.log`);
  }

  async #readRecord(mountPoint: string): Promise<ClientRecord | undefined> {
    const cached = this.#recordCache.get(mountPoint);
    if (cached !== undefined) return cached ?? undefined;
    let r: ClientRecord | undefined;
    try {
      r = JSON.parse(await readFile(this.#recordPath(mountPoint), "utf8")) as ClientRecord;
      if (r.mountPoint !== mountPoint) r = undefined;
    } catch {
      r = undefined;
    }
    this.#recordCache.set(mountPoint, r ?? null);
    return r;
  }

  async #records(): Promise<ClientRecord[]> {
    const dir = join(this.#opts.stateDir, "clients");
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return [];
    }
    const out: ClientRecord[] = [];
    for (const n of names.filter((n) => n.endsWith(".json")).sort()) {
      try {
        const r = JSON.parse(await readFile(join(dir, n), "utf8")) as ClientRecord;
        if (typeof r.mountPoint === "string") out.push(r);
      } catch {
        // half-written or foreign file: ignore
      }
    }
    return out;
  }

  async #writeRecord(r: ClientRecord): Promise<void> {
    const p = this.#recordPath(r.mountPoint);
    await mkdir(dirname(p), { recursive: true });
    const tmp = `${p}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(r)}\n`);
    await rename(tmp, p);
    this.#recordCache.set(r.mountPoint, r);
  }

  async #removeRecord(mountPoint: string): Promise<void> {
    await rm(this.#recordPath(mountPoint), { force: true });
    this.#recordCache.set(mountPoint, null);
  }

  #log(level: "debug" | "info" | "warn", obj: Record<string, unknown>, msg: string): void {
    this.#opts.logger?.[level]({ component: "process-clients", ...obj }, msg);
  }
}

interface ResolvedCommands {
  env: Record<string, string>;
  prepare?: string[];
  mount: string[];
  umount: string[];
  /** The umount argv holds no secret value and may be stored. */
  umountSafe: boolean;
  secrets: string[];
}

/** clientCommands with Secret references resolved and `$(VAR)` expanded the way the kubelet does. */
export function resolveCommands(settings: JuiceFSSettings, mountPoint: string): ResolvedCommands {
  const cmds = clientCommands(settings, mountPoint);
  // issue 13: key files are Secret volumes of a Mount Pod; a process client would need them on the node's disk.
  const file = cmds.files?.[0];
  if (file)
    throw new ClientError(
      "invalid",
      `the Secret key "${file.secretKey}" is not supported in process mode (the client would need it as a file on the node): use mountMode pod or sidecar`,
    );
  const env: Record<string, string> = {};
  const secrets = new Set(secretValues(settings.secret));
  for (const e of cmds.env) {
    if ("value" in e) {
      env[e.name] = e.value;
      continue;
    }
    if ("envsEntry" in e) {
      env[e.name] = settings.envs[e.envsEntry] ?? "";
      continue;
    }
    const v = settings.secret[e.secretKey];
    if (v === undefined) {
      throw new ClientError("invalid", `the Secret has no key "${e.secretKey}" (needed for ${e.name})`);
    }
    env[e.name] = v; // its value is among secretValues(settings.secret) already
  }
  // The meta URL goes on the command line without its password; the client reads it from
  // META_PASSWORD (see driver/juicefs/metaurl.ts), so `ps` and /proc/<pid>/cmdline never show it.
  const meta = env[secretEnv.metaurl.name];
  if (meta !== undefined) {
    const split = splitMetaPassword(meta);
    env[secretEnv.metaurl.name] = split.url;
    if (split.password !== undefined) env[metaPasswordEnv] = split.password;
  }
  const expand = (argv: string[]) => argv.map((a) => expandEnvRefs(a, env));
  const umount = expand(cmds.umount);
  const secretList = [...secrets].sort((a, b) => b.length - a.length);
  return {
    env,
    ...(cmds.prepare ? { prepare: expand(cmds.prepare) } : {}),
    mount: expand(cmds.mount),
    umount,
    umountSafe: !umount.some((a) => secretList.some((s) => a.includes(s))),
    secrets: secretList,
  };
}

function fmtTail(lines: string[]): string {
  return lines.length ? `; last client output:\n${lines.join("\n")}` : "; the client printed nothing";
}

async function readTail(path: string, bytes = 8192): Promise<string> {
  try {
    const fh = await open(path, "r");
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - bytes);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return buf.toString("utf8");
    } finally {
      await fh.close();
    }
  } catch {
    return "";
  }
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Alive and not a zombie. */
async function isAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = st.slice(st.lastIndexOf(")") + 2, st.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return true;
  }
}

async function cmdline(pid: number): Promise<string[] | undefined> {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return undefined;
  }
}

function isMountCommand(argv: string[], mountPoint: string): boolean {
  return argv.includes("mount") && !argv.includes("umount") && argv.includes(mountPoint);
}

/** `pid` is alive and is the client of `mountPoint` (guards against pid reuse). */
async function isClientProcess(pid: number, mountPoint: string): Promise<boolean> {
  if (!(await isAlive(pid))) return false;
  const argv = await cmdline(pid);
  return argv === undefined ? true : isMountCommand(argv, mountPoint);
}

/** Looks for a running `juicefs mount ... MOUNTPOINT` (a client started by an earlier plugin run). */
async function findClientProcess(mountPoint: string): Promise<number | undefined> {
  let names: string[];
  try {
    names = await readdir("/proc");
  } catch {
    return undefined;
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    const pid = Number(n);
    if (pid === process.pid) continue;
    const argv = await cmdline(pid);
    if (argv && isMountCommand(argv, mountPoint) && (await isAlive(pid))) return pid;
  }
  return undefined;
}

/** stat() that fails with ETIMEDOUT instead of waiting forever on a hung FUSE daemon. */
export function statWithin(path: string, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`stat ${path}: timed out`), { code: "ETIMEDOUT" })),
      ms,
    );
  });
  return Promise.race([stat(path), timeout]).finally(() => clearTimeout(timer));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
