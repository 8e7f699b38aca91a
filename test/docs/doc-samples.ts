/**
 * Type-checks the code samples a reader copies: every ```ts fence in a TSDoc comment of the public
 * source (the files the package.json "exports" map reaches) and in README.md and docs/**\/*.md, against
 * the package as a user imports it (`sessionkit`, `sessionkit/express`, ...: tsconfig.json's `paths`
 * and the `sessionkit-source` condition send those to src/). Also lists public exports without TSDoc,
 * and public functions and classes without an `@example`.
 *
 * How a sample is wrapped, the same way for every sample:
 * - Each sample is its own module (a virtual file beside this one; `export {}` is appended), so names
 *   never leak from one sample to the next, and top-level `await` works as in an ES module.
 * - A sample is a fragment: a name it uses but never declares (`app`, `request`, `sessions`) is what the
 *   surrounding prose means by it. A first pass finds those names ("Cannot find name", in a Program of
 *   the samples alone); the real check then has a declaration appended for each one from the reader's
 *   context (reader-context.ts says which names, typed how, and when). A free name that context does
 *   not know stays an error: the sample must declare it.
 * - A sample that augments a module (`declare module "sessionkit" { interface Register ... }`) would
 *   retype every other sample: it is checked in a Program of its own.
 * - Nothing else is changed: no per-sample fix, no error filter. A sample that shows a deliberately
 *   wrong call says so with `// @ts-expect-error`, which the checker then holds it to.
 * - Beyond the compiler, one check: a timer callback that returns an unhandled promise
 *   (`setInterval(() => store.sweep(now))`), which ends a Node process when the store is down.
 * - A sample that cannot compile for a good reason is skipped only by a visible marker, either the
 *   fence's info string (```` ```ts no-check ````) or, in Markdown, the comment
 *   `<!-- no-check: why -->` on the line just above the fence. Every skip is reported by the test.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { contextFor, type ExportedName, type ReaderContext } from "./reader-context.js";

export const ROOT = path.resolve(import.meta.dirname, "../..");
/** Where the virtual sample modules live: inside the project, so its package.json and node_modules apply. */
const SAMPLE_DIR = path.join(ROOT, "test/docs/.samples");

export interface Sample {
  /** Where the fence starts, for messages: "src/adapters/express.ts:41". */
  readonly where: string;
  /** The file the sample is in, relative to the root. */
  readonly file: string;
  /** 1-based line of the first code line in that file. */
  readonly line: number;
  readonly code: string;
  /** In a TSDoc comment, whether the fence belongs to an `@example` tag. */
  readonly example: boolean;
  /** Set when the sample carries a no-check marker: the reason, or "" when none is given. */
  readonly skip?: string;
}

export interface SampleResult {
  readonly sample: Sample;
  /** Declarations appended from the reader's context, by name. */
  readonly supplied: readonly string[];
  /** "file:line: message", the line mapped back to the sample's own file. */
  readonly errors: readonly string[];
}

/** The subpath map: "sessionkit/express" -> absolute path of src/adapters/express.ts. */
export function publicEntries(): Map<string, string> {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
    name: string;
    exports: Record<string, string | { types?: string }>;
  };
  const entries = new Map<string, string>();
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const types = typeof target === "string" ? target : target.types;
    if (!types?.endsWith(".d.ts")) continue; // ./package.json
    const source = path.join(ROOT, types.replace(/^\.\/dist\//, "src/").replace(/\.d\.ts$/, ".ts"));
    const name = subpath === "." ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
    if (!existsSync(source)) throw new Error(`${name}: no source file ${source}`);
    entries.set(name, source);
  }
  return entries;
}

export function compilerOptions(): ts.CompilerOptions {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    path.join(ROOT, "tsconfig.json"),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      },
    },
  );
  if (!parsed) throw new Error("tsconfig.json could not be read");
  return { ...parsed.options, noEmit: true };
}

/** Source files under src/ that the entries import, transitively (type-only imports included). */
export function reachableSources(
  entries: Iterable<string>,
  options: ts.CompilerOptions,
): Set<string> {
  const src = path.join(ROOT, "src") + path.sep;
  const seen = new Set<string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
    for (const ref of info.importedFiles) {
      const resolved = ts.resolveModuleName(ref.fileName, file, options, ts.sys).resolvedModule;
      const target = resolved?.resolvedFileName;
      if (target?.startsWith(src) && !target.endsWith(".d.ts")) queue.push(target);
    }
  }
  return seen;
}

