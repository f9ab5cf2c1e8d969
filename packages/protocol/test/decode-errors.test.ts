// Every DecodeError code, and that its path and message say what was wrong.
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  createClientCodec,
  createPeerCodec,
  DecodeError,
  type DecodeErrorCode,
  LIMITS,
} from '../src/index.js';
import { decodeErrorOf, HANG_MS, peerMessageOfSize, utf8 } from './helpers.js';

// Raw msgpack, bypassing the codec's encoder, so tests can send anything.
const raw = new Packr({ useRecords: false, useBigIntExtension: true });
const pack = (doc: unknown): Uint8Array => raw.pack(doc);
const json = (text: string): Uint8Array => utf8.encode(text);
// Also writes Set, RegExp, Error and typed arrays as msgpackr extensions.
const packMoreTypes = new Packr({ useRecords: false, useBigIntExtension: true, moreTypes: true });

const peer = createPeerCodec();
const client = createClientCodec();

const B = { round: 1, nodeId: 'n1' };
const env = { v: 1, group: 'g', from: 'n1' };
const heartbeat = { ...env, type: 'heartbeat', ballot: B, commitIndex: 0 };

function expectDecodeError(
  error: DecodeError,
  code: DecodeErrorCode,
  path: string,
  fragment: string | RegExp,
): void {
  expect(error).toBeInstanceOf(DecodeError);
  expect(error).toBeInstanceOf(Error);
  expect(error.name).toBe('DecodeError');
  expect(error.code).toBe(code);
  expect(error.path).toBe(path);
  if (path !== '') expect(error.message.startsWith(`${path}: `)).toBe(true);
  if (typeof fragment === 'string') expect(error.message).toContain(fragment);
  else expect(error.message).toMatch(fragment);
}

describe('TOO_LARGE', () => {
  it('is raised above a custom small maxMessageBytes, before any parsing', () => {
    const small = createPeerCodec({ maxMessageBytes: 64 });
    expect(small.maxMessageBytes).toBe(64);
    const exact = peerMessageOfSize(64).bytes;
    expect(small.decode(exact).from).toBe('n1'); // at the limit: fine
    const over = peerMessageOfSize(65).bytes;
    expectDecodeError(
      decodeErrorOf(() => small.decode(over)),
      'TOO_LARGE',
      '',
      'message is 65 bytes, over the limit of 64',
    );
    // Garbage over the limit is TOO_LARGE, not MALFORMED: size is checked first.
    expect(decodeErrorOf(() => small.decode(new Uint8Array(65).fill(0xc1))).code).toBe('TOO_LARGE');
  });

  it('is raised above the 1 MiB default, and a message of exactly 1 MiB decodes', () => {
    expect(LIMITS.maxMessageBytes).toBe(1024 * 1024);
    expect(peer.maxMessageBytes).toBe(1024 * 1024);
    expect(client.maxMessageBytes).toBe(1024 * 1024);
    expect(peer.decode(peerMessageOfSize(1024 * 1024).bytes).type).toBe('decide');
    expectDecodeError(
      decodeErrorOf(() => peer.decode(peerMessageOfSize(1024 * 1024 + 1).bytes)),
      'TOO_LARGE',
      '',
      `message is ${1024 * 1024 + 1} bytes, over the limit of ${1024 * 1024}`,
    );
    // A 1 MiB buffer of zeros is in size; it is 1,048,576 msgpack documents, so MALFORMED.
    expect(decodeErrorOf(() => peer.decode(new Uint8Array(1024 * 1024))).code).toBe('MALFORMED');
  });

  it('is raised by the client codec for JSON and msgpack alike', () => {
    const small = createClientCodec({ maxMessageBytes: 64 });
    const text = `{"clientId":"c1","seq":7,"command":{"op":"put","key":"${'k'.repeat(40)}"}}`;
    expect(text.length).toBeGreaterThan(64);
    expectDecodeError(
      decodeErrorOf(() => small.decodeWrite(json(text))),
      'TOO_LARGE',
      '',
      'over the limit of 64',
    );
    const packed = pack({ clientId: 'c1', seq: 7, command: { op: 'put', key: 'k'.repeat(60) } });
    expectDecodeError(
      decodeErrorOf(() => small.decodeWrite(packed)),
      'TOO_LARGE',
      '',
      'over the limit of 64',
    );
    expect(
      decodeErrorOf(() => small.decodeResponse(json(`{"ok":true,"result":"${'r'.repeat(80)}"}`)))
        .code,
    ).toBe('TOO_LARGE');
  });

  it.each([63, 0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])(
    'a limit of %s is refused with RangeError by both codecs (it would disable the bound)',
    (maxMessageBytes) => {
      expect(() => createPeerCodec({ maxMessageBytes })).toThrow(RangeError);
      expect(() => createClientCodec({ maxMessageBytes })).toThrow(RangeError);
    },
  );
});

