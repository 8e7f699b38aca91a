/** A minimal cookie-jar HTTP client for wire-level adapter tests: it keeps what Set-Cookie says. */
export interface Reply {
  status: number;
  text: string;
  headers: Headers;
  setCookies: string[];
}

/** Applies Set-Cookie lines to a jar as a browser would: an empty value or `Max-Age=0` deletes. */
export function keepCookies(jar: Map<string, string>, lines: readonly string[]): void {
  for (const line of lines) {
    const [pair = "", ...attributes] = line.split(";");
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a));
    if (expired || value === "") jar.delete(name);
    else jar.set(name, value);
  }
}

export class Client {
  readonly jar = new Map<string, string>();
  constructor(readonly base: string) {}

  cookieHeader(): string {
    return [...this.jar].map(([name, value]) => `${name}=${value}`).join("; ");
  }

  async request(path: string, init: RequestInit = {}): Promise<Reply> {
    const headers = new Headers(init.headers);
    if (this.jar.size > 0 && !headers.has("cookie")) headers.set("cookie", this.cookieHeader());
    const response = await fetch(new URL(path, this.base), {
      ...init,
      headers,
      redirect: "manual",
    });
    const setCookies = response.headers.getSetCookie();
    keepCookies(this.jar, setCookies);
    return {
      status: response.status,
      text: await response.text(),
      headers: response.headers,
      setCookies,
    };
  }

  get(path: string, init?: RequestInit): Promise<Reply> {
    return this.request(path, init);
  }

  post(path: string, init?: RequestInit): Promise<Reply> {
    return this.request(path, { ...init, method: "POST" });
  }
}

/**
 * The last Set-Cookie line naming `name`: its value, and its lifetime in seconds from now (Max-Age,
 * or Expires as some peers write it), undefined for a browser-session cookie.
 */
export function cookieLine(lines: readonly string[], name: string) {
  const line = lines.findLast((l) => l.startsWith(`${name}=`));
  if (line === undefined) return undefined;
  const maxAge = /;\s*max-age=(-?\d+)/i.exec(line)?.[1];
  const expires = /;\s*expires=([^;]+)/i.exec(line)?.[1];
  const lifetime =
    maxAge !== undefined
      ? Number(maxAge)
      : expires !== undefined
        ? Math.round((Date.parse(expires) - Date.now()) / 1000)
        : undefined;
  return { line, value: line.slice(name.length + 1).split(";")[0] ?? "", lifetime };
}
