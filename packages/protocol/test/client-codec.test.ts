// The client wire format: the public JSON contract, format detection, and bytes in JSON.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ClientResponse,
  createClientCodec,
  detectFormat,
  type PlainData,
} from '../src/index.js';
import { clientReadArb, clientResponseArb, clientWriteArb } from './arbitraries.js';
import { NUM_RUNS, normalise, PROPERTY_TIMEOUT_MS, utf8 } from './helpers.js';

const client = createClientCodec();
const text = (bytes: Uint8Array): string => new TextDecoder('utf-8', { fatal: true }).decode(bytes);

describe('public JSON contract', () => {
  it.each([
    ['put', '{"clientId":"c1","seq":7,"command":{"op":"put","key":"k","value":"v"}}'],
    ['delete', '{"clientId":"c1","seq":8,"command":{"op":"delete","key":"k"}}'],
    [
      'cas with expect',
      '{"clientId":"c1","seq":9,"command":{"op":"cas","key":"k","expect":"v","value":"w"}}',
    ],
    [
      'cas expecting absence',
      '{"clientId":"c1","seq":10,"command":{"op":"cas","key":"k","expect":null,"value":"w"}}',
    ],
    ['append', '{"clientId":"c1","seq":11,"command":{"op":"append","key":"k","value":"x"}}'],
  ])('decodes the %s write exactly as written', (_op, json) => {
    expect(client.decodeWrite(utf8.encode(json))).toStrictEqual(JSON.parse(json));
    expect(client.decodeWrite(utf8.encode(json), 'application/json')).toStrictEqual(
      JSON.parse(json),
    );
  });

  it.each([
    ['with consistency', '{"command":{"op":"get","key":"k"},"consistency":"linearizable"}'],
    ['strong', '{"command":{"op":"get","key":"k"},"consistency":"strong"}'],
    ['optimistic', '{"command":{"op":"get","key":"k"},"consistency":"optimistic"}'],
    ['without consistency', '{"command":{"op":"get","key":"k"}}'],
  ])('decodes the read %s exactly as written', (_name, json) => {
    const decoded = client.decodeRead(utf8.encode(json));
    expect(decoded).toStrictEqual(JSON.parse(json));
  });

  it.each([
    ['ok reply', '{"ok":true,"slot":42,"result":{"found":true,"value":"v"}}'],
    ['ok reply without slot', '{"ok":true,"result":{"found":false}}'],
    [
      'error reply',
      '{"ok":false,"error":{"code":"NO_QUORUM","message":"no quorum within 5000 ms"}}',
    ],
    [
      'NOT_LEADER reply',
      '{"ok":false,"error":{"code":"NOT_LEADER","message":"ask n2","leader":"n2"}}',
    ],
    [
      'SQL failure',
      '{"ok":false,"error":{"code":"BAD_REQUEST","message":"duplicate key value","sqlState":"23505"}}',
    ],
    [
      'write over the limit',
      '{"ok":false,"error":{"code":"BAD_REQUEST","message":"the write is 300000 bytes","limitBytes":262144}}',
    ],
  ])('decodes the %s, and encodeResponse(json) writes the same JSON back', (_name, json) => {
    const decoded = client.decodeResponse(utf8.encode(json));
    expect(decoded).toStrictEqual(JSON.parse(json));
    const encoded = text(client.encodeResponse(decoded, 'json'));
    expect(JSON.parse(encoded)).toStrictEqual(JSON.parse(json));
  });

  it('refuses a SQLSTATE that is not five digits or capital letters', () => {
    for (const state of ['2350', '235000', '2350a', 23505])
      expect(() =>
        client.decodeResponse(
          utf8.encode(
            JSON.stringify({
              ok: false,
              error: { code: 'BAD_REQUEST', message: 'm', sqlState: state },
            }),
          ),
        ),
      ).toThrow(/sqlState/);
  });

  it('encodeResponse writes the contract texts for replies built in code', () => {
    const ok: ClientResponse = { ok: true, slot: 42, result: { found: true, value: 'v' } };
    expect(JSON.parse(text(client.encodeResponse(ok, 'json')))).toStrictEqual(
      JSON.parse('{"ok":true,"slot":42,"result":{"found":true,"value":"v"}}'),
    );
    const failure: ClientResponse = { ok: false, error: { code: 'NO_QUORUM', message: '...' } };
    expect(JSON.parse(text(client.encodeResponse(failure, 'json')))).toStrictEqual(
      JSON.parse('{"ok":false,"error":{"code":"NO_QUORUM","message":"..."}}'),
    );
  });

  it('encodes writes and reads as JSON in the contract shape', () => {
    const write = { clientId: 'c1', seq: 7, command: { op: 'put', key: 'k', value: 'v' } };
    expect(JSON.parse(text(client.encodeWrite(write, 'json')))).toStrictEqual(
      JSON.parse('{"clientId":"c1","seq":7,"command":{"op":"put","key":"k","value":"v"}}'),
    );
    const read = { command: { op: 'get', key: 'k' }, consistency: 'linearizable' as const };
    expect(JSON.parse(text(client.encodeRead(read, 'json')))).toStrictEqual(
      JSON.parse('{"command":{"op":"get","key":"k"},"consistency":"linearizable"}'),
    );
  });

  it('drops unknown top-level fields of a write or read', () => {
    expect(
      client.decodeWrite(utf8.encode('{"clientId":"c1","seq":1,"command":{"op":"get"},"extra":1}')),
    ).toStrictEqual({ clientId: 'c1', seq: 1, command: { op: 'get' } });
  });

  it('decodes pretty-printed JSON with leading whitespace the same as compact JSON', () => {
    const compact = '{"clientId":"c1","seq":7,"command":{"op":"put","key":"k","value":"v"}}';
    const pretty = ` \t\r\n${JSON.stringify(JSON.parse(compact), null, 2)}\n`;
    expect(client.decodeWrite(utf8.encode(pretty))).toStrictEqual(JSON.parse(compact));
  });
});

