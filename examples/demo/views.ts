// Server-rendered HTML for the demo: no front-end build, one stylesheet.
import type { FlashEntry, UserSession } from "../../src/index.js";

export const ACCOUNTS: Readonly<Record<string, string>> = Object.freeze({
  ada: "lovelace",
  grace: "hopper",
});

const escapeMap: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => escapeMap[c] as string);
}

export interface PageContext {
  title: string;
  user: string | undefined;
  flashes: FlashEntry[];
  storeLabel: string;
  timeouts: string;
  /** The visitor's preference: a class on <body>. */
  theme: string;
  /** The session's CSRF token, for the sign-out form; a page without one shows no form. */
  csrf: string | undefined;
}

/** The hidden field every form of the demo posts, checked by requireCsrfToken. */
function csrfField(token: string | undefined): string {
  return token === undefined
    ? ""
    : `<input type="hidden" name="_csrf" value="${escapeHtml(token)}">`;
}

export function layout(page: PageContext, body: string): string {
  const flashes = page.flashes
    .map(
      (f) =>
        `<p class="flash flash-${escapeHtml(f.level)}" role="status">${escapeHtml(f.message)}</p>`,
    )
    .join("");
  const signOut =
    page.csrf === undefined
      ? ""
      : `<form method="post" action="/logout" class="inline">${csrfField(page.csrf)}<button>Sign out ${escapeHtml(page.user)}</button></form>`;
  const nav = page.user
    ? `<a href="/">Home</a> <a href="/devices">Your devices</a> <a href="/private">Members</a>
       ${signOut}`
    : `<a href="/">Home</a> <a href="/private">Members</a> <a href="/login">Sign in</a>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(page.title)} · sessionkit demo</title><link rel="stylesheet" href="/style.css"></head>
<body class="theme-${escapeHtml(page.theme)}"><header><strong>sessionkit demo</strong><nav>${nav}</nav></header>
<main>${flashes}<h1>${escapeHtml(page.title)}</h1>${body}</main>
<footer>Store: <code>${escapeHtml(page.storeLabel)}</code> · ${escapeHtml(page.timeouts)}</footer>
</body></html>`;
}

export function homeBody(
  visits: number,
  theme: string,
  user: string | undefined,
  expiresAt: number,
  storeLabel: string,
  csrf: string | undefined,
): string {
  return `<p id="visits">You have visited this page <strong>${visits}</strong> time${visits === 1 ? "" : "s"}.</p>
<p>${user ? `Signed in as <strong id="user">${escapeHtml(user)}</strong>.` : "You are not signed in."}</p>
<p id="expires">Left idle, this session ends at ${when(expiresAt)}.</p>
<form method="post" action="/preference">${csrfField(csrf)}
  <label>Theme <select name="theme">
    ${["light", "dark", "sepia"].map((t) => `<option${t === theme ? " selected" : ""}>${t}</option>`).join("")}
  </select></label> <button>Save preference</button>
</form>
<p>Current theme: <strong id="theme">${escapeHtml(theme)}</strong></p>
${tour(storeLabel)}`;
}

/** What to try, each with the sessionkit call behind it: the page a first visitor reads. */
function tour(storeLabel: string): string {
  return `<section aria-labelledby="tour"><h2 id="tour">What this demo shows</h2><ul>
<li><strong>Session data</strong>: reload this page and the count goes up (<code>session.set</code>), kept in the
 <code>${escapeHtml(storeLabel)}</code> store, typed and checked by a Zod schema. The theme above too.</li>
<li><strong>Sign-in</strong>: <a href="/login">sign in</a> as a demo account. The session gets a new id and keeps its
 data (<code>session.regenerate({ userId })</code>). Without "Remember me" the cookie ends with the browser and the
 session with the short deadlines below; with it, the cookie outlives the browser and the session gets the longer
 deadlines of the <code>rememberMe</code> option of <code>createSessions</code> (<code>session.rememberMe()</code>).
 The page says when this session ends (<code>session.expiresAt</code>).</li>
<li><strong>Flash messages</strong> by level (success, info, warning, error), shown once:
 <code>session.flash(level, message)</code>.</li>
<li><strong>Guarded pages</strong>: <a href="/private">Members</a> and <a href="/devices">Your devices</a> send
 visitors to sign in (<code>requireSession</code>).</li>
<li><strong>Your devices</strong>: sign in as the same user in a second browser or a private window, name the
 device, then sign it out from the other one; its next request finds itself signed out and says so
 (<code>sessions.listByUser</code>, <code>revoke</code>, <code>destroyByUser</code>,
 <code>session.invalidReason</code>).</li>
<li><strong>Safety</strong>: every form refuses posts from other origins (<code>requireSameOrigin()</code>) and
 carries a hidden CSRF token of this session (<code>session.csrfToken()</code>): a post without one is refused
 (<code>requireCsrfToken()</code>), the sign-in form's too. A tampered or expired cookie gives a fresh session,
 never an error page.</li>
</ul></section>`;
}

export function loginBody(csrf: string | undefined): string {
  const accounts = Object.entries(ACCOUNTS)
    .map(([name, password]) => `<li><code>${name}</code> / <code>${password}</code></li>`)
    .join("");
  return `<form method="post" action="/login" class="stack">${csrfField(csrf)}
  <label>Username <input name="username" autocomplete="username" required></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <label class="check"><input name="remember" type="checkbox"> Remember me on this device</label>
  <button>Sign in</button>
</form>
<p>Demo accounts:</p><ul>${accounts}</ul>`;
}

/** The 403 page of a post without a valid CSRF token. */
export function forbiddenBody(): string {
  return `<p>This form was refused, and nothing was changed: it did not carry a valid token of your session.
That happens when the form came from another site, or when your session changed after the page was shown
(you signed in or out in another tab, or the session ended).</p>
<p><a href="/">Back to the home page</a>: reload the page and try again.</p>`;
}

