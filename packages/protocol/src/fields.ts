import { type Ballot, MAX_ROUND } from './ballot.js';
import { DecodeError } from './errors.js';
import { LIMITS } from './limits.js';
import type { Instance, PlainData } from './messages.js';
import { isValidName, nameProblem } from './names.js';

/**
 * Field readers for decoded documents. Each takes an untrusted value and a path for the
 * error, and returns a fresh, validated value or throws DecodeError('INVALID_FIELD').
 * Validated objects are rebuilt from their known fields only, so nothing a sender adds
 * (extra keys, `__proto__`, getters) reaches the rest of the program.
 */
export type Doc = Readonly<Record<string, unknown>>;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export function invalid(path: string, message: string): DecodeError {
  return new DecodeError('INVALID_FIELD', message, path);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (value instanceof Uint8Array) return 'bytes';
  if (typeof value === 'object' && !isPlainObject(value)) {
    return `a non-plain object (${(value as object).constructor?.name ?? 'no constructor'})`;
  }
  return typeof value;
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

export function isPlainObject(value: unknown): value is Doc {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function readDoc(value: unknown, path: string): Doc {
  if (!isPlainObject(value)) throw invalid(path, `expected an object, got ${typeName(value)}`);
  return value;
}

export function readString(
  doc: Doc,
  key: string,
  path: string,
  maxLength: number,
  minLength = 1,
): string {
  const value = doc[key];
  const at = join(path, key);
  if (typeof value !== 'string') throw invalid(at, `expected a string, got ${typeName(value)}`);
  if (value.length < minLength) throw invalid(at, `must be at least ${minLength} characters`);
  if (value.length > maxLength) throw invalid(at, `must be at most ${maxLength} characters`);
  return value;
}

export function readName(doc: Doc, key: string, path: string): string {
  const value = doc[key];
  if (!isValidName(value)) throw invalid(join(path, key), nameProblem(value) ?? 'invalid');
  return value;
}

/** A safe integer in [min, max]. */
export function readInt(
  doc: Doc,
  key: string,
  path: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const value = doc[key];
  const at = join(path, key);
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw invalid(at, `expected an integer, got ${typeName(value)}`);
  }
  if (value < min || value > max)
    throw invalid(at, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

export function readOptionalInt(
  doc: Doc,
  key: string,
  path: string,
  min: number,
): number | undefined {
  return doc[key] === undefined ? undefined : readInt(doc, key, path, min);
}

export function readBoolean(doc: Doc, key: string, path: string): boolean {
  const value = doc[key];
  if (typeof value !== 'boolean')
    throw invalid(join(path, key), `expected a boolean, got ${typeName(value)}`);
  return value;
}

export function readBytes(doc: Doc, key: string, path: string): Uint8Array {
  const value = doc[key];
  if (!(value instanceof Uint8Array))
    throw invalid(join(path, key), `expected bytes, got ${typeName(value)}`);
  return value;
}

export function readEnum<T extends string>(
  doc: Doc,
  key: string,
  path: string,
  allowed: readonly T[],
): T {
  const value = doc[key];
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalid(join(path, key), `expected one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** A ballot: a non-negative round and a node id (empty only for the zero ballot). */
export function readBallot(doc: Doc, key: string, path: string): Ballot {
  const at = join(path, key);
  const b = readDoc(doc[key], at);
  const round = readInt(b, 'round', at, 0, MAX_ROUND);
  const nodeId = b.nodeId;
  if (nodeId === '' && round === 0) return { round, nodeId };
  return { round, nodeId: readName(b, 'nodeId', at) };
}

export function readInstance(doc: Doc, key: string, path: string): Instance {
  const value = doc[key];
  if (typeof value === 'string') return readString(doc, key, path, LIMITS.maxKeyLength);
  if (typeof value === 'number') return readInt(doc, key, path, 0);
  throw invalid(
    join(path, key),
    `expected a slot (integer) or a key (string), got ${typeName(value)}`,
  );
}

export function readArray(
  doc: Doc,
  key: string,
  path: string,
  maxLength: number,
): readonly unknown[] {
  const value = doc[key];
  const at = join(path, key);
  if (!Array.isArray(value)) throw invalid(at, `expected an array, got ${typeName(value)}`);
  if (value.length > maxLength) throw invalid(at, `must have at most ${maxLength} elements`);
  return value;
}

export function readList<T>(
  doc: Doc,
  key: string,
  path: string,
  maxLength: number,
  item: (entry: Doc, at: string) => T,
): T[] {
  const at = join(path, key);
  return readArray(doc, key, path, maxLength).map((entry, i) =>
    item(readDoc(entry, join(at, i)), join(at, i)),
  );
}

/** Plain data: JSON values and byte strings, bounded in depth, with no prototype-bearing keys. */
export function readPlainData(value: unknown, path: string, depth = 0): PlainData {
  if (depth > LIMITS.maxDepth) throw invalid(path, `nested deeper than ${LIMITS.maxDepth} levels`);
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw invalid(path, 'numbers must be finite');
      return value;
    case 'object': {
      if (value === null || value instanceof Uint8Array) return value;
      if (Array.isArray(value))
        return value.map((item, i) => readPlainData(item, join(path, i), depth + 1));
      if (!isPlainObject(value)) throw invalid(path, 'expected plain data');
      const copy: Record<string, PlainData> = {};
      for (const key of Object.keys(value)) {
        if (FORBIDDEN_KEYS.has(key)) throw invalid(join(path, key), 'this key is not allowed');
        copy[key] = readPlainData(value[key], join(path, key), depth + 1);
      }
      return copy;
    }
    default:
      throw invalid(path, `expected plain data, got ${typeName(value)}`);
  }
}

export { join as joinPath };
