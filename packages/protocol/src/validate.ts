import { DecodeError } from './errors.js';
import {
  type Doc,
  invalid,
  joinPath,
  readBallot,
  readBoolean,
  readBytes,
  readDoc,
  readEnum,
  readInstance,
  readInt,
  readList,
  readName,
  readOptionalInt,
  readPlainData,
  readString,
} from './fields.js';
import { LIMITS } from './limits.js';
import {
  type AcceptedEntry,
  type ChosenEntry,
  type ClientRead,
  type ClientResponse,
  type ClientWrite,
  type Command,
  ERROR_CODES,
  type ErrorBody,
  PEER_MESSAGE_TYPES,
  type PeerMessage,
  type PeerMessageType,
  type PlainData,
  PROTOCOL_VERSION,
  READ_CONSISTENCIES,
} from './messages.js';

const OP = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const CLIENT_ID = /^[A-Za-z0-9_.:@-]+$/;

function acceptedEntry(doc: Doc, path: string): AcceptedEntry {
  return {
    instance: readInstance(doc, 'instance', path),
    ballot: readBallot(doc, 'ballot', path),
    value: readBytes(doc, 'value', path),
  };
}

function chosenEntry(doc: Doc, path: string): ChosenEntry {
  return { slot: readInt(doc, 'slot', path, 0), value: readBytes(doc, 'value', path) };
}

export function readErrorBody(doc: Doc, path: string): ErrorBody {
  const code = readEnum(doc, 'code', path, ERROR_CODES);
  const message = readString(doc, 'message', path, LIMITS.maxErrorMessageLength, 0);
  return {
    code,
    message,
    ...(doc.leader === undefined ? {} : { leader: readName(doc, 'leader', path) }),
    ...(doc.retryAfterMs === undefined
      ? {}
      : { retryAfterMs: readInt(doc, 'retryAfterMs', path, 0, 60_000) }),
    ...(doc.sqlState === undefined ? {} : { sqlState: readSqlState(doc, path) }),
    ...(doc.limitBytes === undefined
      ? {}
      : { limitBytes: readInt(doc, 'limitBytes', path, 0, 2 ** 31 - 1) }),
  };
}

function readSqlState(doc: Doc, path: string): string {
  const state = readString(doc, 'sqlState', path, 5, 5);
  if (!/^[0-9A-Z]{5}$/.test(state))
    throw invalid(joinPath(path, 'sqlState'), 'must be five digits or capital letters');
  return state;
}

type Body<M> = M extends PeerMessage ? Omit<M, 'type' | 'group' | 'from'> : never;
type BodyReaders = {
  [T in PeerMessageType]: (doc: Doc) => Body<Extract<PeerMessage, { type: T }>>;
};

