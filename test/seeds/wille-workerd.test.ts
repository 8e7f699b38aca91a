/**
 * The Wille seed's app (test/seeds/wille/app.ts) where the seed runs it: a Cloudflare Worker, here in
 * workerd through miniflare, over real HTTP on loopback. The bundle is built from the sources under
 * the Workers conditions, so it carries the Web Crypto backend, not node:crypto.
 * A missing miniflare fails under CI=true and is skipped loudly elsewhere.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IN_CI } from "../helpers/services.js";
import type { RunningWorker } from "../helpers/workerd.js";
import { ROOT } from "../runtimes/dist.js";

const present = existsSync(join(ROOT, "node_modules/miniflare/package.json"));
if (!present && !IN_CI) {
  console.warn("SKIPPED: the Wille seed in workerd: miniflare is not installed (npm install)");
}

describe.skipIf(!present && !IN_CI)("Wille seed in workerd (miniflare)", () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    const { startWorker } = await import("../helpers/workerd.js");
    worker = await startWorker(join(ROOT, "test/seeds/wille/app.ts"), ["sessionkit-source"]);
  }, 60_000);
  afterAll(() => worker?.dispose());

  const at = (path: string) => new URL(path, worker.url);

  it("redirects to /login with 303, signs in with a new session, then renders the username", async () => {
    const denied = await fetch(at("/login-only-page"), { redirect: "manual" });
    expect(denied.status).toBe(303);
    expect(denied.headers.get("location")).toBe("/login");
    expect(denied.headers.getSetCookie()).toEqual([]);

    const signIn = await fetch(at("/login"), {
      method: "POST",
      body: new URLSearchParams({ username: "ada" }),
      redirect: "manual",
    });
    expect(signIn.status).toBe(303);
    const line = signIn.headers.getSetCookie()[0] ?? "";
    expect(line).toMatch(/^sid=e1\./);
    expect(line).toMatch(/HttpOnly/i);
    expect(line).toMatch(/SameSite=Lax/i);
    const cookie = line.split(";")[0] as string;

    const page = await fetch(at("/login-only-page"), { headers: { cookie }, redirect: "manual" });
    expect(page.status).toBe(200);
    expect(await page.text()).toBe("<p>username: ada</p>");

    // A cookie sealed by this Worker is refused once tampered with: signed out again.
    const tampered = cookie.slice(0, -4) + (cookie.endsWith("AAAA") ? "BBBB" : "AAAA");
    const refused = await fetch(at("/login-only-page"), {
      headers: { cookie: tampered },
      redirect: "manual",
    });
    expect(refused.status).toBe(303);
  });
});
