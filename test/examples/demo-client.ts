// The demo app (examples/demo/app.ts) in process on a loopback port, with a memory store that counts
// the writes reaching it and a client that keeps its cookie, for the HTTP-level demo tests.
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach } from "vitest";
import { createDemoApp, createDemoSessions, type DemoOptions } from "../../examples/demo/app.js";
import type { SessionStore } from "../../src/index.js";
import { memoryStore } from "../../src/stores/memory.js";

export const SECRET = "a-demo-secret-for-the-head-tests-0123456789";
const WRITES = ["set", "patch", "touch", "delete"] as const;

/** A memory store that counts the writes reaching it, and the records `set` created. */
export function countingStore(now: () => number = Date.now) {
  const inner = memoryStore({ now });
  const writes: string[] = [];
  const created = new Set<string>();
  const store: SessionStore = { ...inner };
  for (const name of WRITES) {
    const method = inner[name].bind(inner) as (...args: unknown[]) => Promise<unknown>;
    (store as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      writes.push(name);
      if (name === "set") created.add(args[0] as string);
      return method(...args);
    };
  }
  return { store, writes, created };
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((s) => {
      s.closeAllConnections();
      s.close();
      return once(s, "close");
    }),
  );
});

/** The value of the first `_csrf` hidden field of a page, if it has one. */
export const csrfIn = (body: string) => /name="_csrf" value="([^"]*)"/.exec(body)?.[1];

export async function startDemo(
  clock = { now: Date.now() },
  /** Options over the defaults; `store: undefined` for cookie sessions. */
  extra: Partial<DemoOptions> = {},
) {
  // The store on the demo's clock too, so a clock moved forward expires its records as well.
  const counted = countingStore(() => clock.now);
  const options: DemoOptions = {
    secret: SECRET,
    store: counted.store,
    storeLabel: "memory",
    now: () => clock.now,
    ...extra,
  };
  const server = createServer(createDemoApp(createDemoSessions(options), options));
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let cookie: string | undefined;
  /** One request with this client's cookie; a Set-Cookie it gets back replaces it. */
  const send = async (
    method: string,
    path: string,
    form?: Record<string, string>,
    headers: Record<string, string> = {},
  ) => {
    const response = await fetch(`${base}${path}`, {
      method,
      redirect: "manual",
      headers: {
        ...(cookie ? { cookie } : {}),
        ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
        ...headers,
      },
      ...(form ? { body: new URLSearchParams(form).toString() } : {}),
    });
    const set = response.headers.get("set-cookie");
    if (set) cookie = set.split(";")[0];
    return { response, body: await response.text(), setCookie: set };
  };
  /**
   * A form post as a browser makes it: GET `page` (the page the form is on), then POST its form with
   * that page's `_csrf` token.
   */
  const submit = async (page: string, path: string, form: Record<string, string> = {}) => {
    const token = csrfIn((await send("GET", page)).body);
    if (token === undefined) throw new Error(`${page} has no CSRF token`);
    return send("POST", path, { ...form, _csrf: token });
  };
  const signIn = (username = "ada", password = "lovelace", remember = false) =>
    submit("/login", "/login", { username, password, ...(remember ? { remember: "on" } : {}) });
  return {
    send,
    submit,
    signIn,
    base,
    writes: counted.writes,
    created: counted.created,
    clock,
    get cookie() {
      return cookie;
    },
    set cookie(value: string | undefined) {
      cookie = value;
    },
  };
}
