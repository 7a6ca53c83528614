// Whether this process is the single-file CLI (a Node single executable application, made by
// `npm run build:cli`). node:sea exists in every Node 24; isSea() is true only inside such a binary.
export function isSingleExecutable(): boolean {
  const sea = process.getBuiltinModule("node:sea") as { isSea(): boolean } | undefined;
  return sea?.isSea() ?? false;
}
