// Serves a node:http handler on 127.0.0.1 for the seed twins, and closes it afterwards.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Served {
  url: string;
  close(): Promise<void>;
}

export function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => unknown,
): Promise<Served> {
  const server = createServer(handler);
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
