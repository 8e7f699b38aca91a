/**
 * "Public API has TSDoc comments with a short example", held: the samples a reader copies compile
 * against the package as a user imports it, and no public function or class goes without an example.
 * How samples are wrapped, and how one is skipped, is documented in doc-samples.ts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import {
  compilerOptions,
  createDocsChecker,
  type DocsChecker,
  markdownFiles,
  markdownSamples,
  parseMarkdownSamples,
  parseTsdocSamples,
  reachableSources,
  type Sample,
  tsdocSamples,
} from "./doc-samples.js";

// Building the Program over every entry and its peers takes seconds, more on a loaded machine.
const TIMEOUT_MS = 180_000;

/**
 * Public exports whose TSDoc is missing in a file another change owns at the moment; each must still
 * be missing (the test below fails once it is documented, so the entry is removed, not forgotten).
 */
const PENDING_DOCS = new Set<string>([]);

let checker: DocsChecker;
let samples: Sample[];

beforeAll(() => {
  checker = createDocsChecker();
  const sources = [...reachableSources(checker.entries.values(), compilerOptions())].sort();
  samples = [...sources.flatMap(tsdocSamples), ...markdownFiles().flatMap(markdownSamples)];
}, TIMEOUT_MS);

const sample = (file: string, code: string): Sample => ({
  where: `${file}:1`,
  file,
  line: 1,
  code,
  example: true,
});

describe("code samples", () => {
  it(
    "every ```ts sample in public TSDoc, README.md and docs/ type-checks against the package",
    () => {
      const fromSource = samples.filter((s) => s.file.startsWith("src/"));
      expect(fromSource.length).toBeGreaterThan(40);
      expect(samples.length - fromSource.length).toBeGreaterThan(20);
      const broken = checker
        .check(samples)
        .filter((r) => r.errors.length > 0)
        .map((r) => `${r.sample.where}\n    ${r.errors.join("\n    ")}`);
      expect(broken, `samples that do not compile:\n  ${broken.join("\n  ")}`).toEqual([]);
    },
    TIMEOUT_MS,
  );

  it("skips only samples marked no-check, each saying why", () => {
    const skipped = samples.filter((s) => s.skip !== undefined);
    const unexplained = skipped.filter((s) => (s.skip ?? "").length < 10).map((s) => s.where);
    expect(unexplained, "a no-check marker without a reason").toEqual([]);
    // The "before" half of a migration page is another library's code; the others need a runtime's
    // or a library's types this project does not install. A new skip is added here, in review.
    const others = skipped.filter((s) => !/the code this page migrates from/.test(s.skip ?? ""));
    expect(others.map((s) => `${s.file}: ${s.skip}`)).toEqual([
      "docs/adapters/fetch.md: Deno's own types (Deno.env, Deno.ServeDefaultExport) are not installed in this project",
      "docs/adapters/fetch.md: Bun's own types (Bun.serve) are not installed in this project",
      "docs/adapters/fetch.md: Bun's own types (Bun.serve, its WebSocket handlers) are not installed in this project",
      "docs/adapters/node.md: ws ships no types, and @types/ws is not a dependency of this project",
    ]);
  });

  it("every public export has TSDoc, and every public function and class an @example", () => {
    const missing = checker.missingDocs();
    const gaps = missing
      .filter((m) => !PENDING_DOCS.has(m.name))
      .map((m) => `${m.where} ${m.name} (${m.subpaths.join(", ")}): ${m.problem}`);
    expect(gaps, `public API without its TSDoc:\n  ${gaps.join("\n  ")}`).toEqual([]);
    const documented = [...PENDING_DOCS].filter((name) => !missing.some((m) => m.name === name));
    expect(documented, "now documented: remove from PENDING_DOCS").toEqual([]);
  });
});

