/**
 * Starts a Worker module in workerd (through miniflare) on 127.0.0.1: bundled with esbuild under the
 * conditions wrangler uses for Workers ("workerd", "worker", "browser"; no "node"), so the bundle
 * carries what a deployed Worker would, the Web Crypto backend included.
 */
import { build } from "esbuild";
import { Miniflare } from "miniflare";

export interface RunningWorker {
  url: URL;
  dispose(): Promise<void>;
}

/** `conditions` come first: "sessionkit-source" bundles the TypeScript sources instead of dist/. */
export async function startWorker(
  entry: string,
  conditions: string[] = [],
): Promise<RunningWorker> {
  const bundle = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: "esm",
    platform: "neutral",
    conditions: [...conditions, "workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    target: "es2022",
    logLevel: "error",
  });
  const mf = new Miniflare({
    modules: true,
    script: bundle.outputFiles[0]?.text ?? "",
    compatibilityDate: "2025-09-01",
    host: "127.0.0.1",
    port: 0,
  });
  return { url: await mf.ready, dispose: () => mf.dispose() };
}
