import type { CsrfBinding, CsrfCandidate, CsrfSigner } from "./csrf.js";
import { SessionError } from "./errors.js";
import { flashEntriesOf, flashFieldsOf, newFlashField } from "./internal/flash.js";
import type { InvalidReason } from "./options.js";
import type { FlashField, SessionMeta, SessionPatch } from "./stores/store.js";

/** Session data: a JSON object. The schema, when given, narrows it. */
export type SessionData = Record<string, unknown>;

/** Well-known flash levels; any other string works too. */
export type FlashLevel = "debug" | "info" | "success" | "warning" | "error" | (string & {});

/** One flash message with its level, as `flashEntries()` returns them. */
export interface FlashEntry {
  level: FlashLevel;
  message: string;
}

/**
 * One visitor's session, for the length of one request. Reads are synchronous; every change is
 * recorded and written by `sessions.commit` (adapters call it for you), and an unchanged session
 * writes nothing. Serialized (`JSON.stringify`, `res.json(session)`, `console.log`), it shows
 * `{ data, userId, isNew, createdAt }`: never its id, CSRF seed or cookie token.
 *
 * @example
 * ```ts
 * const session = await sessions.load(request);
 * session.set("count", ((session.get("count") as number) ?? 0) + 1); // no cast with a `schema`
 * session.flash("success", "Saved");
 * await sessions.commit(session, response.headers);
 * ```
 */
