/**
 * Tokens a manager has authenticated or issued, by their exact text, with what opening them gave. A
 * browser sends the same cookie on every request until the session changes, so a hit saves the
 * AES-GCM open (cookie sessions) or the HMAC check and the SHA-256 of the id (store sessions) on all
 * but the first. Only tokens that passed every check are kept, and a manager's keys never change, so
 * a hit answers what opening would answer; deadlines and the store's verdict are still checked on
 * every request, after the cache. A client cannot make an entry without a token the server accepted.
 *
 * Bounded in entries and in token length. Entries live in two generations of half the bound each:
 * when the young one is full it becomes the old one and the previous old one is dropped whole, and a
 * hit in the old generation moves the token back to the young one, so a token in use stays while
 * tokens seen once age out (a token that leaves is simply verified again). Evicting "the oldest
 * entry" one at a time from a single Map cost 0.4-0.9 µs per insert in a microbenchmark (V8's
 * ordered hash table leaves deleted slots at the front, and finding the first live key walks them),
 * and about 2.5 µs of CPU per request in a profile of a Fastify server issuing a token per response;
 * two generations cost 0.07-0.08 µs per insert in the same microbenchmark.
 */
export class TokenCache<V> {
  #young = new Map<string, V>();
  #old = new Map<string, V>();
  /** Entries of one generation; the two together never exceed the bound given. */
  readonly #half: number;
  /** A bound of 1 has room for one generation only. */
  readonly #keepOld: boolean;
  readonly #maxTokenChars: number;

  /** `max` is at least 1: a manager with the cache off makes none. */
  constructor(max: number, maxTokenChars: number) {
    this.#half = Math.max(1, Math.floor(max / 2));
    this.#keepOld = max >= 2;
    this.#maxTokenChars = maxTokenChars;
  }

  get(token: string): V | undefined {
    const young = this.#young.get(token);
    if (young !== undefined) return young;
    const old = this.#old.get(token);
    if (old !== undefined) this.#add(token, old);
    return old;
  }

  set(token: string, value: V): void {
    if (token.length > this.#maxTokenChars) return;
    this.#add(token, value);
  }

  #add(token: string, value: V): void {
    if (this.#young.size >= this.#half && !this.#young.has(token)) {
      if (this.#keepOld) this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(token, value);
  }
}
