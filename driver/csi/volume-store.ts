// The controller's records of the volumes it provisioned, kept inside the JuiceFS file system
// (`.juicefs-csi/volumes/<id>.json` at its root) so they survive restarts and any controller
// replica sees them. Records, not markers inside the volume directory: applications such as
// databases refuse a data directory that is not empty.
import { chmod, mkdir, readdir, readFile, realpath, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isWithin } from "../mount/mountinfo.ts";
import { internal } from "./errors.ts";
import { registryDirName, safeSubPath } from "./path-pattern.ts";

export interface VolumeRecord {
  volumeId: string;
  /** Directory of the volume, relative to the file system root. */
  subPath: string;
  /** Bytes, as a decimal string (int64). "0" = unknown. */
  capacityBytes: string;
  /** The directory did not exist before CreateVolume: DeleteVolume may remove it. */
  created: boolean;
  createdAt: string;
}

export class VolumeStore {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  #dir(): string {
    return join(this.root, registryDirName, "volumes");
  }

  #file(volumeId: string): string {
    return join(this.#dir(), `${encodeURIComponent(volumeId)}.json`);
  }

  async get(volumeId: string): Promise<VolumeRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.#file(volumeId), "utf8")) as VolumeRecord;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw internal(`reading the record of volume ${volumeId}: ${(err as Error).message}`);
    }
  }

  async put(rec: VolumeRecord): Promise<void> {
    await mkdir(this.#dir(), { recursive: true });
    const file = this.#file(rec.volumeId);
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, `${JSON.stringify(rec, null, 2)}\n`);
    await rename(tmp, file);
  }

  async remove(volumeId: string): Promise<void> {
    await rm(this.#file(volumeId), { force: true });
  }

  async all(): Promise<VolumeRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.#dir());
    } catch {
      return [];
    }
    const out: VolumeRecord[] = [];
    for (const n of names) {
      if (!n.endsWith(".json")) continue;
      try {
        out.push(JSON.parse(await readFile(join(this.#dir(), n), "utf8")) as VolumeRecord);
      } catch {
        // a half-written record of a concurrent writer: skip
      }
    }
    return out;
  }

  /** Absolute path of a volume directory (the sub-path is validated again). */
  pathOf(subPath: string): string {
    return join(this.root, safeSubPath(subPath, "subPath"));
  }

  /** Creates the directory writable by any pod user; reports whether it existed before. */
  async makeDir(subPath: string): Promise<boolean> {
    const dir = this.pathOf(subPath);
    const first = await mkdir(dir, { recursive: true });
    if (first !== undefined) await chmod(dir, 0o777);
    return first === undefined;
  }

  /**
   * Removes a volume directory, after checking that the real path (symlinks resolved) is strictly
   * inside the real root: a link planted in the file system must not redirect the delete.
   */
  async removeDir(subPath: string): Promise<void> {
    const dir = this.pathOf(subPath);
    let real: string;
    try {
      real = await realpath(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    const realRoot = await realpath(this.root);
    if (real === realRoot || !isWithin(realRoot, real) || isWithin(join(realRoot, registryDirName), real)) {
      throw internal(`refusing to delete ${subPath}: it resolves outside the volume area`);
    }
    await rm(real, { recursive: true, force: true });
  }
}