export interface Session<T extends SessionData = SessionData> {
  /** The session id. Never log it: it is the credential. Changes on `regenerate` and `destroy`. */
  readonly id: string;
  /** The data, typed by the schema. Read-only: change it with set, delete, update or clear. */
  readonly data: Readonly<Partial<T>>;
  /** True when the request carried no valid session. */
  readonly isNew: boolean;
  /**
   * Why the session the request carried was refused, when this one is new because of it: the
   * reasons `onInvalid` is told, per request, so a page can say what happened. `undefined` on a first
   * visit, on a session that loaded, and after `destroy`.
   *
   * @example
   * ```ts
   * if (session.invalidReason === "expired-idle") session.flash("info", "You were signed out after a while idle");
   * if (session.invalidReason === "unknown-session") session.flash("info", "This device was signed out");
   * ```
   */
  readonly invalidReason: InvalidReason | undefined;
  /** The user this session is bound to by `regenerate({ userId })`. */
  readonly userId: string | undefined;
  /** Epoch ms of creation; the absolute deadline counts from here. */
  readonly createdAt: number;
  /** True when this request changed something that `commit` will write. */
  readonly isDirty: boolean;
  /**
   * Epoch ms at which the session ends if no further request comes: the earlier of its idle and
   * absolute deadlines as this request's commit leaves them (a write, or an idle deadline due to slide,
   * moves the idle one to now + `idleTimeout`). They are the session's own: a remembered session's
   * (`rememberMe()`) with the `rememberMe` option. The server enforces this instant whatever the cookie
   * says. A session nothing has saved yet (new, or just destroyed) reports the deadline it would get if
   * written now. Without either timeout it is 400 days after the last write, the cap a store keeps
   * the record for and a cookie session is held to. A cookie's Max-Age, when it has one, ends here
   * too (to the second).
   *
   * @example
   * ```ts
   * // A "you will be signed out soon" banner, or an API's expires_in
   * const secondsLeft = Math.round((session.expiresAt - Date.now()) / 1000);
   * ```
   */
  readonly expiresAt: number;
  get<K extends keyof T & string>(key: K): T[K] | undefined;
  /** Sets one key; `undefined` deletes it. Throws `ERR_SESSION_TOO_LARGE` past a cookie session's `maxSize`. */
  set<K extends keyof T & string>(key: K, value: T[K] | undefined): void;
  has(key: keyof T & string): boolean;
  delete(key: keyof T & string): void;
  /** Merges changes (or what a function of the data returns); `undefined` values delete. */
  update(changes: Partial<T> | ((data: Readonly<Partial<T>>) => Partial<T>)): void;
  /** Empties the data and flash messages; the session, its id and its user binding remain. */
  clear(): void;
  /**
   * Queues a message for a later request; it is read once. Each message is stored on its own, so
   * with a server store two requests of one session that flash at once both keep their message,
   * and a request reading messages leaves one that another request added meanwhile.
   */
  flash(level: FlashLevel, message: string): void;
  /** The messages of one level in the order they were added, removed as they are read. */
  flashes(level: FlashLevel): string[];
  /** Every pending message with its level, in the order they were added, removed as they are read. */
  flashEntries(): FlashEntry[];
  /**
   * "Remember me": whether this session's cookie outlives the browser. `true` gives it a `Max-Age` (the
   * time left to its idle or absolute deadline), `false` makes it a browser-session cookie, gone when the
   * browser closes; unset, the `cookie.persistent` option decides. The server-side deadlines hold either
   * way: with the `rememberMe` option of `createSessions`, `true` gives the session that option's longer
   * deadlines (store TTL and `expiresAt` included), and `false` returns it to the ordinary ones, by
   * which a session older than `absoluteTimeout` has ended. The choice travels with the session,
   * sealed in the cookie or kept in the store: it survives `regenerate` and `clear`, not `destroy`,
   * nor `regenerate({ userId })` on a session bound to another user (which starts empty).
   *
   * @example
   * ```ts
   * // createSessions({ secret, idleTimeout: "30m", cookie: { persistent: false },
   * //   rememberMe: { idleTimeout: "30d" } }): 30 minutes, or 30 days once remembered
   * await session.regenerate({ userId: user.id });
   * session.rememberMe(form.get("remember") === "on");
   * ```
   */
  rememberMe(remember?: boolean): void;
  /**
   * A name for this session on a "your devices" page ("Work laptop"), cut to 100 characters;
   * `undefined` removes it. Store sessions list it.
   */
  setLabel(label: string | undefined): void;
  /**
   * New id, same data: call it on sign-in and on any privilege change, against session fixation
   * (OWASP Session Management Cheat Sheet, "Renew the Session ID After Any Privilege Level Change").
   * With a store, the old id stops working when the response is committed: its record is deleted.
   * A cookie session has no server record to delete, so a copy of the old cookie still opens until
   * its own idle or absolute deadline (sealed inside it); keep timeouts short, or use a store, where
   * that matters. `userId` binds (or, with null, unbinds) a user. A session bound to another user,
   * or unbound from its user (a sign-out that keeps the session), starts empty and anew (data,
   * flashes, label, remember-me choice; its creation time is now): one user's data never carries
   * over to the next who signs in on the same browser, while a visitor's data (a cart) carries over
   * at their own sign-in. The session's CSRF tokens end too (see `csrfToken`). Throws
   * `ERR_SESSION_TOO_LARGE`, changing nothing, when the user id would push a cookie session past
   * `maxSize`.
   */
  regenerate(options?: { userId?: string | null }): Promise<void>;
  /** Ends the session: its record is deleted and the cookie cleared. Later writes start a new one. */
  destroy(): void;
  /**
   * A CSRF token for this session, to put in a form's hidden field or hand to scripts: an HMAC of a
   * seed the session keeps beside its data (OWASP's synchronizer token pattern; the first call makes
   * the seed, and the commit saves it). Every token of a session verifies until the seed goes:
   * `regenerate()` (sign-in, a user switch) and `destroy()` end them all, while the automatic
   * renewal of `renewInterval` keeps them, so a form open in one tab survives a renewal another
   * tab's request made. The seed is derived from the session's id under the secret, so two tabs
   * asking for a first token at once make the same one. Each call returns a different spelling (masked with a fresh pad, against
   * BREACH-style compression attacks on pages that show it); use any of them. Asking makes a new
   * session persist, so the visitor's next request brings back the session the token is bound to (a
   * sign-in form shown to a first visitor, then its POST), and marks the response
   * `Cache-Control: no-store` (a shared cache must not hand one session's token to others). Made
   * with the first secret; verified with any still listed. Throws `ERR_SESSION_STATE` for a session
   * not yet saved once its response has begun (a saved one without a seed then gets a token of its
   * id, which a renewal ends), and `ERR_SESSION_TOO_LARGE`, changing nothing, when the seed would
   * push a cookie session past `maxSize`.
   *
   * @example
   * ```ts
   * const token = await session.csrfToken();
   * const form = `<form method="post"><input type="hidden" name="_csrf" value="${token}">...</form>`;
   * ```
   */
  csrfToken(): Promise<string>;
  /**
   * Whether `token` is a CSRF token of this session (see `csrfToken`), compared in constant time:
   * one of its seed, or one of its id as versions before the seed made them (the current id, or the
   * id a renewal in this very request moved away from). Resolves `false` for anything else:
   * missing, not a string, malformed, tampered, another session's, one from before a `regenerate`
   * or `destroy`, or made with a secret no longer listed; it never throws on client input. The
   * `requireCsrfToken` guard calls it; call it yourself where the guard cannot read the body (the
   * node-based adapters).
   *
   * @example
   * ```ts
   * const form = await request.formData(); // or the body your framework's parser gave
   * const allowed = await session.verifyCsrfToken(form.get("_csrf"));
   * const response = allowed ? new Response("Saved") : new Response("Forbidden", { status: 403 });
   * ```
   */
  verifyCsrfToken(token: unknown): Promise<boolean>;
}

