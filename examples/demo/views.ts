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
}

export function layout(page: PageContext, body: string): string {
  const flashes = page.flashes
    .map(
      (f) =>
        `<p class="flash flash-${escapeHtml(f.level)}" role="status">${escapeHtml(f.message)}</p>`,
    )
    .join("");
  const nav = page.user
    ? `<a href="/">Home</a> <a href="/devices">Your devices</a> <a href="/private">Members</a>
       <form method="post" action="/logout" class="inline"><button>Sign out ${escapeHtml(page.user)}</button></form>`
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
): string {
  return `<p id="visits">You have visited this page <strong>${visits}</strong> time${visits === 1 ? "" : "s"}.</p>
<p>${user ? `Signed in as <strong id="user">${escapeHtml(user)}</strong>.` : "You are not signed in."}</p>
<p id="expires">Left idle, this session ends at ${when(expiresAt)}.</p>
<form method="post" action="/preference">
  <label>Theme <select name="theme">
    ${["light", "dark", "sepia"].map((t) => `<option${t === theme ? " selected" : ""}>${t}</option>`).join("")}
  </select></label> <button>Save preference</button>
</form>
<p>Current theme: <strong id="theme">${escapeHtml(theme)}</strong></p>`;
}

export function loginBody(error: string | undefined): string {
  const accounts = Object.entries(ACCOUNTS)
    .map(([name, password]) => `<li><code>${name}</code> / <code>${password}</code></li>`)
    .join("");
  return `${error ? `<p class="flash flash-error">${escapeHtml(error)}</p>` : ""}
<form method="post" action="/login" class="stack">
  <label>Username <input name="username" autocomplete="username" required></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <label><input name="remember" type="checkbox"> Remember me on this device</label>
  <button>Sign in</button>
</form>
<p>Demo accounts:</p><ul>${accounts}</ul>`;
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

export function devicesBody(devices: UserSession[] | undefined): string {
  if (!devices) {
    return `<p>Cookie sessions live only in each browser: they cannot be listed or revoked. Start the demo with a server store (the default, SQLite) to see this page.</p>`;
  }
  // This device first, then the most recently seen.
  const rows = [...devices]
    .sort((a, b) => Number(b.current) - Number(a.current) || b.lastSeenAt - a.lastSeenAt)
    .map(
      (
        d,
      ) => `<tr${d.current ? ' class="current"' : ""}><td>${escapeHtml(browserOf(d.userAgent))}${d.current ? " (this device)" : ""}</td>
<td>${escapeHtml(d.ip ?? "")}</td><td>${when(d.createdAt)}</td><td>${when(d.lastSeenAt)}</td>
<td>${d.current ? "" : `<form method="post" action="/devices/revoke" class="inline"><input type="hidden" name="handle" value="${escapeHtml(d.handle)}"><button>Sign out</button></form>`}</td></tr>`,
    )
    .join("");
  return `<table id="devices"><thead><tr><th>Browser</th><th>IP</th><th>Created</th><th>Last seen</th><th></th></tr></thead>
<tbody>${rows}</tbody></table>
<form method="post" action="/devices/others" class="inline"><button>Sign out other devices</button></form>
<form method="post" action="/devices/everywhere" class="inline"><button>Sign out everywhere</button></form>`;
}

export const STYLE = `*{box-sizing:border-box}body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7fb}
header{display:flex;gap:1.5rem;align-items:center;padding:.8rem 1.5rem;background:#1d2330;color:#fff}
header a{color:#cfe0ff;margin-right:.8rem}nav{display:flex;align-items:center;gap:.2rem}
main{max-width:52rem;margin:2rem auto;padding:0 1.5rem}footer{max-width:52rem;margin:2rem auto;padding:0 1.5rem;color:#667}
.flash{padding:.6rem 1rem;border-radius:.4rem;background:#e6f0ff;border:1px solid #9bbcf5}
.flash-success{background:#e7f7ec;border-color:#8fd1a5}.flash-error{background:#fdecec;border-color:#f1a1a1}
.flash-warning{background:#fff6e0;border-color:#f0cf7a}
form.inline{display:inline}.stack{display:grid;gap:.7rem;max-width:20rem}.stack label{display:grid;gap:.2rem}input,select{font:inherit;padding:.3rem}
button{font:inherit;padding:.3rem .8rem;border-radius:.3rem;border:1px solid #46598a;background:#fff;cursor:pointer}
table{border-collapse:collapse;width:100%;margin:1rem 0}td,th{text-align:left;padding:.4rem;border-bottom:1px solid #dde}
tr.current{background:#eef6ee}code{background:#eceef5;padding:0 .25rem;border-radius:.2rem}
body.theme-dark{background:#15181f;color:#e4e8f0}.theme-dark a{color:#9fc1ff}.theme-dark footer{color:#99a}
.theme-dark code{background:#2a2f3a}.theme-dark tr.current{background:#1f2b22}.theme-dark .flash{color:#1d2330}
body.theme-sepia{background:#f4ecd8;color:#433422}.theme-sepia tr.current{background:#e9dfc4}`;
