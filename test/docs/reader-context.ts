/**
 * What a reader takes for granted around a code sample: the names its prose speaks of without
 * declaring them. doc-samples.ts appends a declaration from here only for a name the sample uses and
 * never declares, so a sample that declares `app` itself gets nothing. Two sources, in this order:
 *
 * 1. Imports already read. A reader goes down a Markdown page in order: a name that an earlier
 *    (checked) sample on the same page imported is imported the same way.
 * 2. The page's own exports. A sample that imports nothing from the package is a fragment of the page
 *    it sits on: a free name that the page's subpath exports (then `sessionkit`'s) is imported from
 *    there, as the reader would. A sample that imports from the package must import all it uses.
 * 3. The objects the prose talks about, typed by the framework in view: the framework or adapter the
 *    sample imports, or when it imports none, the page's subpath and what earlier samples on the page
 *    imported. `app` is an Express app on the Express page and a Hono app on the Hono page; `request`
 *    is a Fetch `Request` unless the framework names it otherwise. When two frameworks in view
 *    disagree on a name, that name is not supplied.
 *
 * Every entry is a real type from the framework or the package (or, for Deno's global, the slice of it
 * the samples use), never `any`: a sample that misuses `app` fails as it would in the reader's editor.
 */
import ts from "typescript";
import type { Sample } from "./doc-samples.js";

export interface ReaderContext {
  /** Free name -> the declaration appended when the sample uses it undeclared. */
  readonly declarations: Readonly<Record<string, string>>;
}

const d = (name: string, type: string) => `declare const ${name}: ${type};`;

/** Names every page may speak of. */
const COMMON: Record<string, string> = {
  request: d("request", "Request"),
  response: d("response", "Response"),
  headers: d("headers", "Headers"),
  sessions: d("sessions", 'import("sessionkit").Sessions'),
  session: d("session", 'import("sessionkit").Session'),
  user: d("user", "{ id: string; name: string }"),
  userId: d("userId", "string"),
  form: d("form", "FormData"),
  secret: d("secret", "string"),
  password: d("password", "string"),
  token: d("token", "string"),
  // The pages that speak of `client` undeclared mean a node-redis client (connect-redis's, the
  // Redis store's); the SQL stores' pages name their pool.
  client: d("client", 'import("redis").RedisClientType'),
  oldSecret: d("oldSecret", "string"),
  oldKey: d("oldKey", "string"),
  oldKeys: d("oldKeys", "string[]"),
};

/** Names a framework's page speaks of, keyed by framework; its own exports imported as its docs do. */
const FRAMEWORKS: Record<string, Record<string, string>> = {
  express: {
    express: 'import express from "express";',
    app: d("app", 'import("express").Express'),
    req: d("req", 'import("express").Request'),
    res: d("res", 'import("express").Response'),
    next: d("next", 'import("express").NextFunction'),
  },
  fastify: {
    Fastify: 'import Fastify from "fastify";',
    app: d("app", 'import("fastify").FastifyInstance'),
    request: d("request", 'import("fastify").FastifyRequest'),
    reply: d("reply", 'import("fastify").FastifyReply'),
  },
  koa: {
    Koa: 'import Koa from "koa";',
    app: d("app", 'import("koa")'),
    ctx: d("ctx", 'import("koa").Context'),
  },
  hono: {
    Hono: 'import { Hono } from "hono";',
    // The app of the page, with the session middleware's variables.
    app: d("app", 'import("hono").Hono<import("sessionkit/hono").SessionEnv>'),
    c: d("c", 'import("hono").Context'),
  },
  h3: {
    H3: 'import { H3 } from "h3";',
    app: d("app", 'import("h3").H3'),
    event: d("event", 'import("h3").H3Event'),
  },
  oak: {
    Application: 'import { Application } from "@oakserver/oak";',
    Router: 'import { Router } from "@oakserver/oak";',
    app: d("app", 'import("@oakserver/oak").Application'),
    router: d("router", 'import("@oakserver/oak").Router'),
    ctx: d("ctx", 'import("@oakserver/oak").Context'),
    // Oak's pages are read on Deno: the slice of its global they use.
    Deno: d("Deno", "{ env: { get(name: string): string | undefined } }"),
  },
  node: {
    server: d("server", 'import("node:http").Server'),
    req: d("req", 'import("node:http").IncomingMessage'),
    res: d("res", 'import("node:http").ServerResponse'),
  },
  fetch: {},
};

