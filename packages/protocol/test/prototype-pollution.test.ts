// No input can pollute a prototype: "__proto__", "constructor" and "prototype" keys at any
// level are dropped (outside plain data) or rejected (inside it), never followed.
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ClientRead,
  type ClientResponse,
  type ClientWrite,
  createClientCodec,
  createPeerCodec,
  DecodeError,
  type PeerMessage,
} from '../src/index.js';
import { clientReadArb, clientResponseArb, clientWriteArb, peerMessageArb } from './arbitraries.js';
import {
  decodeOutcome,
  expectGlobalsUnpolluted,
  expectNoInjectedPrototypes,
  FORBIDDEN_KEYS,
  NUM_RUNS,
  normalise,
  PROPERTY_TIMEOUT_MS,
  prototypeSnapshot,
  utf8,
} from './helpers.js';

const before = prototypeSnapshot();
afterEach(() => {
  expectGlobalsUnpolluted(before);
});

// A plain msgpack writer: writes own "__proto__" keys as ordinary map keys.
const raw = new Packr({ useRecords: false });
const peer = createPeerCodec();
const client = createClientCodec();

type Kind = 'write' | 'read' | 'response';
const decoders: Record<Kind, (bytes: Uint8Array, contentType?: string) => unknown> = {
  write: client.decodeWrite,
  read: client.decodeRead,
  response: client.decodeResponse,
};

/** msgpack of a JSON text, keeping "__proto__" as an own key (JSON.parse makes it one). */
function packJson(text: string): Uint8Array {
  const bytes = raw.pack(JSON.parse(text));
  for (const key of FORBIDDEN_KEYS) {
    if (text.includes(`"${key}"`)) expect(Buffer.from(bytes).includes(key)).toBe(true);
  }
  return bytes;
}

function expectInvalidAt(decode: () => unknown, path: string): void {
  const outcome = decodeOutcome(decode);
  expect(outcome.ok, `expected INVALID_FIELD at ${path}`).toBe(false);
  if (outcome.ok) return;
  expect(outcome.error.code).toBe('INVALID_FIELD');
  expect(outcome.error.path).toBe(path);
}

const W = '"clientId":"c1","seq":7';

type Expect =
  | { readonly equals: unknown }
  | { readonly invalidAt: string; readonly msgpack?: 'safe' };

/**
 * Hostile client documents and what must come of them. In msgpack, msgpackr itself renames
 * a "__proto__" key to "__proto_", so inside plain data that case is only required to be safe.
 */
