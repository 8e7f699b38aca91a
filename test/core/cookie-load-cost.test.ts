/**
 * A whole load, not only the reader: a request carrying our cookie among 4 000 unrelated pairs hands
 * the cookie parser our pair alone, and percent-decodes none of the others.
 */
import { afterEach, expect, it, vi } from "vitest";

const handed = vi.hoisted(() => ({ headers: [] as string[] }));

vi.mock("cookie", async (importOriginal) => {
  const actual = await importOriginal<typeof import("cookie")>();
  return {
    ...actual,
    parse: (...args: Parameters<typeof actual.parse>) => {
      handed.headers.push(args[0]);
      return actual.parse(...args);
    },
  };
});

const { harness, jarToken } = await import("./harness.js");

afterEach(() => {
  handed.headers.length = 0;
  vi.restoreAllMocks();
});

it("a load with our cookie among 4 000 unrelated %-encoded pairs parses and decodes only ours", async () => {
  const h = harness({ tokenCache: false });
  await h.request((s) => s.set("user", "ada"));
  const token = jarToken(h.jar) as string;
  const others = Array.from({ length: 4000 }, (_, i) => `a${i}=%41%42`).join("; ");
  handed.headers.length = 0;
  const decode = vi.spyOn(globalThis, "decodeURIComponent");
  const { session } = await h.request(() => {}, {
    cookie: `${others}; sid=${token}`,
    keepJar: true,
  });
  expect(session.get("user")).toBe("ada");
  const pairs = handed.headers.reduce((n, text) => n + text.split(";").length, 0);
  expect({ pairs, decoded: decode.mock.calls.length }).toEqual({ pairs: 1, decoded: 0 });
});