/** The longest label `setLabel` keeps, and listByUser shows. */
export const LABEL_MAX_CHARS = 100;
const DELETED: unique symbol = Symbol("deleted");
type Change = unknown | typeof DELETED;

/** What the manager needs to know about the record this request arrived with. */
export interface SessionOrigin {
  id: string;
  /** The store key, in store mode. */
  key: string | undefined;
}

/** Hooks the manager gives each session: the clock, the id generator and the size guard. */
export interface SessionHooks {
  now(): number;
  generateId(): string;
  /** Throws when the session would no longer fit its transport (cookie sessions only). */
  checkSize: ((session: SessionState) => void) | undefined;
  /** The deadline commit will leave the session with (see `Session.expiresAt`). */
  expiresAt(session: SessionState): number;
  /** Makes and checks the manager's CSRF tokens. */
  csrf: CsrfSigner;
  /** Whether the request carried the session in the header transport, which no other site can send. */
  viaHeader(session: SessionState): boolean;
}

/**
 * The implementation. A class rather than a factory of closures: one of these is made per request,
 * and prototype methods keep that allocation to a single small object.
 * @internal
 */
export class SessionState implements Session<SessionData> {
  id: string;
  data: SessionData;
  meta: SessionMeta;
  isNew: boolean;
  /** The record this request loaded, if any: what regenerate and destroy must delete. */
  origin: SessionOrigin | undefined;
  /** Data keys changed since load (or the last commit). */
  changes = new Map<string, Change>();
  /** Meta fields changed since load (or the last commit). */
  metaChanges = new Set<keyof SessionMeta>();
  /** The whole record must be written (clear, regenerate, a new session). */
  replaced = false;
  /**
   * The data keys `clear` emptied, so that a store session keeping its id writes the clear as a
   * patch deleting them: a patch is refused for a record destroyed meanwhile, a whole write is not.
   */
  clearedKeys: Set<string> | undefined;
  /** The origin must be deleted at commit. */
  destroyed = false;
  /** The user the destroyed origin was bound to, for the "destroyed" event. */
  destroyedUserId: string | undefined;
  /** The destroyed origin's `meta.lineage`, for a sign-out that finds its record moved. */
  destroyedLineage: string | undefined;
  /**
   * A move to a new id in this request switched user (or unbound one): the new record starts empty,
   * where a move keeping the data is written from the store's current record with this request's
   * changes (see the manager's commit).
   */
  switchedUser = false;
  /**
   * Set by an adapter once the response has begun: its commit was the last, so a change from here on
   * could reach neither the cookie nor the store. Such a change throws rather than vanish.
   */
  closed = false;
  /**
   * A CSRF token was handed out in this request: the response shows it, and a shared cache that
   * kept it would hand one session's token to every visitor.
   */
  csrfIssued = false;
  /**
   * Set by the manager's `commit` as it begins: from then on the id it writes (a renewal's new one)
   * is the one the client holds. A session closed without one (Next's read-only `getSession`)
   * leaves the client with the id it came with.
   */
  commitBegun = false;
  /** Set by the manager when the token must be re-issued though nothing changed (rotation, touch). */
  reissue: "rotate" | "touch" | "renew" | undefined;
  /** Set by the manager on a session made new because the request's was refused. */
  invalidReason: InvalidReason | undefined = undefined;
  /** Transport facts the manager keeps for commit. */
  readonly transport: unknown;
  readonly hooks: SessionHooks;

