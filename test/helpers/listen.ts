/** Serving a test's node:http server on loopback, the one way every wire-level test does it. */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

/** A server listening on 127.0.0.1: its base URL and port, and a close that waits for it. */
export interface Listening {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Listens on a free port of 127.0.0.1. With `closeConnections`, closing also ends idle keep-alive
 * sockets (a test that keeps a raw connection open would otherwise hold `close` up).
 */
export function listenLoopback(
  server: Server,
  options: { closeConnections?: boolean } = {},
): Promise<Listening> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        port,
        close: () =>
          new Promise((done) => {
            if (options.closeConnections) server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
