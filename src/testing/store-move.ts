import { expect } from "vitest";
import type { SessionMeta, SessionStore, StoredSession } from "../stores/store.js";

/** What the move checks need from the suite: the store under test, its clock and fresh keys. */
export interface MoveContext {
  store: SessionStore;
  now: () => number;
  randomKey: () => string;
}

/** Race rounds of `move` against another call on the key it moves from. */
const RACE_ROUNDS = 40;

function metaAt(at: number): SessionMeta {
  return { createdAt: at, touchedAt: at, renewedAt: at };
}

/** `store.move`, which the suite calls only on stores that have it. */
function moveOf(store: SessionStore): NonNullable<SessionStore["move"]> {
  const move = store.move?.bind(store);
  if (!move) throw new Error("the store has no move");
  return move;
}

/**
 * `move` as `SessionStore.move` says: the patch applied as `patch` applies it, the record under the
 * new key with the new deadline, nothing left under the old one, the user index following the
 * patched user, and nothing written when the old key holds no live entry.
 */
export async function checkMoveSemantics({ store, now, randomKey }: MoveContext): Promise<void> {
  const move = moveOf(store);
  const from = randomKey();
  const to = randomKey();
  const later = now() + 3_600_000;
  const meta: SessionMeta = {
    ...metaAt(now()),
    userId: "mover-a",
    label: "phone",
    "flash:0mjabc12300x1a2b3c": ["info", "read"],
    "flash:0mjabc12301x9z8y7w": ["error", "kept"],
  };
  await store.set(
    from,
    { data: { a: 1, b: 2, "é🙂": "x", ["__proto__"]: 0 } as never, meta },
    later,
  );
  const moved = await move(
    from,
    to,
    {
      set: { b: 3, c: { d: [1] } },
      delete: ["a"],
      meta: {
        renewedAt: now() + 1,
        userId: "mover-b",
        label: null,
        "flash:0mjabc12300x1a2b3c": null,
        "flash:0mjabd0000000zzzzz": ["success", "added"],
      },
    },
    later + 1,
  );
  const expected: StoredSession = {
    data: JSON.parse('{"b":3,"é🙂":"x","__proto__":0,"c":{"d":[1]}}'),
    meta: {
      ...metaAt(now()),
      renewedAt: now() + 1,
      userId: "mover-b",
      "flash:0mjabc12301x9z8y7w": ["error", "kept"],
      "flash:0mjabd0000000zzzzz": ["success", "added"],
    },
  };
  expect(moved).toEqual(expected);
  expect(await store.get(to)).toEqual(expected);
  expect(await store.get(from)).toBeUndefined();
  if (store.listByUser) {
    expect(await store.listByUser("mover-a")).toEqual([]);
    expect((await store.listByUser("mover-b")).map((entry) => entry.key)).toEqual([to]);
  }
  // The old key is gone now: a second move of it writes nothing.
  const again = randomKey();
  expect(await move(from, again, { set: { z: 1 }, delete: [] }, later)).toBeUndefined();
  expect(await store.get(again)).toBeUndefined();
}

/**
 * `move` racing a `patch` or a `delete` of the key it moves from, or a `deleteByUser` of its user,
 * started together: the patch comes before the move (its change is in the moved record) or answers
 * `false`; the delete comes before (the move writes nothing) or finds nothing; the sign-out
 * everywhere ends the session under one key or the other, counted once, and leaves it under
 * neither; one that excepts the session by its old key and its lineage leaves it under the new. The old key never holds anything afterwards. Which
 * comes first is the store's to decide (a synchronous store always runs the move first): the rounds
 * check that either order leaves a consistent record.
 */
export async function checkMoveRaces({ store, now, randomKey }: MoveContext): Promise<void> {
  const move = moveOf(store);
  const later = () => now() + 3_600_000;
  const deleteByUser = store.deleteByUser?.bind(store);
  const kinds = deleteByUser ? 4 : 2;
  for (let round = 0; round < RACE_ROUNDS; round++) {
    const from = randomKey();
    const to = randomKey();
    const lineage = randomKey();
    const userId = `mover-${round}`;
    await store.set(from, { data: { n: round }, meta: { ...metaAt(now()), userId } }, later());
    // The manager's first move of a session stamps its lineage, as here.
    const moving = move(from, to, { set: { moved: true }, delete: [], meta: { lineage } }, later());
    const kind = round % kinds;
    const other =
      kind === 0
        ? store.patch(from, { set: { note: round }, delete: [] }, later())
        : kind === 1
          ? store.delete(from)
          : (deleteByUser as NonNullable<typeof deleteByUser>)(
              userId,
              // "Sign out my other devices" from a request that loaded this session at `from`.
              kind === 3 ? [from, lineage] : [],
            );
    const [moved, answer] = await Promise.all([moving, other]);
    const at = await store.get(to);
    const context = `round ${round}: move ${moved ? "moved" : "found nothing"}, other call ${answer}`;
    expect(await store.get(from), context).toBeUndefined();
    if (kind === 3) {
      // Spared under either key, whichever came first.
      expect(answer, context).toBe(0);
      expect(at?.data, context).toEqual({ n: round, moved: true });
      if (store.listByUser)
        expect(
          (await store.listByUser(userId)).map((e) => e.key),
          context,
        ).toEqual([to]);
    } else if (kind === 2) {
      expect(answer, context).toBe(1);
      expect(at, context).toBeUndefined();
      if (store.listByUser) expect(await store.listByUser(userId), context).toEqual([]);
    } else if (kind === 0) {
      expect(moved, context).toBeDefined();
      expect(at?.data, context).toEqual(
        answer ? { n: round, note: round, moved: true } : { n: round, moved: true },
      );
    } else if (moved) {
      expect(at?.data, context).toEqual({ n: round, moved: true });
      expect(answer, context).not.toBe(true); // the delete found nothing to remove
    } else {
      expect(at, context).toBeUndefined();
      expect(answer, context).not.toBe(false);
    }
  }
}