  constructor(
    id: string,
    data: SessionData,
    meta: SessionMeta,
    origin: SessionOrigin | undefined,
    hooks: SessionHooks,
    transport: unknown,
  ) {
    this.id = id;
    this.data = data;
    this.meta = meta;
    this.origin = origin;
    this.isNew = origin === undefined;
    this.hooks = hooks;
    this.transport = transport;
  }

  get userId(): string | undefined {
    return this.meta.userId;
  }

  get createdAt(): number {
    return this.meta.createdAt;
  }

  get expiresAt(): number {
    return this.hooks.expiresAt(this);
  }

  get isDirty(): boolean {
    return this.hasWrites || this.destroyed;
  }

  /** Something commit must write (a destroy alone only deletes). */
  get hasWrites(): boolean {
    return this.changes.size > 0 || this.metaChanges.size > 0 || this.replaced;
  }

  get(key: string): unknown {
    // Own keys only: get("constructor") of a session without one is undefined, not Object.
    return Object.hasOwn(this.data, key) ? this.data[key] : undefined;
  }

  has(key: string): boolean {
    return Object.hasOwn(this.data, key);
  }

  set(key: string, value: unknown): void {
    this.apply({ [key]: value });
  }

  delete(key: string): void {
    if (this.has(key)) this.apply({ [key]: undefined });
  }

  update(changes: SessionData | ((data: Readonly<SessionData>) => SessionData)): void {
    const partial = typeof changes === "function" ? changes(this.data) : changes;
    if (typeof partial !== "object" || partial === null || Array.isArray(partial)) {
      throw new SessionError("ERR_SESSION_STATE", "update() takes an object of changes");
    }
    this.apply(partial);
  }

  clear(): void {
    this.assertOpen();
    const before = {
      data: this.data,
      meta: this.meta,
      replaced: this.replaced,
      changes: this.changes,
      metaChanges: new Set(this.metaChanges),
      clearedKeys: this.clearedKeys,
    };
    // What the stored record may hold: the keys in the data, and those this request deleted before
    // (gone from `data`, and from the patch once `changes` is dropped below).
    const cleared = new Set([...(this.clearedKeys ?? []), ...Object.keys(this.data)]);
    for (const [key, change] of this.changes) if (change === DELETED) cleared.add(key);
    this.clearedKeys = cleared;
    this.data = {};
    this.changes = new Map();
    this.removeFlashes(flashFieldsOf(this.meta));
    this.replaced = true;
    this.guardSize(() => Object.assign(this, before));
  }

  flash(level: FlashLevel, message: string): void {
    if (typeof level !== "string" || typeof message !== "string") {
      throw new SessionError("ERR_SESSION_STATE", "flash(level, message) takes two strings");
    }
    // A field of its own: a commit adds just this message, beside any another request adds.
    const field = newFlashField(this.hooks.now());
    this.changeSealedMeta(field, { ...this.meta, [field]: [level, message] });
  }

  flashes(level: FlashLevel): string[] {
    const fields = flashFieldsOf(this.meta).filter((field) => this.meta[field]?.[0] === level);
    const messages = fields.map((field) => (this.meta[field] as [string, string])[1]);
    this.removeFlashes(fields);
    return messages;
  }

  flashEntries(): FlashEntry[] {
    const fields = flashFieldsOf(this.meta);
    const entries = flashEntriesOf(this.meta, fields);
    this.removeFlashes(fields);
    return entries;
  }

  rememberMe(remember = true): void {
    if (typeof remember !== "boolean") {
      throw new SessionError("ERR_SESSION_STATE", "rememberMe() takes true or false");
    }
    if (this.meta.persistent === remember) return;
    this.changeSealedMeta("persistent", { ...this.meta, persistent: remember });
  }

  setLabel(label: string | undefined): void {
    if (label !== undefined && typeof label !== "string") {
      throw new SessionError("ERR_SESSION_STATE", "setLabel() takes a string or undefined");
    }
    this.assertOpen();
    this.meta = { ...this.meta };
    if (label === undefined) delete this.meta.label;
    else this.meta.label = label.slice(0, LABEL_MAX_CHARS);
    this.metaChanges.add("label");
  }