const clientCases: readonly (readonly [Kind, string, Expect])[] = [
  [
    'write',
    `{"__proto__":{"polluted":1},${W},"command":{"op":"put","key":"k","value":"v"}}`,
    { equals: { clientId: 'c1', seq: 7, command: { op: 'put', key: 'k', value: 'v' } } },
  ],
  [
    'write',
    `{"constructor":{"prototype":{"polluted":1}},${W},"command":{"op":"put"}}`,
    { equals: { clientId: 'c1', seq: 7, command: { op: 'put' } } },
  ],
  [
    'write',
    `{"prototype":{"polluted":1},${W},"command":{"op":"put"}}`,
    { equals: { clientId: 'c1', seq: 7, command: { op: 'put' } } },
  ],
  [
    'write',
    '{"__proto__":{"clientId":"c1","seq":7,"command":{"op":"put"}}}',
    { invalidAt: 'clientId' },
  ],
  [
    'write',
    `{${W},"command":{"op":"put","__proto__":{"polluted":1}}}`,
    { invalidAt: 'command.__proto__', msgpack: 'safe' },
  ],
  [
    'write',
    `{${W},"command":{"op":"put","constructor":{"prototype":{"polluted":1}}}}`,
    { invalidAt: 'command.constructor' },
  ],
  [
    'write',
    `{${W},"command":{"op":"put","prototype":{"polluted":1}}}`,
    { invalidAt: 'command.prototype' },
  ],
  [
    'write',
    `{${W},"command":{"op":"put","value":{"a":[{"__proto__":{"polluted":1}}]}}}`,
    { invalidAt: 'command.value.a[0].__proto__', msgpack: 'safe' },
  ],
  [
    'write',
    `{${W},"command":{"op":"put","value":{"a":[{"constructor":{"prototype":{"polluted":1}}}]}}}`,
    { invalidAt: 'command.value.a[0].constructor' },
  ],
  ['read', '{"command":{"__proto__":{"op":"get"}}}', { invalidAt: 'command.op' }],
  [
    'read',
    '{"command":{"op":"get"},"__proto__":{"consistency":"strong"}}',
    { equals: { command: { op: 'get' } } },
  ],
  [
    'read',
    '{"command":{"op":"get","key":{"__proto__":{"polluted":1}}}}',
    { invalidAt: 'command.key.__proto__', msgpack: 'safe' },
  ],
  [
    'response',
    '{"ok":true,"result":{"__proto__":{"polluted":1}}}',
    { invalidAt: 'result.__proto__', msgpack: 'safe' },
  ],
  ['response', '{"ok":true,"result":[{"constructor":1}]}', { invalidAt: 'result[0].constructor' }],
  [
    'response',
    '{"ok":true,"result":{"x":{"prototype":{"polluted":1}}}}',
    { invalidAt: 'result.x.prototype' },
  ],
  [
    'response',
    '{"ok":true,"__proto__":{"slot":5},"result":1}',
    { equals: { ok: true, result: 1 } },
  ],
  [
    'response',
    '{"__proto__":{"ok":true},"ok":false,"error":{"code":"TIMEOUT","message":"m"}}',
    { equals: { ok: false, error: { code: 'TIMEOUT', message: 'm' } } },
  ],
  [
    'response',
    '{"ok":false,"error":{"code":"TIMEOUT","message":"m","__proto__":{"leader":"n2"}}}',
    { equals: { ok: false, error: { code: 'TIMEOUT', message: 'm' } } },
  ],
  [
    'response',
    '{"ok":false,"error":{"__proto__":{"code":"TIMEOUT","message":"m"}}}',
    { invalidAt: 'error.code' },
  ],
  [
    'response',
    '{"ok":false,"error":{"code":"TIMEOUT","message":"m","constructor":{"prototype":{"polluted":1}}}}',
    { equals: { ok: false, error: { code: 'TIMEOUT', message: 'm' } } },
  ],
];

describe('hostile client documents', () => {
  it.each(clientCases)(
    'JSON %s %s: dropped or rejected, never followed',
    (kind, text, expected) => {
      const decode = () => decoders[kind](utf8.encode(text), 'application/json');
      if ('equals' in expected) {
        const outcome = decodeOutcome(decode);
        expect(outcome.ok).toBe(true);
        if (outcome.ok) {
          expect(outcome.value).toStrictEqual(expected.equals);
          expectNoInjectedPrototypes(outcome.value);
        }
      } else {
        expectInvalidAt(decode, expected.invalidAt);
      }
    },
  );

  it.each(clientCases)(
    'msgpack %s %s: dropped or rejected, never followed',
    (kind, text, expected) => {
      const bytes = packJson(text);
      const decode = () => decoders[kind](bytes);
      if ('equals' in expected) {
        const outcome = decodeOutcome(decode);
        expect(outcome.ok).toBe(true);
        if (outcome.ok) {
          expect(outcome.value).toStrictEqual(expected.equals);
          expectNoInjectedPrototypes(outcome.value);
        }
      } else if (expected.msgpack === 'safe') {
        const outcome = decodeOutcome(decode);
        if (outcome.ok) expectNoInjectedPrototypes(outcome.value);
      } else {
        expectInvalidAt(decode, expected.invalidAt);
      }
    },
  );
});

