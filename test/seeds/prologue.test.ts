// TypeScript twin of Prologue's sessions (shared/seeds/prologue-session.md): the same login/logout
// handlers over a signed-cookie session, a memory session and a Redis session, and flash messages by
// level that are read once.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SessionRequest, withSession } from "../../src/adapters/node.js";
import { createSessions, type Sessions } from "../../src/index.js";
import { memoryStore } from "../../src/stores/memory.js";
import { redisStore } from "../../src/stores/redis.js";
import { Client } from "../helpers/http.js";
import { REDIS_URL, serviceAvailable } from "../helpers/services.js";
import { type Served, serve } from "./serve.js";

const SECRET = "prologue-seed-secret-0123456789abcdef";
type Data = Record<string, string>;

/** Prologue's FlashLevel enum, and ctx.flash's default level. */
const FlashLevel = {
  Info: "info",
  Warning: "warning",
  Error: "error",
  Success: "success",
} as const;

function prologueApp(sessions: Sessions<Data>) {
  const routes: Record<string, (ctx: SessionRequest<Data>) => string> = {
    // proc login: ctx.session["flywind"] = "123"; ctx.session["ordontfly"] = "345"
    "/login"(ctx) {
      ctx.session.set("flywind", "123");
      ctx.session.set("ordontfly", "345");
      return "<h1>Hello, Prologue!</h1>";
    },
    // proc logout: resp $ctx.session
    "/logout"(ctx) {
      return JSON.stringify(ctx.session.data);
    },
    // proc hello: ctx.flash("Please retry again!")
    "/hello"(ctx) {
      ctx.session.flash(FlashLevel.Info, "Please retry again!");
      return "Hello, world";
    },
    // proc tea: let msg = ctx.getFlashedMsg(FlashLevel.Info); if msg.isSome: resp msg.get else: resp "My tea"
    "/tea"(ctx) {
      const [msg] = ctx.session.flashes(FlashLevel.Info);
      return msg ?? "My tea";
    },
    "/warn"(ctx) {
      ctx.session.flash(FlashLevel.Warning, "Careful");
      return "warned";
    },
  };
  return withSession(sessions, (req, res) => {
    const route = routes[req.url ?? "/"];
    res.end(route ? route(req) : "not found");
  });
}

function prologueTwin(
  name: string,
  make: () => Sessions<Data>,
  extra?: (server: () => Served) => void,
) {
  describe(`Prologue twin: ${name}`, () => {
    let server: Served;
    beforeAll(async () => {
      server = await serve(prologueApp(make()));
    });
    afterAll(() => server?.close());

    it("keeps what login set and shows it at logout", async () => {
      const browser = new Client(server.url);
      expect((await browser.get("/login")).text).toBe("<h1>Hello, Prologue!</h1>");
      expect(JSON.parse((await browser.get("/logout")).text)).toEqual({
        flywind: "123",
        ordontfly: "345",
      });
    });

    it("shows a flashed message on the next request once, by level", async () => {
      const browser = new Client(server.url);
      expect((await browser.get("/tea")).text).toBe("My tea");
      expect((await browser.get("/hello")).text).toBe("Hello, world");
      await browser.get("/warn");
      expect((await browser.get("/tea")).text).toBe("Please retry again!");
      expect((await browser.get("/tea")).text).toBe("My tea");
    });

    extra?.(() => server);
  });
}

prologueTwin(
  "signed cookie session",
  () => createSessions<undefined>({ secret: SECRET, mode: "signed" }) as Sessions<Data>,
  (server) => {
    it("is readable by the client, as the document warns, but refuses a forged value", async () => {
      const browser = new Client(server().url);
      await browser.get("/login");
      const token = browser.jar.get("sid") as string;
      const [, , payload, mac] = token.split(".");
      const json = Buffer.from(payload as string, "base64url").toString("utf8");
      expect(JSON.parse(json).d).toEqual({ flywind: "123", ordontfly: "345" });
      const forged = Buffer.from(json.replace('"123"', '"999"')).toString("base64url");
      const attacker = new Client(server().url);
      const reply = await attacker.get("/logout", {
        headers: { cookie: `sid=s1.${token.split(".")[1]}.${forged}.${mac}` },
      });
      expect(JSON.parse(reply.text)).toEqual({});
    });
  },
);

prologueTwin(
  "memory session",
  () => createSessions({ secret: SECRET, store: memoryStore() }) as Sessions<Data>,
  (server) => {
    it("loses every session when the program stops, as the document says", async () => {
      const browser = new Client(server().url);
      await browser.get("/login");
      const cookie = browser.cookieHeader();
      // A new process is a new memory store: the same cookie finds nothing.
      const restarted = await serve(
        prologueApp(createSessions({ secret: SECRET, store: memoryStore() }) as Sessions<Data>),
      );
      try {
        const reply = await new Client(restarted.url).get("/logout", { headers: { cookie } });
        expect(JSON.parse(reply.text)).toEqual({});
      } finally {
        await restarted.close();
      }
    });
  },
);

const redisUp = await serviceAvailable("Redis", REDIS_URL);
describe.skipIf(!redisUp)("Redis", () => {
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const prefix = `skt:prologue:${process.pid}:`;
  afterAll(async () => {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
    client.disconnect();
  });
  prologueTwin(
    "redis session",
    () =>
      createSessions({ secret: SECRET, store: redisStore({ client, prefix }) }) as Sessions<Data>,
    (server) => {
      it("keeps sessions across a restart of the app, in Redis", async () => {
        const browser = new Client(server().url);
        await browser.get("/login");
        const restarted = await serve(
          prologueApp(
            createSessions({
              secret: SECRET,
              store: redisStore({ client, prefix }),
            }) as Sessions<Data>,
          ),
        );
        try {
          const reply = await new Client(restarted.url).get("/logout", {
            headers: { cookie: browser.cookieHeader() },
          });
          expect(JSON.parse(reply.text)).toEqual({ flywind: "123", ordontfly: "345" });
        } finally {
          await restarted.close();
        }
      });
    },
  );
});
