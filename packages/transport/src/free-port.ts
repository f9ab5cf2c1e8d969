import { createServer } from 'node:net';

/**
 * A TCP port free on the loopback interface right now (the OS picks it), for a server this
 * process is about to start there: the demo's nats-server, an embedded PostgreSQL.
 */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('the OS gave no loopback port')),
      );
    });
  });
}