describe('hostile peer documents', () => {
  const B = { round: 1, nodeId: 'n1' };
  const env = { v: 1, group: 'g', from: 'n1' };
  const promise = {
    ...env,
    type: 'promise',
    ballot: B,
    ok: false,
    promised: { round: 2, nodeId: 'n2' },
    accepted: [{ instance: 'k', ballot: B, value: Uint8Array.of(9) }],
    more: true,
  };
  const catchup = {
    ...env,
    type: 'catchupResponse',
    entries: [{ slot: 4, value: Uint8Array.of(1) }],
    commitIndex: 4,
  };
  const error = { ...env, type: 'error', code: 'NOT_LEADER', message: 'm' };

  /** A deep copy of `doc` with an own `key` added to the object at `path`. */
  function inject(
    doc: unknown,
    path: readonly (string | number)[],
    key: string,
    value: unknown,
  ): unknown {
    if (path.length === 0) {
      const copy = { ...(doc as object) };
      Object.defineProperty(copy, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      return copy;
    }
    const [head, ...rest] = path as [string | number, ...(string | number)[]];
    if (Array.isArray(doc))
      return doc.map((item, i) => (i === head ? inject(item, rest, key, value) : item));
    return {
      ...(doc as object),
      [head]: inject((doc as Record<string, unknown>)[head], rest, key, value),
    };
  }

  const levels: readonly (readonly [string, object, readonly (string | number)[]])[] = [
    ['the envelope', promise, []],
    ['a ballot', promise, ['ballot']],
    ['the promised ballot', promise, ['promised']],
    ['an accepted entry', promise, ['accepted', 0]],
    ["an accepted entry's ballot", promise, ['accepted', 0, 'ballot']],
    ['a chosen entry', catchup, ['entries', 0]],
    ['an error body', error, []],
  ];
  const hostileValues: readonly unknown[] = [
    { polluted: 1 },
    { prototype: { polluted: 1 } },
    { ballot: { round: 99, nodeId: 'evil' }, ok: true, slot: 1, value: Uint8Array.of(6) },
    null,
    'x',
  ];

  for (const key of FORBIDDEN_KEYS) {
    it.each(levels)(
      `a "${key}" key in %s is dropped: the message decodes as without it`,
      (_level, doc, path) => {
        const clean = peer.decode(raw.pack(doc));
        for (const value of hostileValues) {
          const bytes = raw.pack(inject(doc, path, key, value));
          expect(Buffer.from(bytes).includes(key)).toBe(true); // the key really is on the wire
          const outcome = decodeOutcome(() => peer.decode(bytes));
          expect(outcome.ok).toBe(true);
          if (!outcome.ok) continue;
          expect(normalise(outcome.value)).toStrictEqual(normalise(clean));
          expectNoInjectedPrototypes(outcome.value);
        }
      },
    );
  }

  it('never takes a field from an injected prototype', () => {
    const { ballot: _ballot, ...withoutBallot } = promise;
    const bytes = raw.pack(inject(withoutBallot, [], '__proto__', { ballot: B }));
    const outcome = decodeOutcome(() => peer.decode(bytes));
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) expect(outcome.error.path).toBe('ballot');
  });
});

// ---------------------------------------------------------------------------------------
// The same, as a property: one forbidden key injected anywhere in any valid message.

type Path = readonly (string | number)[];

/** Paths of every object (not array, not bytes) inside a message, the root included. */
function objectPaths(value: unknown, prefix: Path = []): Path[] {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return [];
  if (Array.isArray(value)) return value.flatMap((item, i) => objectPaths(item, [...prefix, i]));
  const own = Object.keys(value).flatMap((key) =>
    objectPaths((value as Record<string, unknown>)[key], [...prefix, key]),
  );
  return [prefix, ...own];
}