const FENCE_OPEN = /^(\s*)(`{3,})(ts|typescript)\b(.*)$/;
const NO_CHECK_INFO = /(?:^|\s)no-check(?:\s|$)/;
const NO_CHECK_COMMENT = /^\s*<!--\s*no-check\s*:?\s*(.*?)\s*-->\s*$/;

/** ```ts fences in a list of lines; `lineOf(i)` gives the 1-based file line of lines[i]. */
function fences(
  file: string,
  lines: readonly string[],
  lineOf: (i: number) => number,
  isExample: (i: number) => boolean,
  markdown: boolean,
): Sample[] {
  const samples: Sample[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE_OPEN.exec(lines[i] as string);
    if (!open) continue;
    const [, indent = "", ticks = "", , info = ""] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const line = lines[j] as string;
      if (line.trim().startsWith(ticks) && line.trim().replace(/`/g, "") === "") break;
      body.push(line.startsWith(indent) ? line.slice(indent.length) : line.trimStart());
    }
    let skip: string | undefined;
    if (NO_CHECK_INFO.test(info)) skip = info.replace(NO_CHECK_INFO, " ").trim();
    const above = markdown && i > 0 ? NO_CHECK_COMMENT.exec(lines[i - 1] as string) : null;
    if (above) skip = above[1] ?? "";
    samples.push({
      where: `${file}:${lineOf(i)}`,
      file,
      line: lineOf(i + 1),
      code: body.join("\n"),
      example: isExample(i),
      ...(skip === undefined ? {} : { skip }),
    });
    i = j;
  }
  return samples;
}

/** The ```ts fences inside the `/** ... *\/` comments of one source file. */
export function tsdocSamples(absolute: string): Sample[] {
  return parseTsdocSamples(path.relative(ROOT, absolute), readFileSync(absolute, "utf8"));
}

/** The ```ts fences inside the `/** ... *\/` comments of `text`, the source of `file`. */
export function parseTsdocSamples(file: string, text: string): Sample[] {
  const samples: Sample[] = [];
  for (const comment of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const startLine = text.slice(0, comment.index).split("\n").length;
    const lines = comment[0].split("\n").map((l) => l.replace(/^\s*\*(?: |$)/, ""));
    // A fence belongs to the block tag above it; an `@example` tag runs until the next tag.
    let tag = "";
    const tags = lines.map((line) => {
      const match = /^\s*(@\w+)/.exec(line);
      if (match && !line.trimStart().startsWith("```")) tag = match[1] as string;
      return tag;
    });
    samples.push(
      ...fences(
        file,
        lines,
        (i) => startLine + i,
        (i) => tags[i] === "@example",
        false,
      ),
    );
  }
  return samples;
}

export function markdownFiles(): string[] {
  const docs = path.join(ROOT, "docs");
  const files = [path.join(ROOT, "README.md")];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".md")) files.push(full);
    }
  };
  if (existsSync(docs)) walk(docs);
  return files.sort();
}

export function markdownSamples(absolute: string): Sample[] {
  return parseMarkdownSamples(path.relative(ROOT, absolute), readFileSync(absolute, "utf8"));
}

/** The ```ts fences of `text`, the Markdown of `file`. */
export function parseMarkdownSamples(file: string, text: string): Sample[] {
  const lines = text.split("\n");
  return fences(
    file,
    lines,
    (i) => i + 1,
    () => true,
    true,
  );
}

const CANNOT_FIND = new Set([2304, 2552, 2503, 18004]);
/** A sample that augments a module changes every other sample's types: it gets a Program of its own. */
const AUGMENTS = /^\s*declare\s+(?:module|global)\b/m;

interface Virtual {
  readonly sample: Sample;
  readonly fileName: string;
  supplied: string[];
  context?: ReaderContext;
}

export interface DocsChecker {
  readonly entries: ReadonlyMap<string, string>;
  /** Type-checks samples; results in the same order, skipped samples without errors. */
  check(samples: readonly Sample[]): SampleResult[];
  /** Public exports with no TSDoc, and public functions and classes with no `@example`. */
  missingDocs(): MissingDoc[];
}

/**
 * One analysis Program over the public entries (for their exports and TSDoc), shared by every check.
 * Samples are checked in one more Program reusing its files; a sample that augments a module gets
 * a Program of its own. Free names are found first in a Program of the samples alone that resolves
 * no import (cheap: everything imported is `any` there, and only undeclared names are asked for).
 */
export function createDocsChecker(
  entries: ReadonlyMap<string, string> = publicEntries(),
  options: ts.CompilerOptions = compilerOptions(),
): DocsChecker {
  const texts = new Map<string, string>();
  const host = ts.createCompilerHost(options, true);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (name) => texts.has(name) || fileExists.call(host, name);
  host.readFile = (name) => texts.get(name) ?? readFile.call(host, name);
  const cache = new Map<string, ts.SourceFile | undefined>();
  host.getSourceFile = (name, language, onError, create) => {
    const text = texts.get(name);
    if (text !== undefined) return ts.createSourceFile(name, text, language, true);
    if (!cache.has(name)) {
      cache.set(name, getSourceFile.call(host, name, language, onError, create));
    }
    return cache.get(name);
  };
  const analysis = ts.createProgram({ rootNames: [...entries.values()], options, host });
  const homeOf = homeSubpaths(entries, options, analysis);
  const exportsOf = exportedNames(entries, analysis);
  let batch = 0;

  function check(samples: readonly Sample[]): SampleResult[] {
    batch++;
    const virtuals: Virtual[] = samples
      .filter((sample) => sample.skip === undefined)
      .map((sample, n) => ({
        sample,
        fileName: path.join(SAMPLE_DIR, `${batch}-${n}-${sample.file.replace(/[^\w]+/g, "-")}.ts`),
        supplied: [],
      }));
    const render = (v: Virtual) => {
      const declarations = v.supplied.map((name) => v.context?.declarations[name] as string);
      texts.set(v.fileName, `${v.sample.code}\n${declarations.join("\n")}\nexport {};\n`);
    };
    for (const v of virtuals) {
      // Markdown is read top to bottom: the checked samples above this one on its page.
      const earlier = v.sample.file.endsWith(".md")
        ? virtuals
            .filter((o) => o.sample.file === v.sample.file && o.sample.line < v.sample.line)
            .map((o) => o.sample)
        : [];
      v.context = contextFor(v.sample, earlier, homeOf(v.sample.file), exportsOf);
      render(v);
    }

    const free = ts.createProgram({
      rootNames: virtuals.map((v) => v.fileName),
      options: { ...options, noResolve: true, types: [] },
      host,
    });
    for (const v of virtuals) {
      v.supplied = freeNames(free, v);
      render(v);
    }

    const results = new Map<Sample, SampleResult>();
    const shared = virtuals.filter((v) => !AUGMENTS.test(v.sample.code));
    const alone = virtuals.filter((v) => AUGMENTS.test(v.sample.code)).map((v) => [v]);
    let previous = analysis;
    for (const group of [shared, ...alone]) {
      const program = ts.createProgram({
        rootNames: [...entries.values(), ...group.map((v) => v.fileName)],
        options,
        host,
        oldProgram: previous,
      });
      previous = program;
      for (const v of group) {
        results.set(v.sample, {
          sample: v.sample,
          supplied: v.supplied,
          errors: errorsOf(program, v),
        });
      }
    }
    for (const v of virtuals) texts.delete(v.fileName);
    return samples.map((sample) => results.get(sample) ?? { sample, supplied: [], errors: [] });
  }

  return { entries, check, missingDocs: () => missingDocs(entries, analysis) };
}

/** The reader's-context names a sample uses without declaring them. */
function freeNames(program: ts.Program, v: Virtual): string[] {
  const checker = program.getTypeChecker();
  const known = v.context?.declarations ?? {};
  const missing = new Set<string>();
  const source = program.getSourceFile(v.fileName) as ts.SourceFile;
  for (const d of program.getSemanticDiagnostics(source)) {
    if (!CANNOT_FIND.has(d.code)) continue;
    const name = /'([^']+)'/.exec(ts.flattenDiagnosticMessageText(d.messageText, "\n"))?.[1];
    if (name && Object.hasOwn(known, name)) missing.add(name);
  }
  // A free name can also fall to a global of the DOM lib that the prose does not mean (`event` is
  // window.event there): a context name that resolves only into a default lib is supplied too.
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node) && Object.hasOwn(known, node.text)) {
      const declarations = checker.getSymbolAtLocation(node)?.declarations ?? [];
      const inLib = (d: ts.Declaration) => program.isSourceFileDefaultLibrary(d.getSourceFile());
      if (declarations.length > 0 && declarations.every(inLib)) missing.add(node.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return [...missing].sort();
}

function errorsOf(program: ts.Program, v: Virtual): string[] {
  const source = program.getSourceFile(v.fileName) as ts.SourceFile;
  const diagnostics = [
    ...program.getSyntacticDiagnostics(source),
    ...program.getSemanticDiagnostics(source),
  ];
  const codeLines = v.sample.code.split("\n").length;
  const floating = floatingTimerPromises(program, source).map((at) => {
    const line = source.getLineAndCharacterOfPosition(at).line;
    return `${v.sample.file}:${v.sample.line + line}: a timer callback returns a promise nobody handles: a rejection (the store down) ends the Node process; add .catch()`;
  });
  return [
    ...diagnostics.map((d) => {
      const at = d.start === undefined ? 0 : source.getLineAndCharacterOfPosition(d.start).line;
      const message = ts.flattenDiagnosticMessageText(d.messageText, " ");
      // A line past the sample's code is in an appended declaration: say so rather than mislead.
      const where =
        at < codeLines ? `${v.sample.file}:${v.sample.line + at}` : `${v.sample.where} (appended)`;
      return `${where}: TS${d.code} ${message}`;
    }),
    ...floating,
  ];
}

/**
 * The one behaviour the compiler does not see that samples got wrong: `setInterval(() => store.sweep())`
 * leaves the promise unhandled, and Node (15+) exits on an unhandled rejection. Positions of such calls.
 */
function floatingTimerPromises(program: ts.Program, source: ts.SourceFile): number[] {
  const checker = program.getTypeChecker();
  const found: number[] = [];
  const visit = (node: ts.Node): void => {
    if (
      ts.isCallExpression(node) &&
      ts.isIdentifier(node.expression) &&
      /^set(?:Interval|Timeout|Immediate)$/.test(node.expression.text)
    ) {
      const callback = node.arguments[0];
      // `() => work().catch(report)` handles it: its promise never rejects.
      const body = callback && ts.isArrowFunction(callback) ? callback.body : undefined;
      const handled =
        body !== undefined &&
        ts.isCallExpression(body) &&
        ts.isPropertyAccessExpression(body.expression) &&
        body.expression.name.text === "catch";
      const signature =
        !handled && callback && checker.getTypeAtLocation(callback).getCallSignatures()[0];
      const returned = signature && checker.getReturnTypeOfSignature(signature);
      const parts = returned ? (returned.isUnion() ? returned.types : [returned]) : [];
      if (parts.some((t) => checker.getPropertyOfType(t, "then"))) found.push(node.getStart());
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** A subpath's exported names, each marked type-only when it has no value side. */
function exportedNames(
  entries: ReadonlyMap<string, string>,
  program: ts.Program,
): (subpath: string) => ExportedName[] {
  const checker = program.getTypeChecker();
  const exported = new Map<string, ExportedName[]>();
  return (subpath) => {
    let names = exported.get(subpath);
    if (!names) {
      const source = program.getSourceFile(entries.get(subpath) ?? "");
      const symbol = source && checker.getSymbolAtLocation(source);
      names = (symbol ? checker.getExportsOfModule(symbol) : []).map((s) => {
        const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
        return { name: s.name, typeOnly: (target.flags & ts.SymbolFlags.Value) === 0 };
      });
      exported.set(subpath, names);
    }
    return names;
  };
}

/**
 * For a file, the subpaths whose page a reader is on when reading it: an entry's own subpath; for a
 * module inside, `sessionkit` when it exports something declared there, else the subpaths that do,
 * else those whose entry imports it; for docs/adapters/<x>.md and docs/stores/<x>.md, that subpath.
 */
function homeSubpaths(
  entries: ReadonlyMap<string, string>,
  options: ts.CompilerOptions,
  program: ts.Program,
): (file: string) => string[] {
  const checker = program.getTypeChecker();
  const exporters = new Map<string, string[]>();
  const reach = new Map<string, Set<string>>();
  for (const [name, entry] of entries) {
    reach.set(name, reachableSources([entry], options));
    const source = program.getSourceFile(entry);
    const moduleSymbol = source && checker.getSymbolAtLocation(source);
    for (const exported of moduleSymbol ? checker.getExportsOfModule(moduleSymbol) : []) {
      const symbol =
        exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      for (const declaration of symbol.declarations ?? []) {
        const file = declaration.getSourceFile().fileName;
        const list = exporters.get(file) ?? [];
        if (!list.includes(name)) list.push(name);
        exporters.set(file, list);
      }
    }
  }
  return (file) => {
    const absolute = path.join(ROOT, file);
    const own = [...entries].filter(([, entry]) => entry === absolute).map(([name]) => name);
    if (own.length > 0) return own;
    if (file.endsWith(".md")) {
      const page = /docs\/(?:adapters|stores)\/([\w-]+)\.md$/.exec(file);
      if (!page) return [];
      const candidates = [`sessionkit/${page[1]}`, `sessionkit/stores/${page[1]}`];
      return candidates.filter((name) => entries.has(name));
    }
    const exporting = exporters.get(absolute) ?? [];
    if (exporting.includes("sessionkit")) return ["sessionkit"];
    if (exporting.length > 0) return exporting;
    return [...reach].filter(([, files]) => files.has(absolute)).map(([name]) => name);
  };
}

export interface MissingDoc {
  readonly where: string;
  readonly name: string;
  readonly subpaths: readonly string[];
  readonly problem: "no TSDoc" | "no @example";
}

/**
 * Public exports (every name an entry exports, followed through re-exports) with no TSDoc at all, and
 * public functions and classes without an `@example` in their TSDoc.
 */
function missingDocs(entries: ReadonlyMap<string, string>, program: ts.Program): MissingDoc[] {
  const checker = program.getTypeChecker();
  const found = new Map<ts.Declaration, MissingDoc & { subpaths: string[] }>();
  for (const [name, entry] of entries) {
    const source = program.getSourceFile(entry) as ts.SourceFile;
    const moduleSymbol = checker.getSymbolAtLocation(source);
    if (!moduleSymbol) continue; // a file with no exports
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol =
        exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const declarations = symbol.declarations ?? [];
      const first = declarations[0];
      if (!first) continue;
      const file = first.getSourceFile().fileName;
      if (!file.startsWith(path.join(ROOT, "src"))) continue; // a peer's type passed through
      const docs = declarations.flatMap((d) => ts.getJSDocCommentsAndTags(d));
      let problem: MissingDoc["problem"] | undefined;
      if (docs.length === 0) problem = "no TSDoc";
      else if (isCallableOrClass(symbol, first, checker) && !hasExample(docs)) {
        problem = "no @example";
      }
      if (!problem) continue;
      const known = found.get(first);
      if (known) {
        known.subpaths.push(name);
        continue;
      }
      const { line } = first.getSourceFile().getLineAndCharacterOfPosition(first.getStart());
      found.set(first, {
        where: `${path.relative(ROOT, file)}:${line + 1}`,
        name: exported.name,
        subpaths: [name],
        problem,
      });
    }
  }
  return [...found.values()];
}

function isCallableOrClass(symbol: ts.Symbol, first: ts.Declaration, checker: ts.TypeChecker) {
  if (symbol.flags & (ts.SymbolFlags.Function | ts.SymbolFlags.Class)) return true;
  // `export const useThing = (...) => ...` is a function to its reader.
  if (symbol.flags & ts.SymbolFlags.Variable) {
    return checker.getTypeOfSymbolAtLocation(symbol, first).getCallSignatures().length > 0;
  }
  return false;
}

function hasExample(docs: readonly (ts.JSDoc | ts.JSDocTag)[]): boolean {
  return docs.some((doc) =>
    ts.isJSDoc(doc)
      ? (doc.tags ?? []).some((tag) => tag.tagName.text === "example")
      : doc.tagName.text === "example",
  );
}
