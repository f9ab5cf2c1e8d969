import type { Ballot, Instance, StoreRecord } from '@synod/protocol';
import fc from 'fast-check';

const NAME_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('');

export const slotArb: fc.Arbitrary<number> = fc.oneof(
  fc.nat(1_000),
  fc.maxSafeNat(),
  fc.constantFrom(0, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER),
);

export const ballotArb: fc.Arbitrary<Ballot> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Ballot>({ round: 0, nodeId: '' }) },
  {
    weight: 9,
    arbitrary: fc.record({
      round: slotArb,
      nodeId: fc.string({ unit: fc.constantFrom(...NAME_CHARS), minLength: 1, maxLength: 64 }),
    }),
  },
);

/** Keys of any well-formed text, ASCII or not. */
const keyArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ minLength: 1, maxLength: 40 }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
);

export const instanceArb: fc.Arbitrary<Instance> = fc.oneof(slotArb, keyArb);

const valueArb = fc.uint8Array({ maxLength: 300 });

export const recordArb: fc.Arbitrary<StoreRecord> = fc.oneof(
  fc.record({ kind: fc.constant('promise' as const), instance: instanceArb, ballot: ballotArb }),
  fc.record({ kind: fc.constant('promiseFrom' as const), fromSlot: slotArb, ballot: ballotArb }),
  fc.record({
    kind: fc.constant('accept' as const),
    instance: instanceArb,
    ballot: ballotArb,
    value: valueArb,
  }),
  fc.record({ kind: fc.constant('chosen' as const), instance: instanceArb, value: valueArb }),
  fc.record({ kind: fc.constant('round' as const), round: slotArb }),
);
