import { type Ballot, type Instance, isValidName, LIMITS, type StoreRecord } from '@synod/protocol';
import { RecordDecodeError } from './errors.js';

/**
 * Checks that an untrusted value is a store record and rebuilds it from its known fields.
 * Unknown fields are refused, not dropped: a field this build does not know may come from a
 * newer writer and carry meaning, and ignoring it could change what the acceptor recovers.
 */
export function toStoreRecord(value: unknown): StoreRecord {
  const doc = readObject(value, 'record');
  switch (doc.kind) {
    case 'promise':
      onlyKeys(doc, ['kind', 'instance', 'ballot']);
      return {
        kind: 'promise',
        instance: readInstance(doc.instance, 'instance'),
        ballot: readBallot(doc.ballot),
      };
    case 'promiseFrom':
      onlyKeys(doc, ['kind', 'fromSlot', 'ballot']);
      return {
        kind: 'promiseFrom',
        fromSlot: readNat(doc.fromSlot, 'fromSlot'),
        ballot: readBallot(doc.ballot),
      };
    case 'accept':
      onlyKeys(doc, ['kind', 'instance', 'ballot', 'value']);
      return {
        kind: 'accept',
        instance: readInstance(doc.instance, 'instance'),
        ballot: readBallot(doc.ballot),
        value: readBytes(doc.value, 'value'),
      };
    case 'chosen':
      onlyKeys(doc, ['kind', 'instance', 'value']);
      return {
        kind: 'chosen',
        instance: readInstance(doc.instance, 'instance'),
        value: readBytes(doc.value, 'value'),
      };
    case 'round':
      onlyKeys(doc, ['kind', 'round']);
      return { kind: 'round', round: readNat(doc.round, 'round') };
    case 'compact':
      onlyKeys(doc, ['kind', 'throughSlot']);
      return { kind: 'compact', throughSlot: readNat(doc.throughSlot, 'throughSlot') };
    default:
      throw new RecordDecodeError(`unknown record kind ${describeValue(doc.kind)}`);
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

type Doc = Readonly<Record<string, unknown>>;

function readObject(value: unknown, at: string): Doc {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RecordDecodeError(`${at}: expected an object, got ${describeValue(value)}`);
  }
  // Only plain objects: anything with another prototype did not come from a msgpack map.
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new RecordDecodeError(`${at}: expected a plain object`);
  }
  return value as Doc;
}

function onlyKeys(doc: Doc, allowed: readonly string[]): void {
  for (const key of Object.keys(doc)) {
    if (!allowed.includes(key)) {
      throw new RecordDecodeError(`unexpected field ${JSON.stringify(key.slice(0, 40))}`);
    }
  }
}

function readNat(value: unknown, at: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new RecordDecodeError(
      `${at}: expected a non-negative safe integer, got ${describeValue(value)}`,
    );
  }
  return value;
}

function readInstance(value: unknown, at: string): Instance {
  if (typeof value === 'number') return readNat(value, at);
  if (typeof value === 'string') {
    if (value.length < 1 || value.length > LIMITS.maxKeyLength) {
      throw new RecordDecodeError(`${at}: a key must have 1 to ${LIMITS.maxKeyLength} characters`);
    }
    // UTF-8 cannot carry a lone surrogate: it would come back as U+FFFD, another instance.
    if (LONE_SURROGATE.test(value)) {
      throw new RecordDecodeError(`${at}: a key must not contain a lone surrogate`);
    }
    return value;
  }
  throw new RecordDecodeError(`${at}: expected a slot or a key, got ${describeValue(value)}`);
}

function readBallot(value: unknown): Ballot {
  const doc = readObject(value, 'ballot');
  onlyKeys(doc, ['round', 'nodeId']);
  const round = readNat(doc.round, 'ballot.round');
  const nodeId = doc.nodeId;
  // The zero ballot is the only one with an empty node id (protocol's ZERO_BALLOT).
  if (round === 0 && nodeId === '') return { round, nodeId };
  if (!isValidName(nodeId)) {
    throw new RecordDecodeError(`ballot.nodeId: not a valid node id: ${describeValue(nodeId)}`);
  }
  return { round, nodeId };
}

function readBytes(value: unknown, at: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new RecordDecodeError(`${at}: expected bytes, got ${describeValue(value)}`);
  }
  // A plain Uint8Array over the same memory: callers compare values, and a Buffer is a subclass.
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return 'bytes';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 40));
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value;
}
