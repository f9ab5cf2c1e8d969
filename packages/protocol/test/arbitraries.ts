// fast-check arbitraries for every message type of @synod/protocol, valid by construction:
// whatever they generate, the decoder must accept and give back unchanged.
import fc from 'fast-check';
import {
  type Accept,
  type Accepted,
  type AcceptedEntry,
  type Ballot,
  type CatchupRequest,
  type CatchupResponse,
  type ChosenEntry,
  type ClientFailure,
  type ClientOk,
  type ClientRead,
  type ClientResponse,
  type ClientWrite,
  type Command,
  type Decide,
  ERROR_CODES,
  type ErrorMessage,
  type Heartbeat,
  type HighestAcceptedAnswer,
  type HighestAcceptedQuery,
  type Instance,
  LIMITS,
  MAX_ROUND,
  type PeerMessage,
  type PlainData,
  type Prepare,
  type PrepareLog,
  type PromiseReply,
  READ_CONSISTENCIES,
  type ReadIndexAnswer,
  type ReadIndexCheck,
} from '../src/index.js';
import { FORBIDDEN_KEYS, type Mutation, type TextMutation } from './helpers.js';

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const DIGITS = '0123456789';
export const NAME_CHARS = `${LETTERS}${DIGITS}-_`;
const CLIENT_ID_CHARS = `${LETTERS}${DIGITS}_.:@-`;

/** A valid group name or node id: 1 to 64 of [A-Za-z0-9_-]. */
export const nameArb: fc.Arbitrary<string> = fc.string({
  unit: fc.constantFrom(...NAME_CHARS),
  minLength: 1,
  maxLength: 64,
});

/** Small and large slots: the decoder must keep every safe integer exactly. */
export const slotArb: fc.Arbitrary<number> = fc.oneof(
  fc.nat(1_000),
  fc.maxSafeNat(),
  fc.constantFrom(0, 2 ** 31, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER),
);

/** A commit index or "highest slot" field: -1 (none) or a slot. */
export const slotOrNoneArb: fc.Arbitrary<number> = fc.oneof(fc.constant(-1), slotArb);

/** Rounds a ballot may have: up to MAX_ROUND (2^48), the edges included. */
export const roundArb: fc.Arbitrary<number> = fc.oneof(
  fc.nat(1_000),
  fc.integer({ min: 0, max: MAX_ROUND }),
  fc.constantFrom(0, 2 ** 31, 2 ** 32, MAX_ROUND),
);

export const ballotArb: fc.Arbitrary<Ballot> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Ballot>({ round: 0, nodeId: '' }) },
  { weight: 9, arbitrary: fc.record({ round: roundArb, nodeId: nameArb }) },
);

/** Register keys: 1 to 1024 UTF-16 code units, any well-formed Unicode. */
export const keyArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ minLength: 1, maxLength: 40 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: LIMITS.maxKeyLength / 2 }),
  fc.constant('k'.repeat(LIMITS.maxKeyLength)),
);

export const instanceArb: fc.Arbitrary<Instance> = fc.oneof(slotArb, keyArb);

export const valueArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.uint8Array({ maxLength: 2048 }),
);

const envelope = { group: nameArb, from: nameArb };

export const acceptedEntryArb: fc.Arbitrary<AcceptedEntry> = fc.record({
  instance: instanceArb,
  ballot: ballotArb,
  value: valueArb,
});

export const chosenEntryArb: fc.Arbitrary<ChosenEntry> = fc.record({
  slot: slotArb,
  value: valueArb,
});

export const prepareArb: fc.Arbitrary<Prepare> = fc.record({
  type: fc.constant('prepare'),
  ...envelope,
  ballot: ballotArb,
  instance: instanceArb,
});

export const prepareLogArb: fc.Arbitrary<PrepareLog> = fc.record({
  type: fc.constant('prepareLog'),
  ...envelope,
  ballot: ballotArb,
  fromSlot: slotArb,
});

export const promiseArb: fc.Arbitrary<PromiseReply> = fc.record(
  {
    type: fc.constant('promise'),
    ...envelope,
    ballot: ballotArb,
    ok: fc.boolean(),
    promised: ballotArb,
    accepted: fc.array(acceptedEntryArb, { maxLength: 6 }),
    more: fc.boolean(),
    // Present for single-instance prepares, absent for PrepareLog answers: both must round-trip.
    instance: instanceArb,
    compactedThrough: slotArb,
    fromSlot: slotArb,
  },
  { requiredKeys: ['type', 'group', 'from', 'ballot', 'ok', 'promised', 'accepted', 'more'] },
);

