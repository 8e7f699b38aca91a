import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Tests run the TypeScript sources. SESSIONKIT_BACKEND=web runs them on the Web Crypto backend,
// the one Deno, Bun and Workers get, instead of node:crypto.
const backend = process.env.SESSIONKIT_BACKEND === "web" ? "backend-web" : "backend-node";

export default defineConfig({
  resolve: {
    alias: {
      "#crypto-backend": fileURLToPath(new URL(`./src/crypto/${backend}.ts`, import.meta.url)),
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    // Browser end-to-end tests run apart (npm run test:e2e); load and soak scripts are not unit tests.
    exclude: ["test/e2e/**", "test/load/**", "node_modules/**"],
    typecheck: { enabled: true, include: ["test/**/*.test-d.ts"], tsconfig: "./tsconfig.json" },
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
