/** The real timers, taken before any test fakes the clock: the deadlines below keep working then. */
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

/** Polls `cond` every 200 ms until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => realSetTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Waits on events instead of polling: the code that changes some state (a sink's callback, a
 * commit event, an error hook) calls `changed()`, and every `until()` checks its condition
 * again right then. `fail(err)` ends every wait, present and future, with that error at once
 * (e.g. a chain errored: waiting on for its progress would only time out and hide the cause).
 */
export class Changes {
  readonly #waiters = new Set<() => void>();
  #failure: { readonly error: unknown } | undefined;

  /** The state changed: conditions are checked again. */
  changed(): void {
    for (const check of [...this.#waiters]) check();
  }

  /** Fails every wait with `error` (the first one reported wins). */
  fail(error: unknown): void {
    this.#failure ??= { error };
    this.changed();
  }

  /**
   * Resolves once `check()` holds (checked now and at every `changed()`); rejects on `fail()`,
   * when `check` throws, or after `timeoutMs` (with `detail()` in the message, to say where
   * things stood).
   */
  until(what: string, check: () => boolean, timeoutMs = 60_000, detail?: () => string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const stop = (): void => {
        realClearTimeout(timer);
        this.#waiters.delete(test);
      };
      const test = (): void => {
        if (this.#failure) {
          stop();
          const { error } = this.#failure;
          reject(new Error(`stopped waiting for ${what}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`, { cause: error }));
          return;
        }
        let ok: boolean;
        try {
          ok = check();
        } catch (err) {
          stop();
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        if (!ok) return;
        stop();
        resolve();
      };
      const timer = realSetTimeout(() => {
        stop();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? ` (${detail()})` : ''}`));
      }, timeoutMs);
      this.#waiters.add(test);
      test();
    });
  }
}
