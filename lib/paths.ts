import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository / image root (the folder that holds package.json). */
export const projectRoot: string = join(dirname(fileURLToPath(import.meta.url)), "..");