describe('MALFORMED', () => {
  it('is raised for an empty message', () => {
    expectDecodeError(
      decodeErrorOf(() => peer.decode(new Uint8Array(0))),
      'MALFORMED',
      '',
      'empty message',
    );
    expect(decodeErrorOf(() => client.decodeWrite(new Uint8Array(0))).code).toBe('MALFORMED');
    expect(
      decodeErrorOf(() => client.decodeWrite(new Uint8Array(0), 'application/json')).code,
    ).toBe('MALFORMED');
  });

  it.each([
    ['a truncated str8', [0xd9, 0xff, 0x41]],
    ['a truncated map', [0x83, 0xa1, 0x76]],
    ['a truncated array32', [0xdd, 0xff, 0xff, 0xff, 0xff]],
    ['a truncated fixext', [0xd4, 0x72]],
    ['an unknown typed-array extension', [0xd5, 0x74, 0x63, 0x00]],
  ])('is raised for garbage bytes (%s), keeping the library error as cause', (_name, bytes) => {
    const error = decodeErrorOf(() => peer.decode(Uint8Array.from(bytes)));
    expectDecodeError(error, 'MALFORMED', '', 'not a msgpack document');
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('is raised for trailing bytes after one valid message', () => {
    const valid = pack(heartbeat);
    expect(peer.decode(valid).type).toBe('heartbeat');
    const trailing = new Uint8Array([...valid, 0x00]);
    expectDecodeError(
      decodeErrorOf(() => peer.decode(trailing)),
      'MALFORMED',
      '',
      'expected one msgpack document, found 2',
    );
    const twice = new Uint8Array([...valid, ...valid]);
    expectDecodeError(
      decodeErrorOf(() => peer.decode(twice)),
      'MALFORMED',
      '',
      'found 2',
    );
  });

  it('is raised for every strict prefix of a valid message', () => {
    const valid = pack(heartbeat);
    for (let n = 1; n < valid.length; n++) {
      const error = decodeErrorOf(() => peer.decode(valid.subarray(0, n)));
      expect(['MALFORMED', 'INVALID_FIELD']).toContain(error.code);
    }
  });

  it('is raised for input that is not a Uint8Array', () => {
    for (const input of ['{"v":1}', [1, 2], null, undefined, new ArrayBuffer(4)]) {
      expectDecodeError(
        decodeErrorOf(() => peer.decode(input as unknown as Uint8Array)),
        'MALFORMED',
        '',
        'expected bytes',
      );
    }
  });

  it('is raised, at once, for msgpack structured-clone references (no exponential expansion)', () => {
    // With structured-clone ids and pointers, ~450 bytes describe a DAG with 2^31 leaves.
    const cloning = new Packr({ useRecords: false, structuredClone: true });
    let dag: unknown = [0];
    for (let i = 0; i < 31; i++) dag = [dag, dag];
    const bytes = cloning.pack({ clientId: 'c1', seq: 1, command: { op: 'put', value: dag } });
    expect(bytes.length).toBeLessThan(1024);
    const start = performance.now();
    const error = decodeErrorOf(() => client.decodeWrite(bytes));
    expect(performance.now() - start).toBeLessThan(HANG_MS);
    expectDecodeError(error, 'MALFORMED', '', 'not a msgpack document');
    // The same for a cycle, in a peer message.
    const cycle: Record<string, unknown> = { round: 1, nodeId: 'n1' };
    cycle.self = cycle;
    const cyclic = cloning.pack({ ...heartbeat, ballot: cycle });
    expect(decodeErrorOf(() => peer.decode(cyclic)).code).toBe('MALFORMED');
  });

  it.each([
    ['unterminated JSON', '{"clientId":"c1",'],
    ['JSON with trailing garbage', '{"clientId":"c1"} x'],
    ['two JSON documents', '{}{}'],
    ['JSON with a trailing comma', '{"a":1,}'],
  ])('is raised for %s', (_name, text) => {
    const error = decodeErrorOf(() => client.decodeWrite(json(text)));
    expectDecodeError(error, 'MALFORMED', '', 'not a JSON document');
  });

  it('is raised for invalid UTF-8 sent as JSON', () => {
    const bytes = Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]); // {"\xff\xfe":1}
    expectDecodeError(
      decodeErrorOf(() => client.decodeWrite(bytes)),
      'MALFORMED',
      '',
      'not a JSON document',
    );
    expect(decodeErrorOf(() => client.decodeRead(bytes, 'application/json')).code).toBe(
      'MALFORMED',
    );
  });
});

