/** Serving an Oak app on Oak's own Node server (`app.listen`), as wire-level tests need it. */
import type { Application } from "@oakserver/oak";
import type { RunningApp } from "../conformance/adapter.js";
import { freePort, waitForPort } from "../runtimes/net.js";

/**
 * `app.listen` on a fixed free port, stopped by an AbortController. Oak 14 on Node closes its server
 * only after a request that arrives once aborted, so `close` aborts and then sends that request: the
 * listening socket really closes and vitest's worker can exit. Waiting for the port sends one
 * `HEAD /` first.
 */
export async function listenOak(app: Application<any>): Promise<RunningApp> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const controller = new AbortController();
  void app.listen({ hostname: "127.0.0.1", port, signal: controller.signal });
  await waitForPort(url);
  return {
    url,
    close: async () => {
      controller.abort();
      await fetch(url, { headers: { connection: "close" } }).then(
        (r) => r.arrayBuffer(),
        () => undefined,
      );
    },
  };
}