describe('bytes in JSON replies', () => {
  it('writes a byte string as {"base64": ...}, at any depth', () => {
    const response: ClientResponse = {
      ok: true,
      slot: 1,
      result: { data: Uint8Array.of(0, 1, 2, 255), list: [Uint8Array.of(0xfb), new Uint8Array(0)] },
    };
    expect(JSON.parse(text(client.encodeResponse(response, 'json')))).toStrictEqual({
      ok: true,
      slot: 1,
      result: { data: { base64: 'AAEC/w==' }, list: [{ base64: '+w==' }, { base64: '' }] },
    });
    const top: ClientResponse = { ok: true, result: Buffer.from('hello') };
    expect(JSON.parse(text(client.encodeResponse(top, 'json')))).toStrictEqual({
      ok: true,
      result: { base64: 'aGVsbG8=' },
    });
  });

  it('keeps byte strings as bytes in msgpack', () => {
    const response: ClientResponse = { ok: true, result: { data: Uint8Array.of(1, 2, 3) } };
    const decoded = client.decodeResponse(client.encodeResponse(response));
    expect(normalise(decoded)).toStrictEqual(normalise(response));
  });

  it(
    'decode(encode(r, json)) equals r with every byte string replaced by {base64}',
    () => {
      const base64Model = (value: PlainData): unknown => {
        if (value instanceof Uint8Array) return { base64: Buffer.from(value).toString('base64') };
        if (Array.isArray(value)) return value.map(base64Model);
        if (value !== null && typeof value === 'object') {
          return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, base64Model(v)]));
        }
        return value;
      };
      fc.assert(
        fc.property(clientResponseArb(true), (response) => {
          const decoded = client.decodeResponse(client.encodeResponse(response, 'json'));
          const expected = response.ok
            ? { ...response, result: base64Model(response.result) }
            : response;
          expect(normalise(decoded)).toStrictEqual(normalise(expected));
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});

describe('detectFormat', () => {
  const msgpack = client.encodeWrite({ clientId: 'c1', seq: 1, command: { op: 'get' } });

  it.each([
    'application/json',
    'application/json; charset=utf-8',
    'application/json;charset=UTF-8',
    'Application/JSON ; q=1',
    '  application/json  ',
  ])('says json for content type %j, whatever the bytes', (contentType) => {
    expect(detectFormat(msgpack, contentType)).toBe('json');
    expect(detectFormat(new Uint8Array(0), contentType)).toBe('json');
  });

  it.each(['application/msgpack', 'application/jsonx', 'text/json', 'application/x-json', ''])(
    'sniffs the bytes for content type %j',
    (contentType) => {
      expect(detectFormat(msgpack, contentType)).toBe('msgpack');
      expect(detectFormat(utf8.encode('{}'), contentType)).toBe('json');
    },
  );

  it.each([
    ['{', 'json'],
    ['{"a":1}', 'json'],
    ['   {', 'json'],
    [' \t\r\n{', 'json'],
    ['', 'msgpack'],
    ['   ', 'msgpack'],
    ['[1]', 'msgpack'],
    [' [', 'msgpack'],
    ['"{"', 'msgpack'],
    ['\ufeff{', 'msgpack'], // a BOM is not whitespace
    ['\u00a0{', 'msgpack'], // nor is a no-break space
  ] as const)('sniffs %j as %s', (body, format) => {
    expect(detectFormat(utf8.encode(body))).toBe(format);
  });

  it(
    'says json for every JSON-encoded client message and msgpack for every msgpack-encoded one',
    () => {
      fc.assert(
        fc.property(
          fc.oneof(
            clientWriteArb(false).map(
              (m) => [client.encodeWrite(m, 'json'), client.encodeWrite(m)] as const,
            ),
            clientReadArb(false).map(
              (m) => [client.encodeRead(m, 'json'), client.encodeRead(m)] as const,
            ),
            clientResponseArb(false).map(
              (m) => [client.encodeResponse(m, 'json'), client.encodeResponse(m)] as const,
            ),
          ),
          ([json, packed]) => {
            expect(detectFormat(json)).toBe('json');
            expect(detectFormat(packed)).toBe('msgpack');
          },
        ),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