describe('VERSION', () => {
  it.each([
    ['2', 2, 'unsupported protocol version 2;'],
    ['0', 0, 'unsupported protocol version 0;'],
    ['the string "1"', '1', 'unsupported protocol version "1";'],
    ['1.5', 1.5, 'unsupported protocol version 1.5;'],
    ['null', null, 'unsupported protocol version null;'],
    ['a 64-bit integer (BigInt)', 1n, 'unsupported protocol version 1n;'],
    ['a huge BigInt', 1n << 100n, 'unsupported protocol version'],
  ])('is raised for v = %s, at path v', (_name, v, fragment) => {
    const error = decodeErrorOf(() => peer.decode(pack({ ...heartbeat, v })));
    expectDecodeError(error, 'VERSION', 'v', fragment);
    expect(error.message).toContain('this build speaks 1');
  });

  it('is raised when v is missing', () => {
    const { v: _v, ...unversioned } = heartbeat;
    expectDecodeError(
      decodeErrorOf(() => peer.decode(pack(unversioned))),
      'VERSION',
      'v',
      'unsupported protocol version undefined',
    );
  });

  it('is checked before the type and the fields', () => {
    expect(decodeErrorOf(() => peer.decode(pack({ v: 2, type: 'bogus' }))).code).toBe('VERSION');
  });
});

describe('UNKNOWN_TYPE', () => {
  it.each([
    ['"bogus"', 'bogus', 'unknown message type "bogus"'],
    ['"Prepare" (case matters)', 'Prepare', 'unknown message type "Prepare"'],
    ['"constructor" (an Object.prototype name)', 'constructor', '"constructor"'],
    ['"toString"', 'toString', '"toString"'],
    ['"__proto__"', '__proto__', '"__proto__"'],
    ['"hasOwnProperty"', 'hasOwnProperty', '"hasOwnProperty"'],
    ['7', 7, 'unknown message type 7'],
    ['a BigInt', 7n, 'unknown message type 7n'],
    ['an object', { prepare: true }, 'unknown message type {"prepare":true}'],
  ])('is raised for type %s, at path type', (_name, type, fragment) => {
    const error = decodeErrorOf(() => peer.decode(pack({ ...heartbeat, type })));
    expectDecodeError(error, 'UNKNOWN_TYPE', 'type', fragment);
  });

  it('is raised when type is missing, before the envelope fields are checked', () => {
    expectDecodeError(
      decodeErrorOf(() => peer.decode(pack({ v: 1, group: 'bad.group' }))),
      'UNKNOWN_TYPE',
      'type',
      'unknown message type undefined',
    );
  });
});

