/**
 * "Sign out everywhere" (`destroyByUser`) on the Redis store racing a request that moves one of
 * the user's sessions to a new id (`regenerate`, or a renewal). The store's `deleteByUser` reads
 * the user's index and then deletes each member; the manager's move writes the new record (indexed
 * first) and then deletes the old one. A move that fit between the read and the deletes escaped:
 * the old id was gone by the time its delete came, and the new one was not in the index read
 * (count 0, the session still listed). Held open here by holding the index's reply until the move
 * has committed.
 */
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createSessions } from "../../src/manager.js";
import { redisStore } from "../../src/stores/redis.js";
import { scanPrefix } from "../helpers/redis-keys.js";
import { REDIS_URL, serviceAvailable } from "../helpers/services.js";

const available = await serviceAvailable("Redis", REDIS_URL);
// Test-only secret; nothing it seals leaves the test.
const SECRET = "redis-sign-out-race-test-secret-0123456789";
const PREFIX = `skt:redis-sign-out-race:${process.pid}:`;

describe.skipIf(!available)("redisStore: destroyByUser racing a move to a new id", () => {
  const client = new Redis(REDIS_URL);
  afterAll(async () => {
    const keys = await scanPrefix([client], PREFIX);
    if (keys.length > 0) await client.del(...keys);
    client.disconnect();
  });

  /** `client`, but the first reply to ZRANGE waits for `meanwhile` before the store sees it. */
  function holdingIndexRead(meanwhile: () => Promise<void>): Redis {
    let held = false;
    return new Proxy(client, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver) as unknown;
        if (name !== "call" || typeof value !== "function") return value;
        return async (...args: unknown[]) => {
          const reply = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (!held && String(args[0]).toUpperCase() === "ZRANGE") {
            held = true;
            await meanwhile();
          }
          return reply;
        };
      },
    });
  }

  it("a regenerate committing between the index read and the deletes is signed out too", async () => {
    let move = async () => {};
    const store = redisStore({ client: holdingIndexRead(() => move()), prefix: PREFIX });
    const sessions = createSessions({ secret: SECRET, store });
    const first = await sessions.load(new Headers());
    await first.regenerate({ userId: "ada" });
    const signedIn = new Headers();
    await sessions.commit(first, signedIn);
    const cookie = (signedIn.getSetCookie()[0] as string).split(";")[0] as string;
    const other = await sessions.load(new Headers({ cookie })); // another tab, in flight
    await other.regenerate();
    move = () => sessions.commit(other, new Headers());
    const count = await sessions.destroyByUser("ada");
    expect({ count, left: (await sessions.listByUser("ada")).length }).toEqual({
      count: 1,
      left: 0,
    });
  });
});