  async regenerate(options: { userId?: string | null } = {}): Promise<void> {
    if (
      options.userId !== undefined &&
      options.userId !== null &&
      typeof options.userId !== "string"
    ) {
      throw new SessionError("ERR_SESSION_STATE", "regenerate({ userId }) takes a string or null");
    }
    // Sign-in and every other privilege change: the CSRF tokens shown before it end (OWASP CSRF
    // Prevention Cheat Sheet, "Login CSRF": a pre-session is not carried into the real one).
    this.moveToNewId(options.userId, false);
  }

  /**
   * The manager's renewal at load (`renewInterval`): a new id against a stolen one, no privilege
   * change, so the CSRF seed stays and forms open in other tabs keep their tokens. @internal
   */
  renew(): void {
    this.moveToNewId(undefined, true);
    this.reissue = "renew";
  }

  private moveToNewId(userId: string | null | undefined, keepCsrfSeed: boolean): void {
    this.assertOpen();
    const before = {
      id: this.id,
      meta: this.meta,
      replaced: this.replaced,
      reissue: this.reissue,
      data: this.data,
      changes: this.changes,
      metaChanges: new Set(this.metaChanges),
    };
    this.id = this.hooks.generateId();
    this.meta = { ...this.meta, renewedAt: this.hooks.now() };
    if (!keepCsrfSeed && this.meta.csrf !== undefined) {
      delete this.meta.csrf;
      this.metaChanges.add("csrf");
    }
    const previous = this.meta.userId;
    const switchesUser = previous !== undefined && userId !== undefined && previous !== userId;
    this.switchedUser ||= switchesUser;
    if (switchesUser) {
      // Signing in as someone else on a browser still signed in as another user, or signing out
      // (unbinding) ahead of whoever signs in next: nothing of the user's session (a role kept in
      // it, their cart, their device label) may come along.
      this.data = {};
      this.changes = new Map();
      // A new user's session begins now: its absolute deadline and "signed in since" count from here.
      this.meta.createdAt = this.meta.renewedAt;
      for (const field of [...flashFieldsOf(this.meta), "label", "persistent"] as const) {
        if (this.meta[field] === undefined) continue;
        delete this.meta[field];
        this.metaChanges.add(field);
      }
    }
    if (userId === null) delete this.meta.userId;
    else if (userId !== undefined) this.meta.userId = userId;
    this.replaced = true;
    this.reissue = undefined;
    // The user id is sealed into a cookie session too: past maxSize, its next load would refuse it.
    this.guardSize(() => Object.assign(this, before));
  }

  destroy(): void {
    this.assertOpen();
    if (this.origin && !this.destroyed) {
      this.destroyed = true;
      // Meta is reset below; the "destroyed" audit event still names the user.
      this.destroyedUserId = this.meta.userId;
      this.destroyedLineage = this.meta.lineage;
    }
    this.startAfresh(undefined);
  }

  async csrfToken(): Promise<string> {
    for (;;) {
      let binding: CsrfBinding;
      if (this.meta.csrf !== undefined) binding = { seed: this.meta.csrf };
      else if (this.closed && this.origin !== undefined && !this.destroyed) {
        // Too late to save a seed, but the client holds this saved session's id: a token of the id
        // works as every token did before seeds, until a renewal moves the id. Which id: a renewal
        // at load moved `id` in memory, and only a commit sends it; a session closed read-only keeps
        // the client on the id it came with (the renewing request still accepts its tokens).
        binding = { id: this.commitBegun ? this.id : this.origin.id };
      } else {
        const id = this.id;
        // A renewal at load: the seed of the id the client came with, the one a renewal racing
        // this request carries too (see the manager's keepSeedOf), since only one of them lands.
        const from = this.reissue === "renew" && this.origin ? this.origin.id : id;
        const seed = await this.hooks.csrf.seedOf(from);
        // The session moved on while the seed was made (a regenerate, the same seed from a call
        // beside this one, the response began): the rules above decide again.
        if (this.id !== id || this.meta.csrf !== undefined) continue;
        if (this.closed && this.origin !== undefined && !this.destroyed) continue;
        // A change to write, so a new visitor's session is saved too and the token's POST brings
        // back the session that holds the seed. A session not yet saved throws here once closed.
        this.changeSealedMeta("csrf", { ...this.meta, csrf: seed });
        binding = { seed };
      }
      this.csrfIssued = true;
      return this.hooks.csrf.issue(binding);
    }
  }

