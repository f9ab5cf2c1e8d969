import { type ClientWrite, DecodeError, validateClientWrite } from '@synod/protocol';
import { Packr } from 'msgpackr';

/**
 * A log value of the node runtime: the client writes the leader packed into one slot
 * (batching), as a msgpack array. Decoding validates each write as strictly as a client
 * request, so a damaged entry fails loudly instead of applying garbage.
 */
const packr = new Packr({ useRecords: false, structuredClone: false, mapsAsObjects: true });

export function encodeBatch(writes: readonly ClientWrite[]): Uint8Array {
  // pack() returns a view into msgpackr's shared, larger buffer: the log keeps this value for
  // a long time, so keep a copy of exactly its bytes rather than pin that buffer.
  return new Uint8Array(packr.pack(writes));
}

/**
 * A slot that carries only linearizable reads: no writes, and an id unique to its leader so
 * that two such slots never have the same bytes.
 */
export function encodeBarrier(id: string): Uint8Array {
  return new Uint8Array(packr.pack({ barrier: id }));
}

/** The writes of a log value (none for a read barrier). */
export function decodeBatch(value: Uint8Array): ClientWrite[] {
  let decoded: unknown;
  try {
    decoded = packr.unpack(value);
  } catch (cause) {
    throw new DecodeError('MALFORMED', 'a log entry is not a batch of writes', '', { cause });
  }
  if (
    typeof decoded === 'object' &&
    decoded !== null &&
    !Array.isArray(decoded) &&
    typeof (decoded as { barrier?: unknown }).barrier === 'string' &&
    Object.keys(decoded).length === 1
  )
    return [];
  if (!Array.isArray(decoded))
    throw new DecodeError('MALFORMED', 'a log entry is not a batch of writes');
  return decoded.map((write) => validateClientWrite(write));
}
