import { describe, expect, expectTypeOf, it } from "vitest";
import type { InferProps } from "../../src/adapters/fetch.js";
import worker, { type handler, Page } from "./wille/app.js";

const ORIGIN = "http://127.0.0.1:8787";

function get(path: string, cookie?: string): Promise<Response> {
  return worker.fetch(new Request(ORIGIN + path, { headers: cookie ? { cookie } : {} }), {}, {});
}

function cookieOf(response: Response): string {
  return (response.headers.getSetCookie()[0] ?? "").split(";")[0] as string;
}

describe("Wille seed: Zod-typed session, secret, guard, Workers fetch handler", () => {
  it("redirects a visitor without a username to /login with 303 before the page runs", async () => {
    const response = await get("/login-only-page");
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/login");
    expect(response.headers.getSetCookie()).toEqual([]);
  });

  it("renders the page with the username from the session after sign-in", async () => {
    const signIn = await worker.fetch(
      new Request(`${ORIGIN}/login`, {
        method: "POST",
        body: new URLSearchParams({ username: "ada" }),
      }),
      {},
      {},
    );
    expect(signIn.status).toBe(303);
    const cookie = cookieOf(signIn);
    expect(cookie).toMatch(/^sid=e1\./);
    const page = await get("/login-only-page", cookie);
    expect(page.status).toBe(200);
    expect(await page.text()).toBe("<p>username: ada</p>");
  });

  it("treats a cookie whose data fails the scheme as signed out", async () => {
    // Sealed with the same secret but with a number where the scheme wants a string.
    const { createSessions } = await import("../../src/index.js");
    const loose = createSessions({ secret: "IF4B#t69!WlX$uS22blaxDvzJJ%$vEh%" });
    const session = await loose.load(new Headers());
    session.set("username", 42);
    const headers = new Headers();
    await loose.commit(session, headers);
    const cookie = (headers.getSetCookie()[0] as string).split(";")[0] as string;
    const response = await get("/login-only-page", cookie);
    expect(response.status).toBe(303);
  });

  it("types the props from the resolver and the session from the scheme", () => {
    expectTypeOf<InferProps<typeof handler>>().toEqualTypeOf<{ username: string | undefined }>();
    expectTypeOf(Page).parameter(0).toEqualTypeOf<{ username: string | undefined }>();
  });
});
