import { APPS, portOf } from "./bench/http/apps.js";

const spec = APPS.find((a) => a.name === process.argv[2])!;
const server = await spec.start();
console.log("PORT", portOf(server));
setTimeout(() => process.exit(0), Number(process.argv[3] ?? 8000));
