/**
 * Attacks through session data in store mode: keys such as `__proto__` and values a store cannot
 * serialise, as an application passing request input to `session.update` or `session.set` would let a
 * client send them. Cookie mode is covered in test/core/round-trip-and-schema.test.ts.
 */
import { describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/errors.js";
import { harness, storeHarness } from "../core/harness.js";

const hostile = () =>
  JSON.parse('{"__proto__": {"isAdmin": true}, "constructor": {"prototype": 1}, "plain": 2}');

describe("prototype keys in store mode", () => {
  it("a new record keeps __proto__ and constructor as data; nothing reaches a prototype", async () => {
    const h = storeHarness();
    await h.request((s) => s.update(hostile()));
    const { session } = await h.request();
    expect(Object.keys(session.data).sort()).toEqual(["__proto__", "constructor", "plain"]);
    expect((session.data as { isAdmin?: unknown }).isAdmin).toBeUndefined();
    expect(Object.getPrototypeOf(session.data)).toBe(Object.prototype);
    expect(({} as { isAdmin?: unknown }).isAdmin).toBeUndefined();
  });

  // Found by this review (fixed): `dataPatch()` (session.ts, now `storePatch()`) built the patch with `set[key] = value`
  // on a plain object, so a "__proto__" key became the patch's prototype instead of an entry: the
  // stores never saw it, and the key set on an existing store session was dropped, while a cookie
  // session and a new store record kept it. Now it is defined as an own property, as `apply` does.
  it("an existing record patched with a __proto__ key keeps it as data", async () => {
    const h = storeHarness();
    await h.request((s) => s.set("plain", 1));
    await h.request((s) => s.update(hostile()));
    const { session } = await h.request();
    expect(Object.keys(session.data).sort()).toEqual(["__proto__", "constructor", "plain"]);
    expect((session.data as { isAdmin?: unknown }).isAdmin).toBeUndefined();
  });
});

describe("values a store cannot serialise", () => {
  // A client that controls a value stored in the session (a draft form body) can send one nested
  // deeper than JSON.stringify's recursion allows; a BigInt is the same failure from application code.
  function deeplyNested(depth: number): unknown {
    let value: unknown = {};
    for (let i = 0; i < depth; i++) value = { d: value };
    return value;
  }

  // Found by this review (fixed): the store's serialisation throws inside the store call, and
  // `guardStore` (manager.ts) turned every non-sessionkit error into StoreUnavailableError: the
  // handler, the adapters (503) and any "store down" alerting reported an outage that was one
  // request's bad value, which a client could raise at will wherever request input is stored. Now
  // the value's own error reaches the handler (a 500), as in a cookie session.
  it("a value nested too deeply for JSON is not reported as the store being down", async () => {
    const h = storeHarness();
    await h.request((s) => s.set("plain", 1));
    const error = await h
      .request((s) => s.set("draft", deeplyNested(20_000) as never))
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RangeError);
    expect(error).not.toBeInstanceOf(StoreUnavailableError);
  });

  it("nor is a BigInt, on a new record (set) or an existing one (patch)", async () => {
    const h = storeHarness();
    const first = await h.request((s) => s.set("n", 1n as never)).catch((err: unknown) => err);
    expect(first).toBeInstanceOf(TypeError);
    await h.request((s) => s.set("plain", 1));
    const later = await h.request((s) => s.set("n", 1n as never)).catch((err: unknown) => err);
    expect(later).toBeInstanceOf(TypeError);
  });

  it("in cookie mode the same value fails in the handler, at set, not as an outage", async () => {
    const h = harness();
    const error = await h
      .request((s) => s.set("draft", deeplyNested(20_000) as never))
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(StoreUnavailableError);
  });
});
