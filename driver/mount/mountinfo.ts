// The mount table, read from /proc/self/mountinfo. It is the source of truth for what is mounted
// (clients and the targets bound from them), so state survives a plugin restart without a database.
import { readFileSync } from "node:fs";
import { posix } from "node:path";

export interface MountEntry {
  id: number;
  parentId: number;
  /** "major:minor" of the file system the mount shows. */
  dev: string;
  /** Path inside that file system that is the root of this mount ("/" for a whole-fs mount). */
  root: string;
  mountPoint: string;
  /** Per-mount options (ro/rw, nosuid, ...). */
  options: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

export const defaultMountInfoPath = "/proc/self/mountinfo";

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
export function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const fields = line.split(" ");
    const sep = fields.indexOf("-", 6);
    if (sep < 0 || fields.length < sep + 3) continue;
    entries.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      dev: fields[2] ?? "",
      root: unescapeMountField(fields[3] ?? ""),
      mountPoint: unescapeMountField(fields[4] ?? ""),
      options: (fields[5] ?? "").split(","),
      fsType: fields[sep + 1] ?? "",
      source: unescapeMountField(fields[sep + 2] ?? ""),
      superOptions: (fields[sep + 3] ?? "").split(","),
    });
  }
  return entries;
}

/** `path` is `dir` or lies below it (plain string logic on normalized absolute paths). */
export function isWithin(dir: string, path: string): boolean {
  if (dir === "/") return path.startsWith("/");
  return path === dir || path.startsWith(`${dir}/`);
}

/** Normalized absolute path without a trailing slash. */
export function normalizePath(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

export class MountTable {
  readonly entries: readonly MountEntry[];

  constructor(entries: readonly MountEntry[]) {
    this.entries = entries;
  }

  /** The visible (topmost) mount at a path, if the path is a mount point. */
  at(mountPoint: string): MountEntry | undefined {
    const p = normalizePath(mountPoint);
    let found: MountEntry | undefined;
    for (const e of this.entries) if (e.mountPoint === p) found = e;
    return found;
  }

  /** Every mount stacked at a path, bottom first. */
  allAt(mountPoint: string): MountEntry[] {
    const p = normalizePath(mountPoint);
    return this.entries.filter((e) => e.mountPoint === p);
  }

  /** Mounts whose mount point lies strictly below `dir`. */
  below(dir: string): MountEntry[] {
    const d = normalizePath(dir);
    return this.entries.filter((e) => e.mountPoint !== d && isWithin(d, e.mountPoint));
  }

  /**
   * Mounts that show (part of) the file system tree `client` shows: same device and a root at or
   * below the client's root. That is what a bind mount of the client's mount point (or of a
   * sub-directory of it) looks like, so these are the client's references.
   */
  servedBy(client: MountEntry): MountEntry[] {
    return this.entries.filter((e) => e.id !== client.id && serves(client, e));
  }
}

/** `target` shows a part of the tree `client` shows (a bind mount from it). */
export function serves(client: MountEntry, target: MountEntry): boolean {
  return client.dev === target.dev && isWithin(client.root, target.root);
}

/**
 * Reads the mount table. Synchronously on purpose: procfs generates it in memory in well under a
 * millisecond, while an async read goes through the thread pool in several rounds (10× slower at
 * the median, worse at the tail) and publish latency is what kubelet waits on.
 */
export function readMountTableSync(path: string = defaultMountInfoPath): MountTable {
  return new MountTable(parseMountInfo(readFileSync(path, "utf8")));
}

export async function readMountTable(path: string = defaultMountInfoPath): Promise<MountTable> {
  return readMountTableSync(path);
}
