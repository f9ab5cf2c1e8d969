import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertGroupName,
  assertNodeId,
  InvalidNameError,
  isValidName,
  MAX_NAME_LENGTH,
} from '../src/index.js';
import { NAME_CHARS, nameArb } from './arbitraries.js';
import { NUM_RUNS, PROPERTY_TIMEOUT_MS } from './helpers.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('group and node names', () => {
  it.each(['a', 'Z', '0', '-', '_', 'orders', 'node-1', 'Node_2', 'x'.repeat(MAX_NAME_LENGTH)])(
    'accepts %j',
    (name) => {
      expect(isValidName(name)).toBe(true);
      expect(assertGroupName(name)).toBe(name);
      expect(assertNodeId(name)).toBe(name);
    },
  );

  it.each([
    ['', 'must not be empty'],
    ['x'.repeat(MAX_NAME_LENGTH + 1), 'at most 64'],
    ['a.b', "only letters, digits, '-' and '_'"],
    ['*', "only letters, digits, '-' and '_'"],
    ['>', "only letters, digits, '-' and '_'"],
    ['a b', "only letters, digits, '-' and '_'"],
    [' a', "only letters, digits, '-' and '_'"],
    ['a\n', "only letters, digits, '-' and '_'"],
    ['a\tb', "only letters, digits, '-' and '_'"],
    ['é', "only letters, digits, '-' and '_'"],
    ['１', "only letters, digits, '-' and '_'"],
    ['a/b', "only letters, digits, '-' and '_'"],
  ])('rejects %j with InvalidNameError saying it %s', (name, reason) => {
    expect(isValidName(name)).toBe(false);
    const group = thrown(() => assertGroupName(name));
    expect(group).toBeInstanceOf(InvalidNameError);
    expect((group as InvalidNameError).kind).toBe('group');
    expect((group as InvalidNameError).value).toBe(name);
    expect((group as InvalidNameError).message).toContain('invalid group name');
    expect((group as InvalidNameError).message).toContain(reason);
    const node = thrown(() => assertNodeId(name));
    expect(node).toBeInstanceOf(InvalidNameError);
    expect((node as InvalidNameError).kind).toBe('node');
    expect((node as InvalidNameError).message).toContain('invalid node id');
    expect((node as InvalidNameError).message).toContain(reason);
  });

  it.each([
    [42, '(number)'],
    [null, '(null)'],
    [undefined, '(undefined)'],
    [{}, '(object)'],
    [['a'], '(object)'],
    [true, '(boolean)'],
    [Symbol('a'), '(symbol)'],
    [new String('abc'), '(object)'],
  ])('rejects the non-string %s, naming its type %s', (value, shown) => {
    expect(isValidName(value)).toBe(false);
    const error = thrown(() => assertNodeId(value));
    expect(error).toBeInstanceOf(InvalidNameError);
    expect((error as InvalidNameError).name).toBe('InvalidNameError');
    expect((error as InvalidNameError).message).toContain(shown);
    expect((error as InvalidNameError).message).toContain('must be a string');
    expect(() => assertGroupName(value)).toThrow(InvalidNameError);
  });

  it('quotes a long bad name in the message, cut to 80 characters', () => {
    const error = thrown(() => assertGroupName('y'.repeat(200))) as InvalidNameError;
    expect(error.message).toContain(`"${'y'.repeat(80)}…"`);
    expect(error.message).not.toContain('y'.repeat(81));
  });

  it(
    'accepts every string of 1..64 letters, digits, - and _',
    () => {
      fc.assert(
        fc.property(nameArb, (name) => {
          expect(isValidName(name)).toBe(true);
          expect(assertGroupName(name)).toBe(name);
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'rejects every string with at least one character outside [A-Za-z0-9_-]',
    () => {
      const badChar = fc
        .string({ unit: 'binary', minLength: 1, maxLength: 1 })
        .filter((c) => !NAME_CHARS.includes(c));
      fc.assert(
        fc.property(
          fc.string({ unit: fc.constantFrom(...NAME_CHARS), maxLength: 30 }),
          badChar,
          fc.string({ unit: fc.constantFrom(...NAME_CHARS), maxLength: 30 }),
          (before, bad, after) => {
            const name = before + bad + after;
            expect(isValidName(name)).toBe(false);
            expect(() => assertNodeId(name)).toThrow(InvalidNameError);
          },
        ),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'rejects every otherwise valid name longer than 64 characters',
    () => {
      fc.assert(
        fc.property(
          fc.string({ unit: fc.constantFrom(...NAME_CHARS), minLength: 65, maxLength: 200 }),
          (name) => {
            expect(isValidName(name)).toBe(false);
            expect(() => assertGroupName(name)).toThrow(/at most 64 characters/);
          },
        ),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
