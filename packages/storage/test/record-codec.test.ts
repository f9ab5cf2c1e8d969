// The record payload codec: what encodeRecord writes, decodeRecord gives back unchanged, and
// no bytes at all make decodeRecord throw anything but RecordDecodeError.
import { LIMITS, type StoreRecord } from '@synod/protocol';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord, RecordDecodeError } from '../src/index.js';
import { recordArb } from './arbitraries.js';
import { EVERY_KIND } from './helpers.js';

const packr = new Packr({ useRecords: false, useBigIntExtension: true });

function expectDecodeError(bytes: Uint8Array): RecordDecodeError {
  try {
    decodeRecord(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(RecordDecodeError);
    return error as RecordDecodeError;
  }
  throw new Error('decoded an invalid record');
}

describe('record codec', () => {
  it('every record kind round-trips', () => {
    for (const record of EVERY_KIND) expect(decodeRecord(encodeRecord(record))).toEqual(record);
  });

  it('random sequences of records round-trip through encodeRecord and decodeRecord', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 20 }), (records) => {
        const decoded = records.map((record) => decodeRecord(encodeRecord(record)));
        expect(decoded).toEqual(records);
      }),
      { numRuns: 300 },
    );
  });

  it('random bytes make decodeRecord throw only RecordDecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeRecord(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(RecordDecodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a valid payload with bytes changed decodes to a record or throws only RecordDecodeError', () => {
    fc.assert(
      fc.property(
        recordArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (record, edits) => {
          const bytes = encodeRecord(record);
          for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
          try {
            decodeRecord(bytes);
          } catch (error) {
            expect(error).toBeInstanceOf(RecordDecodeError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it.each<[string, unknown]>([
    ['an unknown kind', { kind: 'forget', instance: 1 }],
    ['an extra field', { kind: 'round', round: 1, note: 'x' }],
    ['a negative slot', { kind: 'promise', instance: -1, ballot: { round: 1, nodeId: 'n' } }],
    ['a fractional slot', { kind: 'chosen', instance: 1.5, value: new Uint8Array() }],
    ['a 64-bit slot', { kind: 'chosen', instance: 2n ** 60n, value: new Uint8Array() }],
    ['an empty key', { kind: 'chosen', instance: '', value: new Uint8Array() }],
    [
      'a key too long',
      { kind: 'chosen', instance: 'k'.repeat(LIMITS.maxKeyLength + 1), value: new Uint8Array() },
    ],
    [
      'an invalid node id',
      { kind: 'promiseFrom', fromSlot: 0, ballot: { round: 1, nodeId: 'a.b' } },
    ],
    [
      'an empty node id above round 0',
      { kind: 'promiseFrom', fromSlot: 0, ballot: { round: 1, nodeId: '' } },
    ],
    ['a value that is not bytes', { kind: 'chosen', instance: 1, value: 'text' }],
    ['an array', [1, 2, 3]],
    ['a number', 42],
  ])('a payload with %s is refused with RecordDecodeError', (_, value) => {
    const error = expectDecodeError(packr.pack(value));
    expect(error.reason.length).toBeGreaterThan(0);
  });

  it('two msgpack documents in one payload are refused', () => {
    const one = encodeRecord({ kind: 'round', round: 1 });
    expectDecodeError(new Uint8Array([...one, ...one]));
    expectDecodeError(new Uint8Array());
  });

  it('encodeRecord refuses a malformed record with TypeError, including a key UTF-8 would change', () => {
    const bad: unknown[] = [
      { kind: 'promise', instance: 'a\uD800b', ballot: { round: 1, nodeId: 'n' } },
      { kind: 'round', round: -1 },
      { kind: 'accept', instance: 1, ballot: { round: 1, nodeId: 'n' } },
    ];
    for (const record of bad) expect(() => encodeRecord(record as StoreRecord)).toThrow(TypeError);
  });
});
