// EncodeError: a node never sends a message over the size limit.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createClientCodec, createPeerCodec, EncodeError, type PeerMessage } from '../src/index.js';
import { peerMessageArb } from './arbitraries.js';
import { NUM_RUNS, normalise, PROPERTY_TIMEOUT_MS, peerMessageOfSize } from './helpers.js';

function encodeErrorOf(fn: () => unknown): EncodeError {
  try {
    fn();
  } catch (error) {
    if (error instanceof EncodeError) return error;
    throw new Error(`expected an EncodeError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected an EncodeError, but encoding succeeded');
}

describe('EncodeError', () => {
  it('is thrown by the peer codec for a message one byte over a small limit, not at it', () => {
    const small = createPeerCodec({ maxMessageBytes: 64 });
    expect(small.encode(peerMessageOfSize(64).message)).toHaveLength(64);
    const error = encodeErrorOf(() => small.encode(peerMessageOfSize(65).message));
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('EncodeError');
    expect(error.code).toBe('TOO_LARGE');
    expect(error.size).toBe(65);
    expect(error.limit).toBe(64);
    expect(error.message).toBe('encoded message is 65 bytes, over the limit of 64');
  });

  it('is thrown by the default peer codec above 1 MiB, and 1 MiB exactly encodes', () => {
    const peer = createPeerCodec();
    expect(peer.encode(peerMessageOfSize(1024 * 1024).message)).toHaveLength(1024 * 1024);
    const error = encodeErrorOf(() => peer.encode(peerMessageOfSize(1024 * 1024 + 1).message));
    expect(error.size).toBe(1024 * 1024 + 1);
    expect(error.limit).toBe(1024 * 1024);
  });

  it('is thrown by the client codec in msgpack and in JSON', () => {
    const small = createClientCodec({ maxMessageBytes: 64 });
    const write = { clientId: 'c1', seq: 1, command: { op: 'put', key: 'k'.repeat(60) } };
    expect(encodeErrorOf(() => small.encodeWrite(write)).limit).toBe(64);
    expect(encodeErrorOf(() => small.encodeWrite(write, 'json')).limit).toBe(64);
    expect(encodeErrorOf(() => small.encodeRead({ command: write.command }, 'json')).limit).toBe(
      64,
    );
    const response = { ok: true as const, result: 'r'.repeat(80) };
    expect(encodeErrorOf(() => small.encodeResponse(response)).limit).toBe(64);
    expect(encodeErrorOf(() => small.encodeResponse(response, 'json')).limit).toBe(64);
    // Under the limit, both formats encode.
    expect(small.encodeResponse({ ok: true, result: 1 }, 'json').length).toBeLessThanOrEqual(64);
  });

  it('measures JSON in UTF-8 bytes, not in characters', () => {
    const small = createClientCodec({ maxMessageBytes: 64 });
    const result = 'é'.repeat(25); // 25 characters, 50 bytes
    const text = JSON.stringify({ ok: true, result });
    expect(text.length).toBeLessThanOrEqual(64);
    const error = encodeErrorOf(() => small.encodeResponse({ ok: true, result }, 'json'));
    expect(error.size).toBe(new TextEncoder().encode(text).length);
  });

  it(
    'for any message and limit: encode fits the limit and decodes back, or throws EncodeError with the true size',
    () => {
      const unlimited = createPeerCodec({ maxMessageBytes: 64 * 1024 * 1024 });
      fc.assert(
        fc.property(
          peerMessageArb,
          fc.integer({ min: 64, max: 4096 }),
          (message: PeerMessage, limit) => {
            const codec = createPeerCodec({ maxMessageBytes: limit });
            const size = unlimited.encode(message).length;
            if (size <= limit) {
              const bytes = codec.encode(message);
              expect(bytes.length).toBe(size);
              expect(normalise(codec.decode(bytes))).toStrictEqual(normalise(message));
            } else {
              const error = encodeErrorOf(() => codec.encode(message));
              expect(error.size).toBe(size);
              expect(error.limit).toBe(limit);
            }
          },
        ),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
