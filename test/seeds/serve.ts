// Serves a node:http handler on 127.0.0.1 for the seed twins, and closes it afterwards.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { listenLoopback } from "../helpers/listen.js";

export interface Served {
  url: string;
  close(): Promise<void>;
}

export function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => unknown,
): Promise<Served> {
  const server = createServer(handler);
  return listenLoopback(server);
}
