/**
 * Why a message could not be decoded. Codes are stable; messages are for people.
 * - TOO_LARGE: the encoded message is over the configured size limit.
 * - MALFORMED: the bytes are not a well-formed msgpack (or JSON) document.
 * - VERSION: the envelope's protocol version is not one this build speaks.
 * - UNKNOWN_TYPE: the envelope names a message type this build does not know.
 * - INVALID_FIELD: a field is missing, of the wrong type, or out of bounds.
 */
export type DecodeErrorCode =
  | 'TOO_LARGE'
  | 'MALFORMED'
  | 'VERSION'
  | 'UNKNOWN_TYPE'
  | 'INVALID_FIELD';

/** The only error a decoder ever throws. `path` locates the offending field (e.g. `ballot.round`). */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  readonly code: DecodeErrorCode;
  readonly path: string;

  constructor(code: DecodeErrorCode, message: string, path = '', options?: { cause?: unknown }) {
    super(path === '' ? message : `${path}: ${message}`, options);
    this.code = code;
    this.path = path;
  }
}

/** A group name or node id that is not a single NATS subject token of 1 to 64 safe characters. */
export class InvalidNameError extends Error {
  override readonly name = 'InvalidNameError';
  readonly kind: 'group' | 'node';
  readonly value: unknown;

  constructor(kind: 'group' | 'node', value: unknown, reason: string) {
    super(`invalid ${kind === 'group' ? 'group name' : 'node id'} ${describe(value)}: ${reason}`);
    this.kind = kind;
    this.value = value;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  return `(${value === null ? 'null' : typeof value})`;
}

/** A message this node tried to send is over the size limit. Nothing was sent. */
export class EncodeError extends Error {
  override readonly name = 'EncodeError';
  readonly code = 'TOO_LARGE';
  readonly size: number;
  readonly limit: number;

  constructor(size: number, limit: number) {
    super(`encoded message is ${size} bytes, over the limit of ${limit}`);
    this.size = size;
    this.limit = limit;
  }
}