export function privateBody(user: string): string {
  return `<p>Only signed-in members see this page. Welcome, <strong>${escapeHtml(user)}</strong>.</p>`;
}

const BROWSERS: readonly [RegExp, string][] = [
  [/Edg\/(\d+)/, "Edge"],
  [/Firefox\/(\d+)/, "Firefox"],
  [/HeadlessChrome\/(\d+)/, "Headless Chrome"],
  [/Chrome\/(\d+)/, "Chrome"],
  [/Version\/(\d+)[\d.]* (?:Mobile\/\S+ )?Safari\//, "Safari"],
  [/curl\/([\d.]+)/, "curl"],
];
const SYSTEMS: readonly [RegExp, string][] = [
  [/Android/, "Android"],
  [/iPhone|iPad/, "iOS"],
  [/Mac OS X/, "macOS"],
  [/Windows/, "Windows"],
  [/CrOS/, "ChromeOS"],
  [/Linux/, "Linux"],
];

/** "Chrome 156 on Linux" from a user agent; the first 40 characters when unknown. */
export function browserOf(userAgent: string | undefined): string {
  if (!userAgent) return "Unknown client";
  const browser = BROWSERS.map(([re, name]) => {
    const m = re.exec(userAgent);
    return m ? `${name} ${m[1]}` : undefined;
  }).find(Boolean);
  const system = SYSTEMS.find(([re]) => re.test(userAgent))?.[1];
  if (!browser) return userAgent.slice(0, 40);
  return system ? `${browser} on ${system}` : browser;
}

function when(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `<time datetime="${iso}">${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC</time>`;
}

export function devicesBody(devices: UserSession[] | undefined, csrf: string | undefined): string {
  if (!devices) {
    return `<p>Cookie sessions live only in each browser: they cannot be listed or revoked. Start the demo with a server store (the default, SQLite) to see this page.</p>`;
  }
  // This device first, then the most recently seen.
  const rows = [...devices]
    .sort((a, b) => Number(b.current) - Number(a.current) || b.lastSeenAt - a.lastSeenAt)
    .map((d) => {
      const name = escapeHtml(d.label ?? browserOf(d.userAgent));
      const browser = d.label ? `<br><small>${escapeHtml(browserOf(d.userAgent))}</small>` : "";
      // The button's name says which device, for screen readers that list buttons out of the table.
      const action = d.current
        ? ""
        : `<form method="post" action="/devices/revoke" class="inline">${csrfField(csrf)}<input type="hidden" name="handle" value="${escapeHtml(d.handle)}"><button aria-label="Sign out ${name}">Sign out</button></form>`;
      return `<tr${d.current ? ' class="current"' : ""}><td>${name}${d.current ? " (this device)" : ""}${browser}</td><td>${escapeHtml(d.ip ?? "")}</td>
<td>${when(d.createdAt)}</td><td>${when(d.lastSeenAt)}</td><td>${action}</td></tr>`;
    })
    .join("");
  const label = devices.find((d) => d.current)?.label ?? "";
  return `<table id="devices"><thead><tr><th>Device</th><th>IP</th><th>Started</th><th>Last seen</th><th>Action</th></tr></thead>
<tbody>${rows}</tbody></table>
<form method="post" action="/devices/label">${csrfField(csrf)}
  <label>Name this device <input name="label" maxlength="100" value="${escapeHtml(label)}" placeholder="Work laptop"></label>
  <button>Save name</button>
</form>
<div class="actions"><form method="post" action="/devices/others" class="inline">${csrfField(csrf)}<button>Sign out other devices</button></form>
<form method="post" action="/devices/everywhere" class="inline">${csrfField(csrf)}<button>Sign out everywhere</button></form></div>`;
}

export const STYLE = `*{box-sizing:border-box}body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7fb}
header{display:flex;gap:1.5rem;align-items:center;padding:.8rem 1.5rem;background:#1d2330;color:#fff}
header a{color:#cfe0ff;margin-right:.8rem}nav{display:flex;align-items:center;gap:.2rem}
main{max-width:52rem;margin:2rem auto;padding:0 1.5rem}footer{max-width:52rem;margin:2rem auto;padding:0 1.5rem;color:#667}
.flash{padding:.6rem 1rem;border-radius:.4rem;background:#e6f0ff;border:1px solid #9bbcf5}
.flash-success{background:#e7f7ec;border-color:#8fd1a5}.flash-error{background:#fdecec;border-color:#f1a1a1}
.flash-warning{background:#fff6e0;border-color:#f0cf7a}
form.inline{display:inline}.stack{display:grid;gap:.7rem;max-width:20rem}.stack label{display:grid;gap:.2rem}
.stack label.check{display:flex;gap:.5rem;align-items:center}input,select{font:inherit;padding:.3rem}
button{font:inherit;padding:.3rem .8rem;border-radius:.3rem;border:1px solid #46598a;background:#fff;cursor:pointer}
table{border-collapse:collapse;width:100%;margin:1rem 0}td,th{text-align:left;padding:.4rem;border-bottom:1px solid #dde}
tr.current{background:#eef6ee}.actions{margin:1rem 0}code{background:#eceef5;padding:0 .25rem;border-radius:.2rem}
body.theme-dark{background:#15181f;color:#e4e8f0}.theme-dark a{color:#9fc1ff}.theme-dark footer{color:#99a}
.theme-dark code{background:#2a2f3a}.theme-dark tr.current{background:#1f2b22}.theme-dark .flash{color:#1d2330}
body.theme-sepia{background:#f4ecd8;color:#433422}.theme-sepia tr.current{background:#e9dfc4}`;
