import { readFile } from "node:fs/promises";
import { UsageError } from "./errors.ts";

/** Reads a file named on the command line ("-" = stdin); a missing or unreadable file is a usage error. */
export async function readInputFile(path: string, flag = "-f"): Promise<string> {
  if (path === "-") {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  }
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (code ?? String(err));
    throw new UsageError(`${flag} ${path}: ${why}`);
  }
}