// One reader per message type. Paths are top-level field names, so errors read "ballot.round: ...".
const BODY: BodyReaders = {
  prepare: (d) => ({
    ballot: readBallot(d, 'ballot', ''),
    instance: readInstance(d, 'instance', ''),
  }),
  prepareLog: (d) => ({
    ballot: readBallot(d, 'ballot', ''),
    fromSlot: readInt(d, 'fromSlot', '', 0),
  }),
  promise: (d) => {
    const body = {
      ballot: readBallot(d, 'ballot', ''),
      ok: readBoolean(d, 'ok', ''),
      promised: readBallot(d, 'promised', ''),
      accepted: readList(d, 'accepted', '', LIMITS.maxEntries, acceptedEntry),
      more: readBoolean(d, 'more', ''),
    };
    const compactedThrough = readOptionalInt(d, 'compactedThrough', '', 0);
    const fromSlot = readOptionalInt(d, 'fromSlot', '', 0);
    const withCompaction = {
      ...body,
      ...(compactedThrough === undefined ? {} : { compactedThrough }),
      ...(fromSlot === undefined ? {} : { fromSlot }),
    };
    return d.instance === undefined
      ? withCompaction
      : { ...withCompaction, instance: readInstance(d, 'instance', '') };
  },
  accept: (d) => {
    const commitIndex = readOptionalInt(d, 'commitIndex', '', -1);
    const body = {
      ballot: readBallot(d, 'ballot', ''),
      instance: readInstance(d, 'instance', ''),
      value: readBytes(d, 'value', ''),
    };
    return commitIndex === undefined ? body : { ...body, commitIndex };
  },
  accepted: (d) => {
    const body = {
      ballot: readBallot(d, 'ballot', ''),
      instance: readInstance(d, 'instance', ''),
      ok: readBoolean(d, 'ok', ''),
      promised: readBallot(d, 'promised', ''),
    };
    return d.value === undefined ? body : { ...body, value: readBytes(d, 'value', '') };
  },
  decide: (d) => ({
    instance: readInstance(d, 'instance', ''),
    ballot: readBallot(d, 'ballot', ''),
    value: readBytes(d, 'value', ''),
  }),
  heartbeat: (d) => ({
    ballot: readBallot(d, 'ballot', ''),
    commitIndex: readInt(d, 'commitIndex', '', -1),
  }),
  catchupRequest: (d) => {
    const body = {
      fromSlot: readInt(d, 'fromSlot', '', 0),
      maxEntries: readInt(d, 'maxEntries', '', 1, LIMITS.maxEntries),
    };
    if (d.snapshot === undefined) return body;
    const s = readDoc(d.snapshot, 'snapshot');
    return {
      ...body,
      snapshot: {
        throughSlot: readInt(s, 'throughSlot', 'snapshot', 0),
        offset: readInt(s, 'offset', 'snapshot', 0),
      },
    };
  },
  catchupResponse: (d) => {
    const body = {
      entries: readList(d, 'entries', '', LIMITS.maxEntries, chosenEntry),
      commitIndex: readInt(d, 'commitIndex', '', -1),
    };
    if (d.snapshot === undefined) return body;
    const s = readDoc(d.snapshot, 'snapshot');
    const chunk = {
      throughSlot: readInt(s, 'throughSlot', 'snapshot', 0),
      offset: readInt(s, 'offset', 'snapshot', 0),
      total: readInt(s, 'total', 'snapshot', 1),
      bytes: readBytes(s, 'bytes', 'snapshot'),
    };
    if (chunk.offset + chunk.bytes.length > chunk.total)
      throw invalid('snapshot', 'a chunk reaches past the snapshot total size');
    return { ...body, snapshot: chunk };
  },
  highestAcceptedQuery: (d) => ({ requestId: readInt(d, 'requestId', '', 0) }),
  highestAcceptedAnswer: (d) => ({
    requestId: readInt(d, 'requestId', '', 0),
    slot: readInt(d, 'slot', '', -1),
  }),
  readIndexCheck: (d) => ({
    ballot: readBallot(d, 'ballot', ''),
    requestId: readInt(d, 'requestId', '', 0),
  }),
  readIndexAnswer: (d) => ({
    ballot: readBallot(d, 'ballot', ''),
    requestId: readInt(d, 'requestId', '', 0),
    promised: readBallot(d, 'promised', ''),
  }),
  error: (d) => readErrorBody(d, ''),
};

/** JSON.stringify throws on BigInt (msgpack 64-bit integers decode to BigInt); never let it. */
function show(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return typeof value;
  }
}

/** Validates a decoded peer document (the `{v, type, group, from, ...}` envelope and its body). */
export function toPeerMessage(value: unknown): PeerMessage {
  const doc = readDoc(value, '');
  if (doc.v !== PROTOCOL_VERSION) {
    throw new DecodeError(
      'VERSION',
      `unsupported protocol version ${show(doc.v)}; this build speaks ${PROTOCOL_VERSION}`,
      'v',
    );
  }
  const type = doc.type;
  if (typeof type !== 'string' || !(PEER_MESSAGE_TYPES as readonly string[]).includes(type)) {
    throw new DecodeError('UNKNOWN_TYPE', `unknown message type ${show(type)}`, 'type');
  }
  const group = readName(doc, 'group', '');
  const from = readName(doc, 'from', '');
  const body = BODY[type as PeerMessageType](doc);
  return { type, group, from, ...body } as PeerMessage;
}

export function readCommand(doc: Doc, key: string, path: string): Command {
  const at = joinPath(path, key);
  const command = readDoc(doc[key], at);
  const op = command.op;
  if (typeof op !== 'string' || !OP.test(op)) {
    throw invalid(
      joinPath(at, 'op'),
      'expected an operation name (a letter, then letters, digits or _; at most 64)',
    );
  }
  return readPlainData(command, at) as Command;
}

export function toClientWrite(value: unknown): ClientWrite {
  const doc = readDoc(value, '');
  const clientId = readString(doc, 'clientId', '', LIMITS.maxClientIdLength);
  if (!CLIENT_ID.test(clientId))
    throw invalid('clientId', 'may contain only letters, digits and _ . : @ -');
  return { clientId, seq: readInt(doc, 'seq', '', 0), command: readCommand(doc, 'command', '') };
}

export function toClientRead(value: unknown): ClientRead {
  const doc = readDoc(value, '');
  const command = readCommand(doc, 'command', '');
  if (doc.consistency === undefined) return { command };
  return { command, consistency: readEnum(doc, 'consistency', '', READ_CONSISTENCIES) };
}

export function toClientResponse(value: unknown): ClientResponse {
  const doc = readDoc(value, '');
  if (readBoolean(doc, 'ok', '')) {
    const result: PlainData = doc.result === undefined ? null : readPlainData(doc.result, 'result');
    const slot = readOptionalInt(doc, 'slot', '', 0);
    return slot === undefined ? { ok: true, result } : { ok: true, slot, result };
  }
  return { ok: false, error: readErrorBody(readDoc(doc.error, 'error'), 'error') };
}