export const acceptWithCommitIndexArb: fc.Arbitrary<Accept> = fc.record({
  type: fc.constant('accept'),
  ...envelope,
  ballot: ballotArb,
  instance: instanceArb,
  value: valueArb,
  commitIndex: slotOrNoneArb,
});

export const acceptWithoutCommitIndexArb: fc.Arbitrary<Accept> = fc.record({
  type: fc.constant('accept'),
  ...envelope,
  ballot: ballotArb,
  instance: instanceArb,
  value: valueArb,
});

export const acceptedArb: fc.Arbitrary<Accepted> = fc.record(
  {
    type: fc.constant('accepted'),
    ...envelope,
    ballot: ballotArb,
    instance: instanceArb,
    ok: fc.boolean(),
    promised: ballotArb,
    // The learners' copy carries the accepted value; the proposer's reply does not.
    value: valueArb,
  },
  { requiredKeys: ['type', 'group', 'from', 'ballot', 'instance', 'ok', 'promised'] },
);

export const decideArb: fc.Arbitrary<Decide> = fc.record({
  type: fc.constant('decide'),
  ...envelope,
  instance: instanceArb,
  ballot: ballotArb,
  value: valueArb,
});

export const heartbeatArb: fc.Arbitrary<Heartbeat> = fc.record({
  type: fc.constant('heartbeat'),
  ...envelope,
  ballot: ballotArb,
  commitIndex: slotOrNoneArb,
});

export const catchupRequestArb: fc.Arbitrary<CatchupRequest> = fc.record(
  {
    type: fc.constant('catchupRequest'),
    ...envelope,
    fromSlot: slotArb,
    maxEntries: fc.oneof(
      fc.integer({ min: 1, max: LIMITS.maxEntries }),
      fc.constantFrom(1, LIMITS.maxEntries),
    ),
    snapshot: fc.record({ throughSlot: slotArb, offset: slotArb }),
  },
  { requiredKeys: ['type', 'group', 'from', 'fromSlot', 'maxEntries'] },
);

const snapshotChunkArb = fc
  .tuple(slotArb, fc.uint8Array({ maxLength: 64 }), fc.nat({ max: 1000 }), fc.nat({ max: 1000 }))
  .map(([throughSlot, bytes, offset, extra]) => ({
    throughSlot,
    offset,
    total: Math.max(1, offset + bytes.length + extra),
    bytes,
  }));

export const catchupResponseArb: fc.Arbitrary<CatchupResponse> = fc.record(
  {
    type: fc.constant('catchupResponse'),
    ...envelope,
    entries: fc.array(chosenEntryArb, { maxLength: 6 }),
    commitIndex: slotOrNoneArb,
    snapshot: snapshotChunkArb,
  },
  { requiredKeys: ['type', 'group', 'from', 'entries', 'commitIndex'] },
);

export const highestAcceptedQueryArb: fc.Arbitrary<HighestAcceptedQuery> = fc.record({
  type: fc.constant('highestAcceptedQuery'),
  ...envelope,
  requestId: fc.nat(),
});

export const highestAcceptedAnswerArb: fc.Arbitrary<HighestAcceptedAnswer> = fc.record({
  type: fc.constant('highestAcceptedAnswer'),
  ...envelope,
  requestId: fc.nat(),
  slot: slotOrNoneArb,
});

export const readIndexCheckArb: fc.Arbitrary<ReadIndexCheck> = fc.record({
  type: fc.constant('readIndexCheck'),
  ...envelope,
  ballot: ballotArb,
  requestId: fc.nat(),
});

export const readIndexAnswerArb: fc.Arbitrary<ReadIndexAnswer> = fc.record({
  type: fc.constant('readIndexAnswer'),
  ...envelope,
  ballot: ballotArb,
  requestId: fc.nat(),
  promised: ballotArb,
});

export const errorCodeArb = fc.constantFrom(...ERROR_CODES);

/** Error texts: 0 to 8192 UTF-16 code units. */
export const errorTextArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constant('m'.repeat(LIMITS.maxErrorMessageLength)),
);

export const errorWithLeaderArb: fc.Arbitrary<ErrorMessage> = fc.record({
  type: fc.constant('error'),
  ...envelope,
  code: errorCodeArb,
  message: errorTextArb,
  leader: nameArb,
});

