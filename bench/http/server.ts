/**
 * One benchmark server in its own process: `node --import tsx
 * bench/http/server.ts <app name>`, started by bench/http.ts over IPC (pinned with taskset when
 * available). Reports `{ port }` once listening and exits when its parent goes away.
 */
import { APPS, portOf } from "./apps.js";

const name = process.argv[2];
const spec = APPS.find((app) => app.name === name);
if (!spec || !process.send) {
  console.error(
    `usage: started by bench/http.ts with one of: ${APPS.map((app) => app.name).join(", ")}`,
  );
  process.exit(2);
}
process.env.NODE_ENV ??= "production";
process.on("disconnect", () => process.exit(0));
const server = await spec.start();
server.keepAliveTimeout = 60_000;
process.send({ port: portOf(server) });
