// Decoders are total: on any input they return a valid message or throw DecodeError,
// never another exception, and never take long. A message they accept re-encodes to itself.
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  type ClientRead,
  type ClientResponse,
  type ClientWrite,
  createClientCodec,
  createPeerCodec,
  detectFormat,
  type PeerMessage,
  type WireFormat,
} from '../src/index.js';
import {
  clientReadArb,
  clientResponseArb,
  clientWriteArb,
  mutationsArb,
  peerMessageArb,
  textMutationsArb,
} from './arbitraries.js';
import {
  decodeOutcome,
  expectNoInjectedPrototypes,
  mutate,
  mutateText,
  NUM_RUNS,
  normalise,
  PROPERTY_TIMEOUT_MS,
  utf8,
} from './helpers.js';

const peer = createPeerCodec();
const client = createClientCodec();
const options = { numRuns: NUM_RUNS };

// Writes anything msgpackr can: BigInt, Set, Date, RegExp, Error and typed-array extensions.
const anyPackr = new Packr({ useRecords: false, useBigIntExtension: true, moreTypes: true });

// A fixed message decoded after every fuzz case: bad input must not leave the decoder broken.
const reference: PeerMessage = {
  type: 'accept',
  group: 'g',
  from: 'n1',
  ballot: { round: 3, nodeId: 'n1' },
  instance: 'key',
  value: Uint8Array.of(1, 2, 3),
  commitIndex: 7,
};
const referenceBytes = peer.encode(reference);
const referenceWrite: ClientWrite = { clientId: 'c1', seq: 1, command: { op: 'put', key: 'k' } };
const referenceWriteJson = client.encodeWrite(referenceWrite, 'json');

function checkPeer(bytes: Uint8Array): void {
  const outcome = decodeOutcome(() => peer.decode(bytes));
  if (outcome.ok) {
    expectNoInjectedPrototypes(outcome.value);
    expect(normalise(peer.decode(peer.encode(outcome.value)))).toStrictEqual(
      normalise(outcome.value),
    );
  }
  expect(normalise(peer.decode(referenceBytes))).toStrictEqual(normalise(reference));
}

type AnyClient = ClientWrite | ClientRead | ClientResponse;
const clientKinds = [
  ['write', client.decodeWrite, client.encodeWrite],
  ['read', client.decodeRead, client.encodeRead],
  ['response', client.decodeResponse, client.encodeResponse],
] as unknown as readonly [
  string,
  (bytes: Uint8Array, contentType?: string) => AnyClient,
  (message: AnyClient, format?: WireFormat) => Uint8Array,
][];

const contentTypeArb = fc.constantFrom(
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'application/msgpack',
);

function checkClient(bytes: Uint8Array, contentType: string | undefined): void {
  for (const [, decode, encode] of clientKinds) {
    const outcome = decodeOutcome(() => decode(bytes, contentType));
    if (outcome.ok) {
      expectNoInjectedPrototypes(outcome.value);
      const format = detectFormat(bytes, contentType);
      const again = decode(encode(outcome.value, format), contentType);
      expect(normalise(again)).toStrictEqual(normalise(outcome.value));
    }
  }
  expect(client.decodeWrite(referenceWriteJson)).toStrictEqual(referenceWrite);
}

/** Every path to a node (object, array or leaf) of a message, bytes counted as leaves. */
function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (value instanceof Uint8Array || value === null || typeof value !== 'object') return out;
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      out.push(...pathsOf(item, [...prefix, i]));
    });
  } else {
    for (const key of Object.keys(value)) {
      out.push(...pathsOf((value as Record<string, unknown>)[key], [...prefix, key]));
    }
  }
  return out;
}

/** A copy of `root` with the node at `path` replaced (or deleted, for the marker). */
const DELETE = Symbol('delete');
function setAt(root: unknown, path: readonly (string | number)[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (Array.isArray(root)) {
    const copy = [...root];
    copy[head as number] = setAt(root[head as number], rest, replacement);
    return copy;
  }
  const copy: Record<string, unknown> = { ...(root as Record<string, unknown>) };
  const next = setAt((root as Record<string, unknown>)[head], rest, replacement);
  if (next === DELETE) delete copy[head];
  else copy[head] = next;
  return copy;
}

/** Values that stress validation: wrong types, bounds, non-plain objects, extensions. */
const hostileValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    DELETE,
    null,
    undefined,
    -1,
    -2,
    0,
    1.5,
    2 ** 53,
    -(2 ** 53),
    Number.NaN,
    Number.POSITIVE_INFINITY,
    -0,
    '',
    'x'.repeat(1025),
    'a.b',
    true,
    [],
    {},
    65_537,
    1n,
    1n << 64n,
  ),
  fc.anything({
    maxDepth: 3,
    withBigInt: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withNullPrototype: true,
    withTypedArray: true,
    withSparseArray: true,
    withUnicodeString: true,
  }),
  fc.uint8Array({ maxLength: 16 }),
);

