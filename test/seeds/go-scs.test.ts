// TypeScript twin of the Go sessions app on scs (shared/seeds/go-django-sessions.md): the Index and
// About handlers' walkthrough, and the Session interface's Set/Get/Exists/Delete/Destroy/RenewToken,
// over the three databases the app allows: SQLite, MySQL and PostgreSQL.
import Database from "better-sqlite3";
import mysql from "mysql2/promise";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SessionRequest, withSession } from "../../src/adapters/node.js";
import { createSessions, type SessionStore } from "../../src/index.js";
import { mysqlStore } from "../../src/stores/mysql.js";
import { postgresStore } from "../../src/stores/postgres.js";
import { sqliteStore } from "../../src/stores/sqlite.js";
import { Client } from "../helpers/http.js";
import { DATABASE_URL, MYSQL_URL, serviceAvailable } from "../helpers/services.js";
import { type Served, serve } from "./serve.js";

const TABLE = `seed_go_${process.pid}`;

/** The Go app's handlers; `printed` stands for the console that fmt.Println writes to. */
function goApp(store: SessionStore, printed: string[]) {
  const sessions = createSessions({ secret: "go-scs-seed-secret-0123456789abcdef", store });
  // fmt.Println(nil) in the document's words prints "nil".
  const println = (value: unknown) => printed.push(value === undefined ? "nil" : String(value));
  const routes: Record<string, (req: SessionRequest<Record<string, unknown>>) => Promise<string>> =
    {
      async "/"(req) {
        const session = req.session; // sessions.Retrieve(r)
        println(session.get("page_key"));
        session.set("page_key", "Last visited the index page");
        return "index";
      },
      async "/about"(req) {
        const session = req.session;
        println(session.get("page_key"));
        session.set("page_key", "Last visited the about page");
        return "about";
      },
      async "/exists"(req) {
        return String(req.session.has("page_key")); // Exists
      },
      async "/delete"(req) {
        req.session.delete("page_key"); // Delete
        return "deleted";
      },
      async "/destroy"(req) {
        req.session.destroy(); // Destroy
        return "destroyed";
      },
      async "/renew"(req) {
        await req.session.regenerate(); // RenewToken
        return "renewed";
      },
    };
  return withSession(sessions, async (req, res) => {
    const route = routes[req.url ?? "/"];
    res.end(route ? await route(req) : "not found");
  });
}

function walkthrough(
  name: string,
  open: () => Promise<{ store: SessionStore; close(): Promise<void> }>,
) {
  describe(`Go sessions twin on ${name}`, () => {
    let server: Served;
    let closeStore: () => Promise<void>;
    const printed: string[] = [];
    beforeAll(async () => {
      const { store, close } = await open();
      closeStore = close;
      server = await serve(goApp(store, printed));
    });
    afterAll(async () => {
      await server?.close();
      await closeStore?.();
    });

    it("prints nil on the first visit, then what the last page stored (Index/About walkthrough)", async () => {
      printed.length = 0;
      const browser = new Client(server.url);
      await browser.get("/");
      await browser.get("/");
      await browser.get("/about");
      await browser.get("/about");
      await browser.get("/");
      expect(printed).toEqual([
        "nil",
        "Last visited the index page",
        "Last visited the index page",
        "Last visited the about page",
        "Last visited the about page",
      ]);
    });

    it("answers Exists, forgets after Delete, ends with Destroy and keeps data across RenewToken", async () => {
      printed.length = 0;
      const browser = new Client(server.url);
      expect((await browser.get("/exists")).text).toBe("false");
      await browser.get("/");
      expect((await browser.get("/exists")).text).toBe("true");
      const before = browser.jar.get("sid");
      await browser.get("/renew");
      expect(browser.jar.get("sid")).not.toBe(before);
      expect((await browser.get("/exists")).text).toBe("true");
      // The token renewed away opens nothing any more.
      expect(
        (await new Client(server.url).get("/exists", { headers: { cookie: `sid=${before}` } }))
          .text,
      ).toBe("false");
      await browser.get("/delete");
      expect((await browser.get("/exists")).text).toBe("false");
      await browser.get("/");
      await browser.get("/destroy");
      expect(browser.jar.size).toBe(0);
      await browser.get("/about");
      // Index after Delete and About after Destroy find no page_key, like the first visit.
      expect(printed).toEqual(["nil", "nil", "nil"]);
    });
  });
}

walkthrough("SQLite", async () => {
  const db = new Database(":memory:");
  return {
    store: sqliteStore({ db, table: TABLE }),
    close: async () => {
      db.close();
    },
  };
});

const mysqlUp = await serviceAvailable("MySQL/MariaDB", MYSQL_URL);
describe.skipIf(!mysqlUp)("MySQL", () => {
  walkthrough("MySQL/MariaDB", async () => {
    const pool = mysql.createPool(MYSQL_URL);
    return {
      store: mysqlStore({ pool, table: TABLE }),
      close: async () => {
        await pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
        await pool.end();
      },
    };
  });
});

const postgresUp = await serviceAvailable("PostgreSQL", DATABASE_URL);
describe.skipIf(!postgresUp)("PostgreSQL", () => {
  walkthrough("PostgreSQL", async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL });
    return {
      store: postgresStore({ pool, table: TABLE }),
      close: async () => {
        await pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
        await pool.end();
      },
    };
  });
});
