import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Browser end-to-end tests (npm run test:e2e): Chromium through playwright-core against the demo
// app (examples/demo) started as a child process. Kept apart from `npm test`: they need a browser.
const backend = process.env.SESSIONKIT_BACKEND === "web" ? "backend-web" : "backend-node";

export default defineConfig({
  resolve: {
    alias: {
      "#crypto-backend": fileURLToPath(new URL(`./src/crypto/${backend}.ts`, import.meta.url)),
    },
  },
  test: {
    include: ["test/e2e/**/*.e2e.test.ts"],
    // One browser and one demo process at a time: the machine may have only two cores.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 90_000,
    teardownTimeout: 30_000,
  },
});