/** A valid message with one node replaced by a hostile value. */
function withHostileField<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.tuple(arb, fc.nat(), hostileValueArb).map(([message, pick, value]) => {
    const paths = pathsOf(message);
    return setAt(message, paths[pick % paths.length] ?? [], value);
  });
}

function packOrUndefined(value: unknown): Uint8Array | undefined {
  try {
    return anyPackr.pack(value);
  } catch {
    return undefined; // not everything fast-check makes is packable; nothing to decode then
  }
}

const randomBytesArb = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.uint8Array({ maxLength: 4096 }),
  // Start with a map header so the decoder gets past the first byte more often.
  fc
    .tuple(
      fc.constantFrom(0x80, 0x81, 0x84, 0x86, 0x8f, 0xde, 0xdf),
      fc.uint8Array({ maxLength: 512 }),
    )
    .map(([head, tail]) => Uint8Array.of(head, ...tail)),
);

describe('peer codec decode is total', () => {
  it(
    'random bytes decode to a valid message or a DecodeError, never another exception or a hang',
    () => {
      fc.assert(fc.property(randomBytesArb, checkPeer), options);
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'mutated (flipped, inserted, deleted, truncated) encodings of valid messages decode or fail with DecodeError',
    () => {
      fc.assert(
        fc.property(peerMessageArb, mutationsArb, (message, mutations) => {
          checkPeer(mutate(peer.encode(message), mutations));
        }),
        options,
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'valid messages with one field replaced by a hostile value decode or fail with DecodeError',
    () => {
      fc.assert(
        fc.property(withHostileField(peerMessageArb), (doc) => {
          const bytes = packOrUndefined({ v: 1, ...(doc as object) });
          if (bytes !== undefined && bytes.length <= peer.maxMessageBytes) checkPeer(bytes);
        }),
        options,
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});

describe('client codec decode is total', () => {
  it(
    'random bytes, under any content type, decode or fail with DecodeError in decodeWrite/Read/Response',
    () => {
      fc.assert(fc.property(randomBytesArb, contentTypeArb, checkClient), options);
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'mutated msgpack and JSON encodings of valid client messages decode or fail with DecodeError',
    () => {
      const encodedArb = fc.oneof(
        clientWriteArb(true).map((m) => client.encodeWrite(m)),
        clientReadArb(true).map((m) => client.encodeRead(m)),
        clientResponseArb(true).map((m) => client.encodeResponse(m)),
        clientWriteArb(false).map((m) => client.encodeWrite(m, 'json')),
        clientReadArb(false).map((m) => client.encodeRead(m, 'json')),
        clientResponseArb(true).map((m) => client.encodeResponse(m, 'json')),
      );
      fc.assert(
        fc.property(encodedArb, mutationsArb, contentTypeArb, (bytes, mutations, contentType) => {
          checkClient(mutate(bytes, mutations), contentType);
        }),
        options,
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'text-mutated JSON of valid client messages decodes or fails with DecodeError',
    () => {
      const jsonArb = fc.oneof(
        clientWriteArb(false).map((m) => JSON.stringify(m)),
        clientReadArb(false).map((m) => JSON.stringify(m)),
        clientResponseArb(false).map((m) => JSON.stringify(m)),
      );
      fc.assert(
        fc.property(jsonArb, textMutationsArb, contentTypeArb, (json, mutations, contentType) => {
          checkClient(utf8.encode(mutateText(json, mutations)), contentType);
        }),
        options,
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'random strings and random (mutated) JSON documents decode or fail with DecodeError',
    () => {
      const textArb = fc.oneof(
        fc.json(),
        fc.json({ maxDepth: 40 }),
        fc.jsonValue().map((v) => JSON.stringify(v, null, 1)),
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.string({ maxLength: 200 }).map((s) => `{${s}`),
      );
      fc.assert(
        fc.property(
          textArb,
          fc.oneof(fc.constant([]), textMutationsArb),
          contentTypeArb,
          (text, mutations, contentType) => {
            checkClient(utf8.encode(mutateText(text, mutations)), contentType);
          },
        ),
        options,
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'valid client messages with one field replaced by a hostile value decode or fail with DecodeError, in both formats',
    () => {
      const docArb = fc.oneof(
        withHostileField(clientWriteArb(true)),
        withHostileField(clientReadArb(true)),
        withHostileField(clientResponseArb(true)),
      );
      fc.assert(
        fc.property(docArb, (doc) => {
          const bytes = packOrUndefined(doc);
          if (bytes !== undefined) checkClient(bytes, undefined);
          let json: string | undefined;
          try {
            json = JSON.stringify(doc);
          } catch {
            json = undefined; // BigInt has no JSON form
          }
          if (json !== undefined) checkClient(utf8.encode(json), 'application/json');
        }),
        options,
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