  async verifyCsrfToken(token: unknown): Promise<boolean> {
    const candidates: CsrfCandidate[] = [];
    if (this.meta.csrf !== undefined) candidates.push({ seed: this.meta.csrf });
    // Tokens of the id, from versions before the seed (and late tokens, see csrfToken). A renewal
    // at load moved the id before the handler ran: a page served under the id this request arrived
    // with is still this session's. An explicit regenerate() clears `reissue`.
    candidates.push({ id: this.id });
    const renewedFrom = this.reissue === "renew" ? this.origin?.id : undefined;
    if (renewedFrom !== undefined) candidates.push({ id: renewedFrom });
    // The seeds those ids make (see csrf.ts), last since each costs an HMAC: a token made while the
    // kept seed was lost verifies while its id holds, as the id's own tokens do.
    candidates.push({ seedOf: this.id });
    if (renewedFrom !== undefined) candidates.push({ seedOf: renewedFrom });
    return this.hooks.csrf.verify(token, candidates);
  }

  /**
   * Made a fresh, empty session by the manager: a commit found its record gone (signed out
   * elsewhere since load). Unlike `destroy`, nothing is left to delete or clear.
   */
  abandon(): void {
    this.destroyed = false;
    this.startAfresh("unknown-session");
  }

  /** A new id, empty data and fresh meta, with nothing recorded to write. */
  private startAfresh(invalidReason: InvalidReason | undefined): void {
    const now = this.hooks.now();
    this.id = this.hooks.generateId();
    this.data = {};
    this.meta = { createdAt: now, touchedAt: now, renewedAt: now };
    this.changes = new Map();
    this.metaChanges = new Set();
    this.replaced = false;
    this.clearedKeys = undefined;
    this.switchedUser = false;
    this.reissue = undefined;
    this.isNew = true;
    this.invalidReason = invalidReason;
  }

  /**
   * What `JSON.stringify(session)` shows (`res.json(req.session)`, a logger given the session): the
   * data and what a page may show of it, never the id, the CSRF seed or the cookie token, which
   * are the credential and its secrets (the class's own fields hold all three).
   */
  toJSON(): Record<string, unknown> {
    return {
      data: this.data,
      userId: this.meta.userId,
      isNew: this.isNew,
      createdAt: this.meta.createdAt,
    };
  }

  /** What `console.log(session)` shows on Node and Bun (util.inspect's symbol): as `toJSON`. */
  [Symbol.for("nodejs.util.inspect.custom")](): Record<string, unknown> {
    return this.toJSON();
  }

  /** Forgets the change log after a successful commit, so a second commit writes only what is new. */
  markCommitted(origin: SessionOrigin | undefined): void {
    this.origin = origin;
    this.changes = new Map();
    this.metaChanges = new Set();
    this.replaced = false;
    this.clearedKeys = undefined;
    this.destroyed = false;
    this.destroyedUserId = undefined;
    this.destroyedLineage = undefined;
    this.switchedUser = false;
    this.reissue = undefined;
  }

  /**
   * This request's changes as a store patch: its data changes, and `meta` with each meta field it
   * changed added (null where removed). `meta` is the caller's fresh object, filled in place.
   */
  storePatch(meta: Partial<Record<keyof SessionMeta, unknown>>): SessionPatch {
    for (const field of this.metaChanges) meta[field] = this.meta[field] ?? null;
    const set: SessionData = {};
    const deleted: string[] = [];
    // forEach, not for-of: no iterator or entry array per change on every store write.
    this.changes.forEach((value, key) => {
      if (value === DELETED) deleted.push(key);
      // An assignment to "__proto__" would set the patch's prototype, and no store would see it.
      else if (key === "__proto__") Object.defineProperty(set, key, ownData(value));
      else set[key] = value;
    });
    if (this.clearedKeys) {
      for (const key of this.clearedKeys) if (!this.changes.has(key)) deleted.push(key);
    }
    return { set, delete: deleted, meta: meta as SessionPatch["meta"] };
  }

