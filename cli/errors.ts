/** A mistake in how the command was called (bad flag, missing file): exit code 2, one line on stderr. */
export class UsageError extends Error {
  override name = "UsageError";
}

export const exitCodes = { ok: 0, failure: 1, usage: 2 } as const;