function injectAt(doc: unknown, path: Path, key: string, value: unknown): unknown {
  if (path.length === 0) {
    const copy = { ...(doc as object) };
    Object.defineProperty(copy, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    return copy;
  }
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (Array.isArray(doc))
    return doc.map((item, i) => (i === head ? injectAt(item, rest, key, value) : item));
  return {
    ...(doc as object),
    [head]: injectAt((doc as Record<string, unknown>)[head], rest, key, value),
  };
}

/** The DecodeError path of `key` under `path`, spelled as the decoder spells paths. */
function pathText(path: Path, key: string): string {
  let out = '';
  for (const part of [...path, key]) {
    out = typeof part === 'number' ? `${out}[${part}]` : out === '' ? part : `${out}.${part}`;
  }
  return out;
}

const pollutingValueArb: fc.Arbitrary<unknown> = fc.constantFrom<unknown>(
  { polluted: 1 },
  { polluted: { deep: true } },
  { prototype: { polluted: 1 } },
  { constructor: { prototype: { polluted: 1 } } },
  null,
  [],
  'polluted',
  1,
);

const injectionArb = fc.record({
  pick: fc.nat(),
  key: fc.constantFrom(...FORBIDDEN_KEYS),
  value: pollutingValueArb,
});

describe('injected prototype keys, as a property', () => {
  it(
    'a forbidden key anywhere in a peer message is dropped, and nothing is polluted',
    () => {
      fc.assert(
        fc.property(peerMessageArb, injectionArb, (message: PeerMessage, { pick, key, value }) => {
          const paths = objectPaths(message);
          const path = paths[pick % paths.length] ?? [];
          const bytes = raw.pack({ v: 1, ...(injectAt(message, path, key, value) as object) });
          const outcome = decodeOutcome(() => peer.decode(bytes));
          expect(outcome.ok).toBe(true);
          if (outcome.ok) {
            expect(normalise(outcome.value)).toStrictEqual(normalise(message));
            expectNoInjectedPrototypes(outcome.value);
          }
          expectGlobalsUnpolluted(before);
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  const clientArbs = (bytes: boolean) =>
    fc.oneof(
      clientWriteArb(bytes).map((m) => ['write', m] as const),
      clientReadArb(bytes).map((m) => ['read', m] as const),
      clientResponseArb(bytes).map((m) => ['response', m] as const),
    );

  /** Checks one decode of a client message carrying an injected key at `path`. */
  function checkClientInjection(
    decode: () => unknown,
    message: ClientWrite | ClientRead | ClientResponse,
    path: Path,
    key: string,
    format: 'json' | 'msgpack',
  ): void {
    const inPlainData = path[0] === 'command' || path[0] === 'result';
    const outcome = decodeOutcome(decode);
    if (!inPlainData) {
      // Outside plain data, unknown keys are dropped: the message decodes as without it.
      expect(outcome.ok).toBe(true);
      if (outcome.ok) expect(normalise(outcome.value)).toStrictEqual(normalise(message));
    } else if (format === 'json' || key !== '__proto__') {
      // Inside plain data, the key is rejected, at its path.
      expect(outcome.ok).toBe(false);
      if (!outcome.ok) {
        expect(outcome.error).toBeInstanceOf(DecodeError);
        expect(outcome.error.code).toBe('INVALID_FIELD');
        expect(outcome.error.path).toBe(pathText(path, key));
      }
    }
    if (outcome.ok) expectNoInjectedPrototypes(outcome.value);
    expectGlobalsUnpolluted(before);
  }

  it(
    'a forbidden key anywhere in a JSON client message is dropped outside plain data and rejected inside it',
    () => {
      fc.assert(
        fc.property(clientArbs(false), injectionArb, ([kind, message], { pick, key, value }) => {
          const paths = objectPaths(message);
          const path = paths[pick % paths.length] ?? [];
          const text = JSON.stringify(injectAt(message, path, key, value));
          expect(text).toContain(`"${key}":`);
          checkClientInjection(
            () => decoders[kind](utf8.encode(text), 'application/json'),
            message,
            path,
            key,
            'json',
          );
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'a forbidden key anywhere in a msgpack client message is dropped outside plain data and rejected or neutralised inside it',
    () => {
      fc.assert(
        fc.property(clientArbs(true), injectionArb, ([kind, message], { pick, key, value }) => {
          const paths = objectPaths(message);
          const path = paths[pick % paths.length] ?? [];
          const bytes = raw.pack(injectAt(message, path, key, value));
          checkClientInjection(() => decoders[kind](bytes), message, path, key, 'msgpack');
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