describe("the sample check itself", () => {
  it(
    "reports a sample that calls the API wrongly, at the sample's own line",
    () => {
      const [result] = checker.check([
        sample(
          "src/index.ts",
          'import { createSessions } from "sessionkit";\ncreateSessions({ secret: 42 });',
        ),
      ]);
      expect(result?.errors).toHaveLength(1);
      expect(result?.errors[0]).toMatch(/^src\/index\.ts:2: TS2322 /);
    },
    TIMEOUT_MS,
  );

  it(
    "supplies a name from the page's context only where the sample leaves it undeclared",
    () => {
      const [fragment, declared, unknown] = checker.check([
        // On the Express page, `app`, `sessions` and the page's own `session` are understood...
        sample("src/adapters/express.ts", "app.use(session(sessions));"),
        // ...but a sample that declares a name itself keeps its own (a string has no `use`)...
        sample("src/adapters/express.ts", 'const app = "not an app";\napp.use(session(sessions));'),
        // ...and a name nothing explains stays an error.
        sample("src/adapters/express.ts", "app.use(frobnicate(sessions));"),
      ]);
      expect(fragment?.errors).toEqual([]);
      expect(fragment?.supplied).toEqual(["app", "session", "sessions"]);
      expect(declared?.errors.join("\n")).toMatch(/TS2339 Property 'use' does not exist/);
      expect(unknown?.errors.join("\n")).toMatch(/TS2304 Cannot find name 'frobnicate'/);
    },
    TIMEOUT_MS,
  );

  it(
    "holds a sample that imports from the package to a complete import list",
    () => {
      const [result] = checker.check([
        sample(
          "src/adapters/express.ts",
          'import { guard } from "sessionkit/express";\napp.use(session(sessions), guard());',
        ),
      ]);
      expect(result?.errors.join("\n")).toMatch(/Cannot find name 'session'|not callable/);
    },
    TIMEOUT_MS,
  );

  it(
    "checks a sample that augments a module apart, so its types reach no other sample",
    () => {
      const handler =
        'app.get("/", (req, res) => {\n  req.session.set("visits", "x");\n  res.end();\n});';
      const [augmenting, plain] = checker.check([
        sample(
          "src/adapters/express.ts",
          `declare module "sessionkit" {\n  interface Register { data: { visits: number } }\n}\n${handler}`,
        ),
        sample("src/adapters/express.ts", handler),
      ]);
      // The registered type refuses a string in its own sample; the other sample never sees it.
      expect(augmenting?.errors.join("\n")).toMatch(/^src\/adapters\/express\.ts:5: TS2345 /);
      expect(plain?.errors).toEqual([]);
    },
    TIMEOUT_MS,
  );

  it(
    "flags a timer callback whose promise nobody handles, and not one that catches",
    () => {
      const [floating, caught] = checker.check([
        sample(
          "src/stores/postgres.ts",
          "setInterval(() => sessions.store?.sweep?.(Date.now()), 60_000);",
        ),
        sample(
          "src/stores/postgres.ts",
          "setInterval(() => sessions.store?.sweep?.(Date.now()).catch(console.error), 60_000);",
        ),
      ]);
      expect(floating?.errors).toEqual([
        expect.stringMatching(/^src\/stores\/postgres\.ts:1: a timer callback returns a promise/),
      ]);
      expect(caught?.errors).toEqual([]);
    },
    TIMEOUT_MS,
  );

  it("finds the fences a reader sees, and skips only those marked no-check", () => {
    const markdown = [
      "Text.",
      "```ts",
      "const a = 1;",
      "```",
      "<!-- no-check: another library's code -->",
      "```ts",
      "legacy();",
      "```",
      "- a list item:",
      "  ```typescript no-check shows a shell session",
      "  $ run",
      "  ```",
      "```js",
      "not ts",
      "```",
    ].join("\n");
    expect(
      parseMarkdownSamples("docs/x.md", markdown).map(({ line, code, skip }) => ({
        line,
        code,
        skip,
      })),
    ).toEqual([
      { line: 3, code: "const a = 1;", skip: undefined },
      { line: 7, code: "legacy();", skip: "another library's code" },
      { line: 11, code: "$ run", skip: "shows a shell session" },
    ]);

    const source = [
      "/**",
      " * Does a thing.",
      " * ```ts",
      " * prose();",
      " * ```",
      " * @example",
      " * ```ts",
      " * thing();",
      " * ```",
      " */",
      "export function thing() {}",
    ].join("\n");
    expect(
      parseTsdocSamples("src/x.ts", source).map(({ line, code, example }) => ({
        line,
        code,
        example,
      })),
    ).toEqual([
      { line: 4, code: "prose();", example: false },
      { line: 8, code: "thing();", example: true },
    ]);
  });
});
