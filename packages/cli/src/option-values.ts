import { createServer } from 'node:net';
import { READ_CONSISTENCIES, type ReadConsistency } from '@synod/protocol';
import { OptionError } from './usage.js';

/** `text` as a whole number in [min, max]; `name` says where it came from (--wait-ms, ...). */
export function wholeNumber(
  name: string,
  text: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const n = text.trim() === '' ? Number.NaN : Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new OptionError(
      max === Number.MAX_SAFE_INTEGER
        ? `${name} must be a whole number of at least ${min}, got ${text}`
        : `${name} must be a whole number from ${min} to ${max}, got ${text}`,
    );
  return n;
}

/** A TCP port: 1..65535, or 0 too where 0 means "any free port". */
export function portNumber(name: string, text: string, { zeroMeansAny = false } = {}): number {
  return wholeNumber(name, text, zeroMeansAny ? 0 : 1, 65_535);
}

/**
 * Fails now, with a one-line error, if `port` on `host` cannot be listened on (in use, or
 * privileged), rather than after a node has started and connected. Port 0 always works.
 */
export async function assertCanListen(name: string, host: string, port: number): Promise<void> {
  if (port === 0) return;
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new OptionError(
          error.code === 'EADDRINUSE'
            ? `${name} ${port}: ${host}:${port} is already in use`
            : `${name} ${port}: cannot listen on ${host}:${port} (${error.code ?? error.message})`,
        ),
      ),
    );
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

/** --consistency's value (strong when not given), checked before the request goes out. */
export function consistency(text: string | undefined): ReadConsistency {
  if (text === undefined) return 'strong';
  const known = READ_CONSISTENCIES.find((c) => c === text);
  if (known === undefined)
    throw new OptionError(
      `--consistency must be one of ${READ_CONSISTENCIES.join(', ')}, got ${text}`,
    );
  return known;
}
