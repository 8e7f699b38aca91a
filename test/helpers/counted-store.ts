import type { SessionStore } from "../../src/stores/store.js";

/** `inner` behind a Proxy that records the name of every method called on it, in call order. */
export function countedStore(inner: SessionStore): { store: SessionStore; calls: string[] } {
  const calls: string[] = [];
  const store = new Proxy(inner, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls.push(String(name));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as SessionStore;
  return { store, calls };
}
