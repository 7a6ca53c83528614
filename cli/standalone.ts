// Entry of the single-file CLI (Node single executable application, `npm run build:cli`) and of the
// kubectl plugin: installed as `kubectl-jfs` on PATH, `kubectl jfs inject ...` runs this with the
// arguments after the plugin name, and usage and errors then say "kubectl jfs".
import { basename } from "node:path";
import { main } from "./main.ts";

const invokedAs = basename(process.argv0);
const name = invokedAs.startsWith("kubectl-") ? `kubectl ${invokedAs.slice("kubectl-".length)}` : undefined;
// In a single executable process.argv is [executable, executable, ...arguments].
main(process.argv.slice(2), undefined, { name }).then((code) => {
  process.exitCode = code;
});
