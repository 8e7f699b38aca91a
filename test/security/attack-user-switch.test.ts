/**
 * Attack: inherit another user's session data on a shared browser. `regenerate({ userId })` promises
 * that "one user's data never carries over to the next who signs in on the same browser": signing in
 * as someone else empties the data. The check compares with the user bound *now*, so unbinding first
 * (`regenerate({ userId: null })`, which the docs offer to unbind a user, and which OWASP's "renew the
 * id on any privilege change" makes a natural sign-out) leaves the data in an anonymous session, and
 * the next user to sign in is taken for that visitor.
 */
import { describe, expect, it } from "vitest";
import { harness, storeHarness } from "../core/harness.js";

const modes = {
  "cookie session": () => harness(),
  "store session": () => storeHarness(),
} as const;

for (const [mode, make] of Object.entries(modes)) {
  describe(`signing out with regenerate({ userId: null }), then in as another user (${mode})`, () => {
    // FINDING (privilege carried across users): alice's `role: "admin"` reaches mallory, who signs in
    // next on the same browser. Fix (session.ts regenerate): unbinding a session bound to a user
    // (`userId: null` while `meta.userId` is set) starts the data anew as signing in as another user
    // does (empty data, no flash, label or remember-me choice, createdAt now); a visitor's own cart
    // still carries over to their first sign-in, since that session was never bound.
    it("the next user does not inherit the previous user's data", async () => {
      const h = make();
      await h.request(async (s) => {
        await s.regenerate({ userId: "alice" });
        s.set("role", "admin");
      });
      await h.request((s) => s.regenerate({ userId: null }));
      const { session } = await h.request((s) => s.regenerate({ userId: "mallory" }));
      expect(session.userId).toBe("mallory");
      expect(session.get("role")).toBeUndefined();
    });

    it("signing in as another user directly starts empty (control)", async () => {
      const h = make();
      await h.request(async (s) => {
        await s.regenerate({ userId: "alice" });
        s.set("role", "admin");
      });
      const { session } = await h.request((s) => s.regenerate({ userId: "mallory" }));
      expect(session.get("role")).toBeUndefined();
    });

    it("destroy, the documented sign-out, leaves nothing for the next user (control)", async () => {
      const h = make();
      await h.request(async (s) => {
        await s.regenerate({ userId: "alice" });
        s.set("role", "admin");
      });
      await h.request((s) => s.destroy());
      const { session } = await h.request((s) => s.regenerate({ userId: "mallory" }));
      expect(session.get("role")).toBeUndefined();
    });
  });
}
