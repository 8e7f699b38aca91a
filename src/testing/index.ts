/**
 * `sessionkit/testing`: the conformance suite every session store runs, exported so third-party
 * stores can prove they keep the same contract. Needs `vitest` (an optional peer dependency).
 *
 * @example
 * ```ts
 * import type { SessionStore } from "sessionkit";
 * import { testStore } from "sessionkit/testing";
 * // Your store's factory and its client, created once outside the factory:
 * declare function myStore(options: { client: MyClient; now?: () => number }): SessionStore;
 * declare const client: MyClient;
 * interface MyClient { dumpEverything(): Promise<unknown>; wipe(): Promise<void> }
 *
 * testStore("my-store", (ctx) => myStore({ client, now: ctx.now }), {
 *   clock: "injected",
 *   dumpRaw: async () => JSON.stringify(await client.dumpEverything()),
 *   reset: () => client.wipe(),
 * });
 * ```
 * @module
 */
export { type StoreSuiteContext, type StoreSuiteOptions, testStore } from "./store-suite.js";