/** Which framework a module specifier puts in view. */
function frameworkOf(specifier: string): string | undefined {
  const adapter = /^sessionkit\/(\w+)$/.exec(specifier)?.[1];
  if (adapter && adapter in FRAMEWORKS) return adapter;
  const peers: Record<string, string> = {
    express: "express",
    fastify: "fastify",
    koa: "koa",
    hono: "hono",
    h3: "h3",
    "@oakserver/oak": "oak",
    "node:http": "node",
  };
  return peers[specifier];
}

/** A sample's imports: each local name with the one-name import statement that brings it in. */
export function importsOf(code: string): { specifiers: string[]; names: Map<string, string> } {
  const source = ts.createSourceFile("sample.ts", code, ts.ScriptTarget.Latest);
  const specifiers: string[] = [];
  const names = new Map<string, string>();
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) {
      continue;
    }
    const from = JSON.stringify(statement.moduleSpecifier.text);
    specifiers.push(statement.moduleSpecifier.text);
    const clause = statement.importClause;
    if (!clause) continue;
    const typeOnly = clause.isTypeOnly ? "type " : "";
    if (clause.name)
      names.set(clause.name.text, `import ${typeOnly}${clause.name.text} from ${from};`);
    const bindings = clause.namedBindings;
    if (bindings && ts.isNamespaceImport(bindings)) {
      names.set(bindings.name.text, `import ${typeOnly}* as ${bindings.name.text} from ${from};`);
    } else if (bindings) {
      for (const element of bindings.elements) {
        const local = element.name.text;
        const imported = element.propertyName ? `${element.propertyName.text} as ${local}` : local;
        const kind = typeOnly || (element.isTypeOnly ? "type " : "");
        names.set(local, `import ${kind}{ ${imported} } from ${from};`);
      }
    }
  }
  return { specifiers, names };
}

/** A subpath's export as a free name would be imported: `type` when it has no value side. */
export interface ExportedName {
  readonly name: string;
  readonly typeOnly: boolean;
}

/**
 * The declarations a sample may draw on. `home` are the package subpaths of the page it sits on;
 * `exportsOf` lists a subpath's exported names.
 */
export function contextFor(
  sample: Sample,
  earlier: readonly Sample[],
  home: readonly string[],
  exportsOf: (subpath: string) => readonly ExportedName[],
): ReaderContext {
  const own = importsOf(sample.code).specifiers;
  const read = earlier.map((previous) => importsOf(previous.code));
  const declarations: Record<string, string> = { ...COMMON };

  const frameworksIn = (specifiers: readonly string[]) =>
    new Set(specifiers.map(frameworkOf).filter((f): f is string => f !== undefined));
  // The sample's own imports say which framework it is about; else the page and what was read above.
  let frameworks = frameworksIn(own);
  if (frameworks.size === 0)
    frameworks = frameworksIn([...home, ...read.flatMap((r) => r.specifiers)]);
  const byName = new Map<string, Set<string>>();
  for (const framework of frameworks) {
    for (const [name, declaration] of Object.entries(FRAMEWORKS[framework] ?? {})) {
      byName.set(name, (byName.get(name) ?? new Set()).add(declaration));
    }
  }
  for (const [name, choices] of byName) {
    if (choices.size === 1) declarations[name] = [...choices][0] as string;
    else delete declarations[name]; // two frameworks in view disagree: the sample must say
  }

  if (!own.some((specifier) => /^sessionkit(?:\/|$)/.test(specifier))) {
    for (const subpath of [...home, "sessionkit"].reverse()) {
      for (const { name, typeOnly } of exportsOf(subpath)) {
        declarations[name] = `import ${typeOnly ? "type " : ""}{ ${name} } from "${subpath}";`;
      }
    }
  }
  for (const { names } of read) {
    for (const [name, statement] of names) declarations[name] = statement;
  }
  return { declarations };
}
