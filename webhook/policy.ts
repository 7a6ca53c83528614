// The time budget and failure policy around a handler: a review always gets an answer before the
// API server's webhook timeout, and no exception ever escapes a handler.
import { type AdmissionRequest, type AdmissionResult, allowed, errored } from "./admission.ts";
import type { FailurePolicy } from "./config.ts";
import { LookupError } from "./lookup.ts";

export interface Handler {
  (req: AdmissionRequest): Promise<AdmissionResult>;
  /** A synchronous decision without I/O, tried first (no timer, no promise race). */
  quick?: (req: AdmissionRequest) => AdmissionResult | undefined;
}

export interface GuardOptions {
  budgetMs: number;
  failurePolicy: FailurePolicy;
  /** Called for every failure the policy answered (metrics, logs). */
  onFailure?: (kind: "budget" | "lookup" | "internal", err: unknown, req: AdmissionRequest) => void;
}

/** The answer when the webhook itself could not decide. */
export function failureAnswer(policy: FailurePolicy, reason: string): AdmissionResult {
  if (policy === "Ignore")
    return allowed([
      `JuiceFS webhook could not decide (${reason}); admitted unchanged (failurePolicy Ignore)`,
    ]);
  return errored(
    500,
    `JuiceFS webhook could not decide (${reason}); refused (failurePolicy Fail), retry later`,
  );
}

class BudgetExceeded extends Error {}

/**
 * The guarded handler. Its `quick` is the handler's own: a synchronous decision needs no budget, so
 * the server tries it first and sets up the timer and the race only for reviews that need lookups.
 */
export function guard(handler: Handler, opts: GuardOptions): Handler {
  const guarded: Handler = async (req) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const run = handler(req);
      const budget = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new BudgetExceeded()), opts.budgetMs);
      });
      return await Promise.race([run, budget]);
    } catch (err) {
      if (err instanceof BudgetExceeded) {
        opts.onFailure?.("budget", err, req);
        return failureAnswer(opts.failurePolicy, `no decision within ${opts.budgetMs} ms`);
      }
      if (err instanceof LookupError) {
        opts.onFailure?.("lookup", err, req);
        return failureAnswer(opts.failurePolicy, `cluster lookup failed: ${err.message}`);
      }
      opts.onFailure?.("internal", err, req);
      return failureAnswer(opts.failurePolicy, `internal error: ${(err as Error)?.message ?? String(err)}`);
    } finally {
      clearTimeout(timer);
    }
  };
  if (handler.quick) {
    const quick = handler.quick;
    guarded.quick = (req) => {
      try {
        return quick(req);
      } catch (err) {
        opts.onFailure?.("internal", err, req);
        return failureAnswer(opts.failurePolicy, `internal error: ${(err as Error)?.message ?? String(err)}`);
      }
    };
  }
  return guarded;
}
