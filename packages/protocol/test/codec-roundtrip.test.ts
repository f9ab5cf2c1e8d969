import fc from 'fast-check';
import { Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  type ClientRead,
  type ClientResponse,
  type ClientWrite,
  createClientCodec,
  createPeerCodec,
  type PeerMessage,
  PROTOCOL_VERSION,
} from '../src/index.js';
import {
  clientReadArb,
  clientResponseArb,
  clientWriteArb,
  peerMessageArb,
  peerMessageArbs,
} from './arbitraries.js';
import { NUM_RUNS, normalise, PROPERTY_TIMEOUT_MS } from './helpers.js';

const peer = createPeerCodec();
const client = createClientCodec();
// A plain msgpack reader, to look at what is on the wire.
const wire = new Unpackr({ useRecords: false, mapsAsObjects: true });

describe('peer codec round trip', () => {
  it.each(Object.entries(peerMessageArbs))(
    'decode(encode(m)) equals m for every %s message',
    (_name, arb) => {
      fc.assert(
        fc.property(arb as fc.Arbitrary<PeerMessage>, (message) => {
          const decoded = peer.decode(peer.encode(message));
          expect(normalise(decoded)).toStrictEqual(normalise(message));
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'puts every message in a {v: 1, type, group, from} envelope on the wire',
    () => {
      fc.assert(
        fc.property(peerMessageArb, (message) => {
          const doc = wire.unpack(peer.encode(message)) as Record<string, unknown>;
          expect(doc.v).toBe(PROTOCOL_VERSION);
          expect(doc.type).toBe(message.type);
          expect(doc.group).toBe(message.group);
          expect(doc.from).toBe(message.from);
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it('keeps optional fields absent: accept without commitIndex, error without leader', () => {
    const accept = peer.decode(
      peer.encode({
        type: 'accept',
        group: 'g',
        from: 'n1',
        ballot: { round: 1, nodeId: 'n1' },
        instance: 0,
        value: Uint8Array.of(1),
      }),
    );
    expect(Object.keys(accept)).not.toContain('commitIndex');
    const error = peer.decode(
      peer.encode({ type: 'error', group: 'g', from: 'n1', code: 'NOT_LEADER', message: '' }),
    );
    expect(Object.keys(error)).not.toContain('leader');
    expect(error).toStrictEqual({
      type: 'error',
      group: 'g',
      from: 'n1',
      code: 'NOT_LEADER',
      message: '',
    });
  });

  it('returns byte values with the same contents as were sent', () => {
    const value = Uint8Array.from({ length: 300 }, (_, i) => i % 256);
    const decoded = peer.decode(
      peer.encode({
        type: 'decide',
        group: 'g',
        from: 'n1',
        instance: 'key',
        ballot: { round: 2, nodeId: 'n1' },
        value,
      }),
    );
    expect(decoded.type).toBe('decide');
    if (decoded.type !== 'decide') return;
    expect(decoded.value).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(decoded.value).equals(Buffer.from(value))).toBe(true);
  });
});

describe('client codec round trip', () => {
  const cases = [
    ['write', clientWriteArb, client.encodeWrite, client.decodeWrite],
    ['read', clientReadArb, client.encodeRead, client.decodeRead],
    ['response', clientResponseArb, client.encodeResponse, client.decodeResponse],
  ] as const;

  for (const [name, arbOf, encode, decode] of cases) {
    const run = <T>(
      arb: fc.Arbitrary<T>,
      enc: (m: T, f?: 'msgpack' | 'json') => Uint8Array,
      dec: (b: Uint8Array, contentType?: string) => T,
      format: 'msgpack' | 'json',
    ) => {
      const contentType = format === 'json' ? 'application/json' : 'application/msgpack';
      fc.assert(
        fc.property(arb, (message) => {
          const bytes = enc(message, format);
          // Sniffed from the bytes, and told by the content type: the same message.
          expect(normalise(dec(bytes))).toStrictEqual(normalise(message));
          expect(normalise(dec(bytes, contentType))).toStrictEqual(normalise(message));
        }),
        { numRuns: NUM_RUNS },
      );
    };

    it(
      `decode(encode(m)) equals m for every client ${name} in msgpack (byte strings included)`,
      () => {
        run(
          arbOf(true) as fc.Arbitrary<ClientWrite | ClientRead | ClientResponse>,
          encode as (m: unknown, f?: 'msgpack' | 'json') => Uint8Array,
          decode as (b: Uint8Array, c?: string) => ClientWrite | ClientRead | ClientResponse,
          'msgpack',
        );
      },
      PROPERTY_TIMEOUT_MS,
    );

    it(
      `decode(encode(m, 'json')) equals m for every JSON-representable client ${name}`,
      () => {
        run(
          arbOf(false) as fc.Arbitrary<ClientWrite | ClientRead | ClientResponse>,
          encode as (m: unknown, f?: 'msgpack' | 'json') => Uint8Array,
          decode as (b: Uint8Array, c?: string) => ClientWrite | ClientRead | ClientResponse,
          'json',
        );
      },
      PROPERTY_TIMEOUT_MS,
    );
  }

  it('encodes msgpack when no format is given', () => {
    const bytes = client.encodeWrite({ clientId: 'c1', seq: 1, command: { op: 'get', key: 'k' } });
    expect(bytes[0]).not.toBe(0x7b); // not '{'
    expect(wire.unpack(bytes)).toStrictEqual({
      clientId: 'c1',
      seq: 1,
      command: { op: 'get', key: 'k' },
    });
  });

  it('decodes a response without result as ok with result null', () => {
    expect(client.decodeResponse(new TextEncoder().encode('{"ok":true}'))).toStrictEqual({
      ok: true,
      result: null,
    });
  });
});