describe('INVALID_FIELD in peer messages', () => {
  const at = (doc: Record<string, unknown>, path: string, fragment: string | RegExp) =>
    [path, doc, fragment] as const;
  const prepare = { ...env, type: 'prepare', ballot: B, instance: 1 };
  const promise = {
    ...env,
    type: 'promise',
    ballot: B,
    ok: true,
    promised: B,
    accepted: [{ instance: 1, ballot: B, value: Uint8Array.of(1) }],
    more: false,
  };
  const accept = { ...env, type: 'accept', ballot: B, instance: 1, value: Uint8Array.of(1) };
  const catchupRequest = { ...env, type: 'catchupRequest', fromSlot: 0, maxEntries: 10 };
  const catchupResponse = {
    ...env,
    type: 'catchupResponse',
    entries: [
      { slot: 0, value: Uint8Array.of(1) },
      { slot: 1, value: Uint8Array.of(2) },
    ],
    commitIndex: 1,
  };
  const error = { ...env, type: 'error', code: 'NOT_LEADER', message: 'not me', leader: 'n2' };

  it.each([
    at(
      { ...heartbeat, ballot: { round: -1, nodeId: 'n1' } },
      'ballot.round',
      'must be between 0 and',
    ),
    at(
      { ...heartbeat, ballot: { round: 1.5, nodeId: 'n1' } },
      'ballot.round',
      'expected an integer, got number',
    ),
    at(
      { ...heartbeat, ballot: { round: '1', nodeId: 'n1' } },
      'ballot.round',
      'expected an integer, got string',
    ),
    at(
      { ...heartbeat, ballot: { round: 2 ** 53, nodeId: 'n1' } },
      'ballot.round',
      'expected an integer',
    ),
    // Safe, but past MAX_ROUND: a round no proposer could ever top.
    at(
      { ...heartbeat, ballot: { round: 2 ** 53 - 1, nodeId: 'n1' } },
      'ballot.round',
      'must be between 0 and 281474976710656',
    ),
    at(
      {
        ...env,
        type: 'promise',
        ballot: B,
        ok: false,
        promised: { round: 2 ** 48 + 1, nodeId: 'n2' },
        accepted: [],
        more: false,
      },
      'promised.round',
      'must be between 0 and',
    ),
    at(
      { ...heartbeat, ballot: { round: 1n << 60n, nodeId: 'n1' } },
      'ballot.round',
      'expected an integer, got bigint',
    ),
    at(
      { ...heartbeat, ballot: { nodeId: 'n1' } },
      'ballot.round',
      'expected an integer, got undefined',
    ),
    at({ ...heartbeat, ballot: { round: 1, nodeId: '' } }, 'ballot.nodeId', 'must not be empty'),
    at(
      { ...heartbeat, ballot: { round: 1, nodeId: 'n.1' } },
      'ballot.nodeId',
      "only letters, digits, '-' and '_'",
    ),
    at({ ...heartbeat, ballot: { round: 0, nodeId: 5 } }, 'ballot.nodeId', 'must be a string'),
    at({ ...heartbeat, ballot: [1, 'n1'] }, 'ballot', 'expected an object, got array'),
    at({ ...heartbeat, ballot: undefined }, 'ballot', 'expected an object, got undefined'),
    at({ ...heartbeat, group: 'a.b' }, 'group', "only letters, digits, '-' and '_'"),
    at({ ...heartbeat, group: 'x'.repeat(65) }, 'group', 'at most 64 characters'),
    at({ ...heartbeat, from: undefined }, 'from', 'must be a string'),
    at({ ...heartbeat, commitIndex: -2 }, 'commitIndex', 'must be between -1 and'),
    at({ ...prepare, instance: '' }, 'instance', 'must be at least 1 characters'),
    at({ ...prepare, instance: 'k'.repeat(1025) }, 'instance', 'must be at most 1024 characters'),
    at({ ...prepare, instance: -1 }, 'instance', 'must be between 0 and'),
    at(
      { ...prepare, instance: true },
      'instance',
      'expected a slot (integer) or a key (string), got boolean',
    ),
    at({ ...prepare, instance: Uint8Array.of(1) }, 'instance', 'got bytes'),
    at({ ...promise, ok: 'yes' }, 'ok', 'expected a boolean, got string'),
    at({ ...promise, more: undefined }, 'more', 'expected a boolean, got undefined'),
    at({ ...promise, accepted: 'none' }, 'accepted', 'expected an array, got string'),
    at(
      {
        ...promise,
        accepted: [{ instance: 1, ballot: { round: -1, nodeId: 'n1' }, value: Uint8Array.of(1) }],
      },
      'accepted[0].ballot.round',
      'must be between 0',
    ),
    at(
      { ...promise, accepted: [promise.accepted[0], null] },
      'accepted[1]',
      'expected an object, got null',
    ),
    at(
      { ...promise, accepted: [{ instance: 1, ballot: B, value: 'v' }] },
      'accepted[0].value',
      'expected bytes, got string',
    ),
    at(
      { ...promise, accepted: new Array(LIMITS.maxEntries + 1).fill(null) },
      'accepted',
      'must have at most 65536 elements',
    ),
    at({ ...accept, value: [1, 2] }, 'value', 'expected bytes, got array'),
    at({ ...accept, commitIndex: -2 }, 'commitIndex', 'must be between -1'),
    at({ ...accept, commitIndex: null }, 'commitIndex', 'expected an integer, got null'),
    at({ ...catchupRequest, maxEntries: 0 }, 'maxEntries', 'must be between 1 and 65536, got 0'),
    at(
      { ...catchupRequest, maxEntries: LIMITS.maxEntries + 1 },
      'maxEntries',
      'must be between 1 and 65536, got 65537',
    ),
    at({ ...catchupRequest, fromSlot: -1 }, 'fromSlot', 'must be between 0'),
    at(
      { ...catchupResponse, entries: [catchupResponse.entries[0], { slot: 1 }] },
      'entries[1].value',
      'expected bytes, got undefined',
    ),
    at(
      { ...catchupResponse, entries: [{ slot: -1, value: Uint8Array.of(1) }] },
      'entries[0].slot',
      'must be between 0',
    ),
    at({ ...catchupResponse, commitIndex: '1' }, 'commitIndex', 'expected an integer, got string'),
    at(
      { ...env, type: 'highestAcceptedAnswer', requestId: 1, slot: -2 },
      'slot',
      'must be between -1',
    ),
    at(
      { ...env, type: 'readIndexCheck', ballot: { round: 1, nodeId: 'a' }, requestId: -1 },
      'requestId',
      'must be between 0',
    ),
    at(
      {
        ...env,
        type: 'readIndexAnswer',
        ballot: { round: 1, nodeId: 'a' },
        requestId: 1,
        promised: { round: 1 },
      },
      'promised.nodeId',
      'must be a string',
    ),
    at({ ...error, code: 'NOPE' }, 'code', 'expected one of NO_QUORUM, NOT_LEADER'),
    at(
      { ...error, message: 'm'.repeat(LIMITS.maxErrorMessageLength + 1) },
      'message',
      'must be at most 8192 characters',
    ),
    at({ ...error, message: 5 }, 'message', 'expected a string, got number'),
    at({ ...error, leader: 'n.2' }, 'leader', "only letters, digits, '-' and '_'"),
    at({ ...error, leader: null }, 'leader', 'must be a string'),
  ])('is raised at path %s, saying what was wrong', (path, doc, fragment) => {
    expectDecodeError(
      decodeErrorOf(() => peer.decode(pack(doc))),
      'INVALID_FIELD',
      path,
      fragment,
    );
  });

  it('is raised at the root for a document that is not a map', () => {
    expectDecodeError(
      decodeErrorOf(() => peer.decode(pack([1, 2]))),
      'INVALID_FIELD',
      '',
      'expected an object, got array',
    );
    expectDecodeError(
      decodeErrorOf(() => peer.decode(pack(null))),
      'INVALID_FIELD',
      '',
      'got null',
    );
    expectDecodeError(
      decodeErrorOf(() => peer.decode(pack(42))),
      'INVALID_FIELD',
      '',
      'got number',
    );
  });

  it('accepts the values right at each bound', () => {
    expect(peer.decode(pack({ ...prepare, instance: 'k'.repeat(1024) })).type).toBe('prepare');
    expect(peer.decode(pack({ ...catchupRequest, maxEntries: LIMITS.maxEntries })).type).toBe(
      'catchupRequest',
    );
    expect(peer.decode(pack({ ...error, message: 'm'.repeat(8192) })).type).toBe('error');
    expect(peer.decode(pack({ ...error, message: '' })).type).toBe('error');
    expect(peer.decode(pack({ ...heartbeat, commitIndex: -1 })).type).toBe('heartbeat');
    expect(peer.decode(pack({ ...heartbeat, ballot: { round: 0, nodeId: '' } }))).toStrictEqual({
      type: 'heartbeat',
      group: 'g',
      from: 'n1',
      ballot: { round: 0, nodeId: '' },
      commitIndex: 0,
    });
    const many = { ...promise, accepted: new Array(LIMITS.maxEntries).fill(promise.accepted[0]) };
    const roomy = createPeerCodec({ maxMessageBytes: 8 * 1024 * 1024 });
    const decoded = roomy.decode(pack(many));
    expect(decoded.type === 'promise' && decoded.accepted.length).toBe(LIMITS.maxEntries);
  });
});

