/**
 * The app process of the outage, horizontal-scale and soak scripts: one server per adapter named in
 * SK_LOAD_CONFIG, all on one store, answering "stats" / "sample" / "close" over the IPC channel.
 * Run by `AppChild.start` (lib.ts) with --expose-gc and tsx.
 */
import { createSessions } from "../../src/manager.js";
import { type AppChildConfig, openStore, type RunningApp, SECRET, startApp } from "./lib.js";

const config = JSON.parse(process.env.SK_LOAD_CONFIG ?? "{}") as AppChildConfig;
let errorsLogged = 0;
const originalError = console.error.bind(console);
console.error = (...args: unknown[]) => {
  errorsLogged++;
  if (errorsLogged <= 20) originalError(...args);
};

const opened = await openStore(config.store);
const sessions = createSessions({
  secret: SECRET,
  store: opened.store,
  idleTimeout: "1h",
  ...config.sessionOptions,
});
const apps: Record<string, RunningApp> = {};
for (const adapter of config.adapters) apps[adapter] = await startApp(adapter, sessions);

function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of process.getActiveResourcesInfo()) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

function figures(collect: boolean) {
  if (collect) {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
  }
  const memory = process.memoryUsage();
  return { heapUsed: memory.heapUsed, rss: memory.rss, resources: resources(), errorsLogged };
}

process.on("message", async (message: { type: string; id: string }) => {
  if (message.type === "stats" || message.type === "sample") {
    process.send?.({ id: message.id, ...figures(message.type === "stats") });
  } else if (message.type === "close") {
    for (const app of Object.values(apps)) await app.close();
    await opened.close().catch(() => undefined);
    // The SQLite file lives in this process's temporary directory: remove it with the process.
    if (config.store.kind === "sqlite") await opened.cleanup().catch(() => undefined);
    process.send?.({ id: message.id }, () => process.exit(0));
  }
});

// The runner went away (crashed, or was stopped): do not outlive it.
process.on("disconnect", () => process.exit(0));

process.send?.({
  type: "ready",
  urls: Object.fromEntries(Object.entries(apps).map(([name, app]) => [name, app.url])),
});
