// Shared helpers for the protocol tests: run counts, normalisation of decoded values,
// and the invariants every decode outcome must satisfy.
import { expect } from 'vitest';
import {
  createPeerCodec,
  DecodeError,
  type DecodeErrorCode,
  LIMITS,
  type PeerMessage,
} from '../src/index.js';

/** fast-check runs per property: 10,000 on CI, 2,000 locally, FC_NUM_RUNS overrides both. */
export const NUM_RUNS = Number(process.env.FC_NUM_RUNS ?? (process.env.CI ? 10_000 : 2_000));

/** Per-test timeout for properties that run NUM_RUNS cases (2 shared cores on CI). */
export const PROPERTY_TIMEOUT_MS = 300_000;

/** No single decode of a few KB may take longer than this; a longer one counts as a hang. */
export const HANG_MS = 2_000;

export const DECODE_ERROR_CODES: readonly DecodeErrorCode[] = [
  'TOO_LARGE',
  'MALFORMED',
  'VERSION',
  'UNKNOWN_TYPE',
  'INVALID_FIELD',
];

export const FORBIDDEN_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

export const utf8 = new TextEncoder();

/**
 * A deep copy in which every byte string (msgpackr hands out Buffers) is a plain
 * Uint8Array and every object is a plain object with the same own keys, including keys
 * whose value is undefined, so toStrictEqual compares contents and key sets only.
 * -0 becomes 0: msgpackr writes -0 as the integer 0 and JSON.stringify(-0) is "0".
 */