export const errorWithoutLeaderArb: fc.Arbitrary<ErrorMessage> = fc.record({
  type: fc.constant('error'),
  ...envelope,
  code: errorCodeArb,
  message: errorTextArb,
});

/** One arbitrary per peer message type (and per optional-field variant), by name. */
export const peerMessageArbs = {
  prepare: prepareArb,
  prepareLog: prepareLogArb,
  promise: promiseArb,
  'accept with commitIndex': acceptWithCommitIndexArb,
  'accept without commitIndex': acceptWithoutCommitIndexArb,
  accepted: acceptedArb,
  decide: decideArb,
  heartbeat: heartbeatArb,
  catchupRequest: catchupRequestArb,
  catchupResponse: catchupResponseArb,
  highestAcceptedQuery: highestAcceptedQueryArb,
  highestAcceptedAnswer: highestAcceptedAnswerArb,
  readIndexCheck: readIndexCheckArb,
  readIndexAnswer: readIndexAnswerArb,
  'error with leader': errorWithLeaderArb,
  'error without leader': errorWithoutLeaderArb,
} satisfies Record<string, fc.Arbitrary<PeerMessage>>;

export const peerMessageArb: fc.Arbitrary<PeerMessage> = fc.oneof(
  ...Object.values(peerMessageArbs).map((arb) => arb as fc.Arbitrary<PeerMessage>),
);

// ---------------------------------------------------------------------------------------
// Plain data, commands and client messages.

/** Object keys of plain data: anything but the prototype-bearing ones. */
export const plainKeyArb: fc.Arbitrary<string> = fc
  .oneof(fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 8 }))
  .filter((key) => !(FORBIDDEN_KEYS as readonly string[]).includes(key));

/** Finite numbers other than -0 (msgpack and JSON both carry -0 as 0). */
const numberArb: fc.Arbitrary<number> = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
);

/**
 * Plain data nested at most `maxDepth` levels. With `bytes`, byte strings appear too
 * (msgpack only: JSON has no byte strings).
 */
export function plainDataArb(options: {
  bytes: boolean;
  maxDepth?: number;
}): fc.Arbitrary<PlainData> {
  const leaves: fc.Arbitrary<PlainData>[] = [
    fc.string({ maxLength: 12 }),
    fc.string({ unit: 'binary', maxLength: 12 }),
    numberArb,
    fc.boolean(),
    fc.constant(null),
  ];
  if (options.bytes) leaves.push(fc.uint8Array({ maxLength: 32 }));
  const leaf = fc.oneof(...leaves);
  const { data } = fc.letrec<{ data: PlainData }>((tie) => ({
    data: fc.oneof(
      { depthSize: 'small', maxDepth: options.maxDepth ?? 4, withCrossShrink: true },
      leaf,
      fc.array(tie('data'), { maxLength: 4 }),
      fc.dictionary(plainKeyArb, tie('data'), { maxKeys: 4, noNullPrototype: true }),
    ),
  }));
  return data;
}

/** Operation names: a letter, then up to 63 letters, digits or '_'. */
export const opArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('put', 'get', 'delete', 'cas', 'append'),
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,63}$/),
);

export function commandArb(bytes: boolean): fc.Arbitrary<Command> {
  return fc
    .record({
      op: opArb,
      args: fc.dictionary(
        plainKeyArb.filter((key) => key !== 'op'),
        plainDataArb({ bytes }),
        { maxKeys: 4, noNullPrototype: true },
      ),
    })
    .map(({ op, args }) => ({ op, ...args }) as Command);
}

export const clientIdArb: fc.Arbitrary<string> = fc.string({
  unit: fc.constantFrom(...CLIENT_ID_CHARS),
  minLength: 1,
  maxLength: LIMITS.maxClientIdLength,
});

export function clientWriteArb(bytes: boolean): fc.Arbitrary<ClientWrite> {
  return fc.record({ clientId: clientIdArb, seq: slotArb, command: commandArb(bytes) });
}

export function clientReadArb(bytes: boolean): fc.Arbitrary<ClientRead> {
  return fc.oneof(
    fc.record({ command: commandArb(bytes) }),
    fc.record({ command: commandArb(bytes), consistency: fc.constantFrom(...READ_CONSISTENCIES) }),
  );
}

