/**
 * clear() after a delete in the same request. A store session sends only the changes: clear() used
 * to drop the pending delete with the rest of its changes, and the key it had deleted came back on
 * the next request (found by the store suite's random visits against cookie sessions).
 */
import { describe, expect, it } from "vitest";
import { harness, storeHarness } from "./harness.js";

describe("clear() in a request that deleted keys first", () => {
  for (const [mode, make] of [
    ["store", storeHarness],
    ["cookie", harness],
  ] as const) {
    it(`${mode} session: a key deleted before clear() stays deleted`, async () => {
      const h = make();
      await h.request((s) => s.update({ cart: [1], other: 2 }));
      await h.request((s) => {
        s.delete("cart");
        s.clear();
      });
      expect((await h.request(() => {})).session.data).toEqual({});
    });

    it(`${mode} session: so does one deleted by update() with undefined, with a key set after`, async () => {
      const h = make();
      await h.request((s) => s.update({ cart: [1], other: 2 }));
      await h.request((s) => {
        s.update({ cart: undefined });
        s.clear();
        s.set("fresh", true);
      });
      expect((await h.request(() => {})).session.data).toEqual({ fresh: true });
    });
  }
});