export function normalise(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (value instanceof Uint8Array) return Uint8Array.from(value);
  if (Array.isArray(value)) return value.map(normalise);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      Object.defineProperty(out, key, {
        value: normalise((value as Record<string, unknown>)[key]),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return value;
}

export type Outcome<T> =
  | { ok: true; value: T; ms: number }
  | { ok: false; error: DecodeError; ms: number };

/**
 * Runs a decode and classifies it. Any exception that is not a DecodeError with one of
 * the documented codes fails the calling test, as does a decode that takes over HANG_MS.
 */
export function decodeOutcome<T>(decode: () => T): Outcome<T> {
  const start = performance.now();
  let outcome: Outcome<T>;
  try {
    const value = decode();
    outcome = { ok: true, value, ms: performance.now() - start };
  } catch (error) {
    const ms = performance.now() - start;
    if (!(error instanceof DecodeError)) {
      throw new Error(`decode threw something other than DecodeError: ${String(error)}`, {
        cause: error,
      });
    }
    expect(DECODE_ERROR_CODES).toContain(error.code);
    expect(error.name).toBe('DecodeError');
    outcome = { ok: false, error, ms };
  }
  expect(outcome.ms).toBeLessThan(HANG_MS);
  return outcome;
}

/** Runs `fn`, which must throw a DecodeError; returns it. */
export function decodeErrorOf(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (error) {
    if (error instanceof DecodeError) return error;
    throw new Error(`expected a DecodeError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected a DecodeError, but decoding succeeded');
}

/**
 * Walks a decoded value and fails if any object in it has a prototype other than
 * Object.prototype (arrays: Array.prototype), an own key `__proto__`, `constructor` or
 * `prototype`, or an inherited `polluted` property.
 */
export function expectNoInjectedPrototypes(value: unknown, path = '$'): void {
  if (value === null || typeof value !== 'object') return;
  if (value instanceof Uint8Array) return;
  const proto: unknown = Object.getPrototypeOf(value);
  if (Array.isArray(value)) {
    expect(proto, `${path} prototype`).toBe(Array.prototype);
    value.forEach((item, i) => {
      expectNoInjectedPrototypes(item, `${path}[${i}]`);
    });
    return;
  }
  expect(proto, `${path} prototype`).toBe(Object.prototype);
  const inherits = 'polluted' in value && !Object.hasOwn(value, 'polluted');
  expect(inherits, `${path} inherits "polluted"`).toBe(false);
  for (const key of FORBIDDEN_KEYS) {
    expect(Object.hasOwn(value, key), `${path} has own key ${key}`).toBe(false);
  }
  for (const key of Object.keys(value)) {
    expectNoInjectedPrototypes((value as Record<string, unknown>)[key], `${path}.${key}`);
  }
}

/** What the global prototypes look like; compare before and after decoding hostile input. */
export function prototypeSnapshot(): Record<string, string[]> {
  return {
    object: Object.getOwnPropertyNames(Object.prototype).sort(),
    array: Object.getOwnPropertyNames(Array.prototype).sort(),
    function: Object.getOwnPropertyNames(Function.prototype).sort(),
    string: Object.getOwnPropertyNames(String.prototype).sort(),
  };
}

export function expectGlobalsUnpolluted(before: Record<string, string[]>): void {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty('polluted');
  expect(prototypeSnapshot()).toStrictEqual(before);
}

/** Byte-level mutations of an encoded message. Positions are taken modulo the length. */
export type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly mask: number }
  | { readonly kind: 'set'; readonly at: number; readonly byte: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'delete'; readonly at: number; readonly count: number }
  | { readonly kind: 'truncate'; readonly at: number };

export function mutate(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let bytes = Uint8Array.from(input);
  for (const m of mutations) {
    const at = bytes.length === 0 ? 0 : m.at % bytes.length;
    switch (m.kind) {
      case 'flip':
        if (bytes.length > 0) bytes[at] = (bytes[at] ?? 0) ^ m.mask;
        break;
      case 'set':
        if (bytes.length > 0) bytes[at] = m.byte;
        break;
      case 'insert': {
        const out = new Uint8Array(bytes.length + m.bytes.length);
        out.set(bytes.subarray(0, at), 0);
        out.set(m.bytes, at);
        out.set(bytes.subarray(at), at + m.bytes.length);
        bytes = out;
        break;
      }
      case 'delete': {
        const end = Math.min(bytes.length, at + m.count);
        const out = new Uint8Array(bytes.length - (end - at));
        out.set(bytes.subarray(0, at), 0);
        out.set(bytes.subarray(end), at);
        bytes = out;
        break;
      }
      case 'truncate':
        bytes = bytes.subarray(0, at);
        break;
    }
  }
  return bytes;
}

/** Character-level mutations of a JSON text (or any string). */
export type TextMutation =
  | { readonly kind: 'insert'; readonly at: number; readonly text: string }
  | { readonly kind: 'delete'; readonly at: number; readonly count: number }
  | { readonly kind: 'truncate'; readonly at: number };

export function mutateText(input: string, mutations: readonly TextMutation[]): string {
  let text = input;
  for (const m of mutations) {
    const at = text.length === 0 ? 0 : m.at % (text.length + 1);
    switch (m.kind) {
      case 'insert':
        text = text.slice(0, at) + m.text + text.slice(at);
        break;
      case 'delete':
        text = text.slice(0, at) + text.slice(at + m.count);
        break;
      case 'truncate':
        text = text.slice(0, at);
        break;
    }
  }
  return text;
}

/**
 * A valid peer message whose encoding is exactly `size` bytes: an error message with a
 * text of the right length for small sizes, a decide message with a large value for big ones.
 */
export function peerMessageOfSize(size: number): { message: PeerMessage; bytes: Uint8Array } {
  const encoder = createPeerCodec({ maxMessageBytes: 8 * 1024 * 1024 });
  const makers: { max: number; make: (n: number) => PeerMessage }[] = [
    {
      max: LIMITS.maxErrorMessageLength,
      make: (n) => ({
        type: 'error',
        group: 'g',
        from: 'n1',
        code: 'TIMEOUT',
        message: 'm'.repeat(n),
      }),
    },
    {
      max: Number.POSITIVE_INFINITY,
      make: (n) => ({
        type: 'decide',
        group: 'g',
        from: 'n1',
        instance: 0,
        ballot: { round: 1, nodeId: 'n1' },
        value: new Uint8Array(n),
      }),
    },
  ];
  for (const { max, make } of makers) {
    // Header widths grow with the length; search the candidates around the estimate.
    const guess = size - encoder.encode(make(0)).length;
    for (let n = Math.max(0, guess - 8); n <= Math.min(max, guess + 8); n++) {
      const message = make(n);
      const bytes = encoder.encode(message);
      if (bytes.length === size) return { message, bytes };
    }
  }
  throw new Error(`no peer message of exactly ${size} bytes`);
}
