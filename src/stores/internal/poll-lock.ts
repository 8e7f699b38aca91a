/** A release function, as `SessionStore.lock` resolves it. */
export type Release = () => Promise<void>;

/**
 * Retries `attempt` (one try at a lease-style lock, resolving its release or `null` when held) until it
 * succeeds or `waitMs` of real time has passed, whatever clock the store uses for deadlines. The delay
 * doubles from `firstMs` to `maxMs` (default 10 to 200 ms) with jitter, so waiters on one session do
 * not retry in lockstep. The lock of every store that takes a lease (SQLite, PostgreSQL, MySQL, Redis)
 * waits this way.
 */
export async function pollLock(
  attempt: () => Promise<Release | null>,
  waitMs: number,
  { firstMs = 10, maxMs = 200 }: { firstMs?: number; maxMs?: number } = {},
): Promise<Release | null> {
  const giveUpAt = Date.now() + waitMs;
  let delay = firstMs;
  for (;;) {
    const release = await attempt();
    if (release) return release;
    const left = giveUpAt - Date.now();
    if (left <= 0) return null;
    await new Promise((resolve) =>
      setTimeout(resolve, Math.min(left, delay / 2 + Math.random() * (delay / 2))),
    );
    delay = Math.min(delay * 2, maxMs);
  }
}
