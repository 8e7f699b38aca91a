/**
 * Checks the export map after a build: every subpath resolves to a built module with its types, can be
 * imported, and is named in the README. Importing "sessionkit" itself must load no optional peer.
 */
import { existsSync, readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

interface ExportEntry {
  types: string;
  default: string;
}

const pkg = JSON.parse(readFileSync("package.json", "utf8")) as {
  name: string;
  exports: Record<string, ExportEntry | string>;
  peerDependencies: Record<string, string>;
};
const readme = readFileSync("README.md", "utf8");
const problems: string[] = [];

for (const [subpath, entry] of Object.entries(pkg.exports)) {
  if (typeof entry === "string") continue;
  const name = subpath === "." ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
  for (const file of [entry.types, entry.default]) {
    if (!existsSync(file)) problems.push(`${name}: ${file} does not exist`);
  }
  if (!readme.includes(`\`${name}\``)) problems.push(`${name} is not named in README.md`);
  if (existsSync(entry.default)) {
    try {
      await import(pathToFileURL(entry.default).href);
    } catch (err) {
      // A subpath whose peer is not installed may fail to import; every peer is a devDependency here.
      problems.push(`${name} failed to import: ${(err as Error).message}`);
    }
  }
}

// Static module graph of the built files: every bare import must be declared (dependency or peer),
// and the graph of "sessionkit" and "sessionkit/fetch" must reach no optional peer at all.
const declared = new Set([
  ...Object.keys((pkg as { dependencies?: Record<string, string> }).dependencies ?? {}),
  ...Object.keys(pkg.peerDependencies),
]);
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] as string);
}

function graph(entry: string): Set<string> {
  const bare = new Set<string>();
  const seen = new Set<string>();
  const queue = [new URL(entry, pathToFileURL(`${process.cwd()}/`))];
  while (queue.length > 0) {
    const url = queue.pop() as URL;
    if (seen.has(url.href) || !existsSync(url)) continue;
    seen.add(url.href);
    for (const match of readFileSync(url, "utf8").matchAll(IMPORT)) {
      const specifier = (match[1] ?? match[2]) as string;
      if (specifier.startsWith(".")) queue.push(new URL(specifier, url));
      else if (specifier === "#crypto-backend") {
        queue.push(new URL("dist/crypto/backend-node.js", pathToFileURL(`${process.cwd()}/`)));
        queue.push(new URL("dist/crypto/backend-web.js", pathToFileURL(`${process.cwd()}/`)));
      } else if (!specifier.startsWith("node:")) bare.add(packageOf(specifier));
    }
  }
  return bare;
}

for (const [subpath, entry] of Object.entries(pkg.exports)) {
  if (typeof entry === "string") continue;
  const name = subpath === "." ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
  const bare = graph(entry.default);
  for (const dep of bare) {
    if (!declared.has(dep))
      problems.push(`${name} imports ${dep}, which package.json does not declare`);
  }
  if (subpath === "." || subpath === "./fetch") {
    for (const dep of bare) {
      if (dep in pkg.peerDependencies) problems.push(`${name} reaches the optional peer ${dep}`);
    }
  }
}

if (problems.length > 0) {
  console.error(`validate-exports: ${problems.length} problem(s)\n- ${problems.join("\n- ")}`);
  process.exit(1);
}
console.log(
  `validate-exports: ${Object.keys(pkg.exports).length} subpaths resolve, import and are documented`,
);