describe('INVALID_FIELD in client messages', () => {
  const write = (rest: string) => `{"clientId":"c1","seq":7,${rest}}`;
  it.each([
    [
      'clientId',
      '{"clientId":"a b","seq":1,"command":{"op":"get"}}',
      'may contain only letters, digits and _ . : @ -',
    ],
    [
      'clientId',
      `{"clientId":"${'c'.repeat(129)}","seq":1,"command":{"op":"get"}}`,
      'must be at most 128 characters',
    ],
    ['clientId', '{"clientId":"","seq":1,"command":{"op":"get"}}', 'must be at least 1 characters'],
    ['clientId', '{"seq":1,"command":{"op":"get"}}', 'expected a string, got undefined'],
    ['seq', '{"clientId":"c1","seq":-1,"command":{"op":"get"}}', 'must be between 0'],
    ['seq', '{"clientId":"c1","seq":1.5,"command":{"op":"get"}}', 'expected an integer'],
    ['seq', '{"clientId":"c1","seq":1e400,"command":{"op":"get"}}', 'expected an integer'],
    [
      'seq',
      '{"clientId":"c1","seq":"7","command":{"op":"get"}}',
      'expected an integer, got string',
    ],
    ['command', write('"cmd":{"op":"get"}'), 'expected an object, got undefined'],
    ['command', write('"command":[{"op":"get"}]'), 'expected an object, got array'],
    ['command.op', write('"command":{"key":"k"}'), 'expected an operation name'],
    ['command.op', write('"command":{"op":"1put"}'), 'expected an operation name'],
    ['command.op', write('"command":{"op":"put-it"}'), 'expected an operation name'],
    ['command.op', write(`"command":{"op":"p${'u'.repeat(64)}"}`), 'expected an operation name'],
    [
      'command.value.list[2].constructor',
      write('"command":{"op":"put","value":{"list":[1,2,{"constructor":1}]}}'),
      'this key is not allowed',
    ],
  ])('decodeWrite reports %s for %s', (path, text, fragment) => {
    expectDecodeError(
      decodeErrorOf(() => client.decodeWrite(json(text))),
      'INVALID_FIELD',
      path,
      fragment,
    );
  });

  it('decodeRead reports an unknown consistency at path consistency', () => {
    expectDecodeError(
      decodeErrorOf(() =>
        client.decodeRead(json('{"command":{"op":"get"},"consistency":"eventual"}')),
      ),
      'INVALID_FIELD',
      'consistency',
      'expected one of linearizable, strong, optimistic',
    );
  });

  it.each([
    ['ok', '{"result":1}', 'expected a boolean, got undefined'],
    ['ok', '{"ok":"true","result":1}', 'expected a boolean, got string'],
    ['slot', '{"ok":true,"slot":-1,"result":1}', 'must be between 0'],
    ['error', '{"ok":false}', 'expected an object, got undefined'],
    ['error.code', '{"ok":false,"error":{"code":"OOPS","message":"m"}}', 'expected one of'],
    [
      'error.message',
      '{"ok":false,"error":{"code":"TIMEOUT"}}',
      'expected a string, got undefined',
    ],
    [
      'error.leader',
      '{"ok":false,"error":{"code":"NOT_LEADER","message":"m","leader":"a b"}}',
      'only letters',
    ],
  ])('decodeResponse reports %s for %s', (path, text, fragment) => {
    expectDecodeError(
      decodeErrorOf(() => client.decodeResponse(json(text))),
      'INVALID_FIELD',
      path,
      fragment,
    );
  });

  it('limits plain data to 32 levels of nesting, reporting the path of the first too-deep value', () => {
    const nest = (levels: number): unknown => (levels === 0 ? 0 : [nest(levels - 1)]);
    // command is level 0 and command.a level 1, so 31 wrappings put the innermost 0 at level 32.
    const ok = { clientId: 'c1', seq: 1, command: { op: 'put', a: nest(31) } };
    expect(client.decodeWrite(json(JSON.stringify(ok)))).toStrictEqual(ok);
    const deep = { clientId: 'c1', seq: 1, command: { op: 'put', a: nest(32) } };
    const error = decodeErrorOf(() => client.decodeWrite(json(JSON.stringify(deep))));
    expectDecodeError(
      error,
      'INVALID_FIELD',
      `command.a${'[0]'.repeat(32)}`,
      'nested deeper than 32 levels',
    );
    // A result is level 0 itself.
    expect(client.decodeResponse(pack({ ok: true, result: nest(32) }))).toStrictEqual({
      ok: true,
      result: nest(32),
    });
    expect(
      decodeErrorOf(() => client.decodeResponse(pack({ ok: true, result: nest(33) }))).code,
    ).toBe('INVALID_FIELD');
  });

  it.each([
    ['NaN', Number.NaN, 'numbers must be finite'],
    ['Infinity', Number.POSITIVE_INFINITY, 'numbers must be finite'],
    ['a BigInt', 1n << 70n, 'expected plain data, got bigint'],
    ['a Date (msgpack timestamp)', new Date(0), 'expected plain data'],
    ['a Set', new Set([1]), 'expected plain data'],
    ['a RegExp', /x/, 'expected plain data'],
    ['an Error', new Error('e'), 'expected plain data'],
    ['undefined', undefined, 'expected plain data, got undefined'],
    [
      'a Float64Array (msgpack typed-array extension)',
      new Float64Array([1]),
      'expected plain data',
    ],
  ])('rejects %s inside a msgpack command at its path', (_name, value, fragment) => {
    const bytes = packMoreTypes.pack({
      clientId: 'c1',
      seq: 1,
      command: { op: 'put', x: { y: value } },
    });
    expectDecodeError(
      decodeErrorOf(() => client.decodeWrite(bytes)),
      'INVALID_FIELD',
      'command.x.y',
      fragment,
    );
  });
});
