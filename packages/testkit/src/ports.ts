import { createServer } from 'node:net';

/** This machine runs a real NATS on 4222 and PostgreSQL on 5432; a test must never touch them. */
export const RESERVED_PORTS: ReadonlySet<number> = new Set([4222, 5432]);

export const LOOPBACK = '127.0.0.1';

// The kernel may hand the same ephemeral port out again as soon as our probe socket closes, and a
// cluster asks for several ports before any server binds them; remembering what we returned keeps
// two servers of one test run from being given the same port.
const handedOut = new Set<number>();

function probePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: LOOPBACK, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A currently free TCP port on 127.0.0.1, never 4222/5432 and never one returned before in this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await probePort();
    if (port > 0 && !RESERVED_PORTS.has(port) && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('freePort: no usable port found on 127.0.0.1 after 100 attempts');
}

/** Rejects ports a caller passed explicitly if they would hit the machine's real services. */
export function assertUsablePort(port: number, what: string): void {
  if (!Number.isInteger(port) || port <= 0 || port > 65_535) {
    throw new RangeError(`${what}: ${port} is not a TCP port`);
  }
  if (RESERVED_PORTS.has(port)) {
    throw new RangeError(
      `${what}: port ${port} belongs to a real service on this machine; use freePort()`,
    );
  }
  handedOut.add(port);
}
