/**
 * Tokens a manager has authenticated or issued, by their exact text, with what opening them gave. A
 * browser sends the same cookie on every request until the session changes, so a hit saves the
 * AES-GCM open (cookie sessions) or the HMAC check and the SHA-256 of the id (store sessions) on all
 * but the first. Only tokens that passed every check are kept, and a manager's keys never change, so
 * a hit answers what opening would answer; deadlines and the store's verdict are still checked on
 * every request, after the cache. A client cannot make an entry without a token the server accepted.
 *
 * Bounded in entries and in token length; the oldest entry leaves first (a hot token that leaves is
 * simply verified again).
 */
export class TokenCache<V> {
  readonly #entries = new Map<string, V>();
  readonly #max: number;
  readonly #maxTokenChars: number;

  /** `max` is at least 1: a manager with the cache off makes none. */
  constructor(max: number, maxTokenChars: number) {
    this.#max = max;
    this.#maxTokenChars = maxTokenChars;
  }

  get(token: string): V | undefined {
    return this.#entries.get(token);
  }

  set(token: string, value: V): void {
    if (token.length > this.#maxTokenChars) return;
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(token, value);
  }
}
