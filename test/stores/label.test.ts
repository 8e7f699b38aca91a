import { describe, expect, it } from "vitest";
import { createSessions } from "../../src/index.js";
import { memoryStore } from "../../src/stores/memory.js";

const SECRET = "label-test-secret-0123456789abcdefgh";

describe("session labels on a devices page", () => {
  it("lists the label a session set, and forgets it when removed", async () => {
    const sessions = createSessions({ secret: SECRET, store: memoryStore() });
    const first = await sessions.load(new Headers({ "user-agent": "TestAgent/1" }));
    await first.regenerate({ userId: "ada" });
    const headers = new Headers();
    await sessions.commit(first, headers);
    const cookie = (headers.getSetCookie()[0] as string).split(";")[0] as string;

    const again = await sessions.load(new Headers({ cookie }));
    again.setLabel("Work laptop");
    await sessions.commit(again, new Headers());
    let [listed] = await sessions.listByUser("ada");
    expect(listed?.label).toBe("Work laptop");
    expect(listed?.userAgent).toBe("TestAgent/1");

    const third = await sessions.load(new Headers({ cookie }));
    third.setLabel(undefined);
    await sessions.commit(third, new Headers());
    [listed] = await sessions.listByUser("ada");
    expect(listed?.label).toBeUndefined();
  });
});

describe("the client address on a devices page", () => {
  it("shows an IPv4 client of a dual-stack socket (::ffff:a.b.c.d) as its IPv4 address", async () => {
    const sessions = createSessions({ secret: SECRET, store: memoryStore() });
    for (const [given, shown] of [
      ["::ffff:203.0.113.9", "203.0.113.9"],
      ["::FFFF:198.51.100.2", "198.51.100.2"],
      ["2001:db8::1", "2001:db8::1"],
      ["::ffff:abcd", "::ffff:abcd"], // not an IPv4-mapped address: kept as given
    ]) {
      const session = await sessions.load({ headers: new Headers(), ip: given });
      await session.regenerate({ userId: given });
      await sessions.commit(session, new Headers());
      const [listed] = await sessions.listByUser(given as string);
      expect(listed?.ip, given).toBe(shown);
    }
  });
});
