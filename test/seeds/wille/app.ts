// The Wille seed (shared/seeds/wille-session.md) on sessionkit: the same Zod scheme and secret, a
// Workers-style default export, and the login-only page's guard and props resolver in the seed's shape.
import { z } from "zod";
import { createHandler, type InferProps, withSession } from "../../../src/adapters/fetch.js";
import { createSessions } from "../../../src/index.js";

const sessionScheme = z.object({
  username: z.string(),
});

export const sessions = createSessions({
  schema: sessionScheme,
  secret: "IF4B#t69!WlX$uS22blaxDvzJJ%$vEh%",
});

// src/pages/login-only-page.tsx, with JSX rendered as a string (no JSX runtime in this test).
export const handler = createHandler(sessions)
  .addGuard(async ({ session }) => {
    if (session.username == null) {
      return new Response(null, {
        status: 303,
        headers: {
          location: "/login",
        },
      });
    }
  })
  .addPropsResolver(async ({ session }) => {
    return {
      username: session.username,
    };
  });

export const Page = ({ username }: InferProps<typeof handler>): string => {
  return `<p>username: ${username}</p>`;
};

const loginOnlyPage = handler.render(
  (props) => new Response(Page(props), { headers: { "content-type": "text/html" } }),
);

// The tutorial's login page: a form posting a username, which signs in (new id: fixation defence).
const login = withSession(sessions, async (request, { session }) => {
  if (request.method === "POST") {
    const form = await request.formData();
    await session.regenerate();
    session.set("username", String(form.get("username")));
    return new Response(null, { status: 303, headers: { location: "/login-only-page" } });
  }
  return new Response(
    `<form method="post"><input name="username"><button>Sign in</button></form>`,
    {
      headers: { "content-type": "text/html" },
    },
  );
});

export default {
  async fetch(request: Request, _env: unknown, _ctx: unknown): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname === "/login-only-page") return loginOnlyPage(request);
    if (pathname === "/login") return login(request);
    return new Response("Not Found", { status: 404 });
  },
};