export function clientResponseArb(bytes: boolean): fc.Arbitrary<ClientResponse> {
  const result = plainDataArb({ bytes });
  const okWithSlot: fc.Arbitrary<ClientOk> = fc.record({
    ok: fc.constant(true),
    slot: slotArb,
    result,
  });
  const okWithoutSlot: fc.Arbitrary<ClientOk> = fc.record({ ok: fc.constant(true), result });
  const failureWithLeader: fc.Arbitrary<ClientFailure> = fc.record({
    ok: fc.constant(false),
    error: fc.record({ code: errorCodeArb, message: errorTextArb, leader: nameArb }),
  });
  const busy: fc.Arbitrary<ClientFailure> = fc.record({
    ok: fc.constant(false),
    error: fc.record({
      code: fc.constant('BUSY' as const),
      message: errorTextArb,
      retryAfterMs: fc.integer({ min: 0, max: 60_000 }),
    }),
  });
  const sqlFailure: fc.Arbitrary<ClientFailure> = fc.record({
    ok: fc.constant(false),
    error: fc.record({
      code: fc.constant('BAD_REQUEST' as const),
      message: errorTextArb,
      sqlState: fc.stringMatching(/^[0-9A-Z]{5}$/),
    }),
  });
  const tooLarge: fc.Arbitrary<ClientFailure> = fc.record({
    ok: fc.constant(false),
    error: fc.record({
      code: fc.constant('BAD_REQUEST' as const),
      message: errorTextArb,
      limitBytes: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    }),
  });
  const failureWithoutLeader: fc.Arbitrary<ClientFailure> = fc.record({
    ok: fc.constant(false),
    error: fc.record({ code: errorCodeArb, message: errorTextArb }),
  });
  return fc.oneof(
    okWithSlot,
    okWithoutSlot,
    failureWithLeader,
    failureWithoutLeader,
    busy,
    sqlFailure,
    tooLarge,
  );
}

// ---------------------------------------------------------------------------------------
// Mutations, for fuzzing the decoders with almost-valid input.

/** Bytes that mean something to a msgpack decoder: headers of maps, arrays, ext, bin, str. */
const interestingByteArb = fc.oneof(
  fc.integer({ min: 0, max: 255 }),
  fc.constantFrom(
    0x00,
    0x7f,
    0x80,
    0x8f,
    0x90,
    0x9f,
    0xa0,
    0xbf,
    0xc0,
    0xc1,
    0xc2,
    0xc3,
    0xc4,
    0xc5,
    0xc6,
    0xc7,
    0xc8,
    0xc9,
    0xca,
    0xcb,
    0xcf,
    0xd3,
    0xd4,
    0xd5,
    0xd6,
    0xd7,
    0xd8,
    0xd9,
    0xda,
    0xdb,
    0xdc,
    0xdd,
    0xde,
    0xdf,
    0xe0,
    0xff,
    0x7b,
    0x20,
  ),
);

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip'), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('set'), at: fc.nat(), byte: interestingByteArb }),
  fc.record({
    kind: fc.constant('insert'),
    at: fc.nat(),
    bytes: fc.oneof(
      interestingByteArb.map((b) => Uint8Array.of(b)),
      fc.uint8Array({ minLength: 1, maxLength: 16 }),
    ),
  }),
  fc.record({ kind: fc.constant('delete'), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('truncate'), at: fc.nat() }),
);

export const mutationsArb: fc.Arbitrary<Mutation[]> = fc.array(mutationArb, {
  minLength: 1,
  maxLength: 6,
});

const jsonTokenArb = fc.oneof(
  fc.constantFrom(
    '{',
    '}',
    '[',
    ']',
    ':',
    ',',
    '"',
    '\\',
    ' ',
    '0',
    '-1',
    '1e999',
    'null',
    'true',
    '"__proto__"',
    '"constructor"',
    '"prototype"',
    '"op"',
    '"ok"',
    '\u0000',
    '\ud800',
  ),
  fc.string({ maxLength: 4 }),
  fc.string({ unit: 'binary', maxLength: 4 }),
);

export const textMutationArb: fc.Arbitrary<TextMutation> = fc.oneof(
  fc.record({ kind: fc.constant('insert'), at: fc.nat(), text: jsonTokenArb }),
  fc.record({ kind: fc.constant('delete'), at: fc.nat(), count: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ kind: fc.constant('truncate'), at: fc.nat() }),
);

export const textMutationsArb: fc.Arbitrary<TextMutation[]> = fc.array(textMutationArb, {
  minLength: 1,
  maxLength: 5,
});
