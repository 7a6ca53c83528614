import { aborted } from "./errors.ts";

/**
 * At most one operation per key (a target path, a volume name) at a time. A second call while the
 * first is running is refused with ABORTED, as the spec asks; the CO retries with backoff.
 */
export class InFlight {
  readonly #keys = new Set<string>();

  async run<T>(key: string, what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#keys.has(key)) throw aborted(`an operation on ${what} is already in progress`);
    this.#keys.add(key);
    try {
      return await fn();
    } finally {
      this.#keys.delete(key);
    }
  }

  get size(): number {
    return this.#keys.size;
  }
}
