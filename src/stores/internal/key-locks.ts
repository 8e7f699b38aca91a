type Release = () => Promise<void>;
interface Waiter {
  ttlMs: number;
  grant: (release: Release | null) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}
interface Held {
  token: object;
  timer: ReturnType<typeof setTimeout> | undefined;
  waiters: Waiter[];
}
// setTimeout fires at once past 2^31 - 1 ms; a longer ttl is capped rather than broken.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** In-process mutexes per key, granted first come, first served. Timers are unref'd. */
export function createKeyLocks() {
  const held = new Map<string, Held>();

  function take(key: string, ttlMs: number, waiters: Waiter[]): Release {
    const token = {};
    const release = async () => {
      const current = held.get(key);
      // A holder whose ttl ran out owns nothing: its late release must not free the next holder.
      if (current?.token !== token) return;
      clearTimeout(current.timer);
      const next = current.waiters.shift();
      if (!next) {
        held.delete(key);
        return;
      }
      clearTimeout(next.timer);
      next.grant(take(key, next.ttlMs, current.waiters));
    };
    // The ttl frees the lock of a request that crashed or hung, so one bad request cannot block a session.
    const timer = Number.isFinite(ttlMs)
      ? setTimeout(release, Math.min(ttlMs, MAX_TIMER_MS))
      : undefined;
    timer?.unref?.();
    held.set(key, { token, timer, waiters });
    return release;
  }

  return {
    acquire(key: string, ttlMs: number, waitMs: number): Release | null | Promise<Release | null> {
      const current = held.get(key);
      if (!current) return take(key, ttlMs, []);
      if (!(waitMs > 0)) return null;
      return new Promise<Release | null>((grant) => {
        const waiter: Waiter = { ttlMs, grant, timer: undefined };
        waiter.timer = setTimeout(
          () => {
            const queue = held.get(key)?.waiters ?? [];
            const position = queue.indexOf(waiter);
            if (position >= 0) queue.splice(position, 1);
            grant(null);
          },
          Math.min(waitMs, MAX_TIMER_MS),
        );
        waiter.timer.unref?.();
        current.waiters.push(waiter);
      });
    },
    /** Stops every timer; waiters get `null`, as if their wait ran out. */
    clear(): void {
      for (const lock of held.values()) {
        clearTimeout(lock.timer);
        for (const waiter of lock.waiters) {
          clearTimeout(waiter.timer);
          waiter.grant(null);
        }
      }
      held.clear();
    },
  };
}