  /**
   * Takes `meta` with one field changed that a cookie session seals into its token, undone whole if
   * the cookie would then outgrow maxSize: a refused change leaves nothing to write, so commit does
   * not re-seal for it.
   */
  private changeSealedMeta(field: keyof SessionMeta, meta: SessionMeta): void {
    this.assertOpen();
    const before = this.meta;
    const wasChanged = this.metaChanges.has(field);
    this.meta = meta;
    this.metaChanges.add(field);
    this.guardSize(() => {
      this.meta = before;
      if (!wasChanged) this.metaChanges.delete(field);
    });
  }

  /**
   * Removes messages that were read or cleared: exactly their fields, so that a commit leaves a
   * message another request added meanwhile.
   */
  private removeFlashes(fields: readonly FlashField[]): void {
    if (fields.length === 0) return;
    this.assertOpen();
    this.meta = { ...this.meta };
    for (const field of fields) {
      delete this.meta[field];
      this.metaChanges.add(field);
    }
  }

  private apply(partial: SessionData): void {
    this.assertOpen();
    const data = { ...this.data };
    const previous = new Map<string, Change | undefined>();
    for (const key of Object.keys(partial)) {
      const value = partial[key];
      previous.set(key, this.changes.has(key) ? this.changes.get(key) : undefined);
      // What JSON cannot hold and leaves out (undefined, a function, a symbol) deletes the key here,
      // as a cookie session's JSON would: every store then sees a delete (PostgreSQL kept the old
      // value, MySQL wrote null, the others dropped the key).
      if (value === undefined || typeof value === "function" || typeof value === "symbol") {
        if (!Object.hasOwn(data, key)) continue;
        delete data[key];
        this.changes.set(key, DELETED);
      } else {
        // A "__proto__" key from parsed input must become data, not this object's prototype.
        if (key === "__proto__") Object.defineProperty(data, key, ownData(value));
        else data[key] = value;
        this.changes.set(key, value);
      }
    }
    const before = this.data;
    this.data = data;
    this.guardSize(() => {
      this.data = before;
      for (const [key, change] of previous) {
        if (change === undefined) this.changes.delete(key);
        else this.changes.set(key, change);
      }
    });
  }

  private assertOpen(): void {
    if (!this.closed) return;
    throw new SessionError(
      "ERR_SESSION_STATE",
      "the session was committed when the response began (its first write, flushHeaders or a returned Response): a change made after that cannot be saved; change the session before the response starts",
    );
  }

  private guardSize(undo: () => void): void {
    if (!this.hooks.checkSize) return;
    try {
      this.hooks.checkSize(this);
    } catch (err) {
      undo();
      throw err;
    }
  }
}

/**
 * For adapters: the next commit touches the session (stamps `touchedAt`, moving a sliding deadline)
 * and sends its token anew though nothing changed, as h3's `updateSession` with no update does.
 * @internal
 */
export function touchSession(session: object): void {
  (session as SessionState).reissue ??= "touch";
}

/**
 * For adapters: their commit was the last for this request (the response has begun), so any later
 * change throws `ERR_SESSION_STATE` instead of being silently lost.
 * @internal
 */
export function closeSession(session: object): void {
  (session as SessionState).closed = true;
}

/**
 * For adapters: whether the session holds a change the handler made. The manager's own
 * `renewInterval` renewal at load is none (an explicit `regenerate()` clears `reissue`; any other
 * change is logged), so a response that cannot carry a cookie may leave it for the next request.
 * @internal
 */
export function changedByHandler(session: object): boolean {
  const state = session as SessionState;
  if (!state.isDirty) return false;
  return !(
    state.reissue === "renew" &&
    state.changes.size === 0 &&
    state.metaChanges.size === 0 &&
    state.clearedKeys === undefined &&
    !state.destroyed
  );
}

/** A plain data property, for a "__proto__" key that must be data rather than the prototype. */
function ownData(value: unknown): PropertyDescriptor {
  return { value, enumerable: true, writable: true, configurable: true };
}
