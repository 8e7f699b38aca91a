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
