import {
  asDecodeError,
  createPackr,
  packChecked,
  resolveMaxMessageBytes,
  unpackStrict,
} from './codec.js';
import { DecodeError, EncodeError } from './errors.js';
import type { CodecOptions } from './limits.js';
import type { ClientRead, ClientResponse, ClientWrite, PlainData } from './messages.js';
import { toClientRead, toClientResponse, toClientWrite } from './validate.js';

/**
 * Client messages travel as msgpack or as JSON, with the same shape either way (the JSON
 * form is the public contract in @synod/client's README). A receiver answers in the
 * format it was asked in.
 */
export type WireFormat = 'msgpack' | 'json';

const OPEN_BRACE = 0x7b;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** JSON when the content type says so, or when the body's first non-blank byte is '{'. */
export function detectFormat(bytes: Uint8Array, contentType?: string): WireFormat {
  if (
    contentType !== undefined &&
    contentType.split(';')[0]?.trim().toLowerCase() === 'application/json'
  )
    return 'json';
  for (const byte of bytes) {
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) continue;
    return byte === OPEN_BRACE ? 'json' : 'msgpack';
  }
  return 'msgpack';
}

/** Byte strings have no JSON form; they are written as {"base64": "..."} in JSON replies. */
function toJsonValue(value: PlainData): unknown {
  if (value instanceof Uint8Array) return { base64: Buffer.from(value).toString('base64') };
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = toJsonValue(item as PlainData);
    return out;
  }
  return value;
}

export interface ClientCodec {
  readonly maxMessageBytes: number;
  encodeWrite(message: ClientWrite, format?: WireFormat): Uint8Array;
  encodeRead(message: ClientRead, format?: WireFormat): Uint8Array;
  encodeResponse(message: ClientResponse, format?: WireFormat): Uint8Array;
  decodeWrite(bytes: Uint8Array, contentType?: string): ClientWrite;
  decodeRead(bytes: Uint8Array, contentType?: string): ClientRead;
  decodeResponse(bytes: Uint8Array, contentType?: string): ClientResponse;
}

export function createClientCodec(options: CodecOptions = {}): ClientCodec {
  const maxMessageBytes = resolveMaxMessageBytes(options);
  const packr = createPackr();

  function encode(message: object, format: WireFormat): Uint8Array {
    if (format === 'msgpack') return packChecked(message, maxMessageBytes, packr);
    const bytes = utf8Encoder.encode(JSON.stringify(toJsonValue(message as PlainData)));
    if (bytes.length > maxMessageBytes) throw new EncodeError(bytes.length, maxMessageBytes);
    return bytes;
  }

  function parse(bytes: Uint8Array, contentType: string | undefined): unknown {
    if (detectFormat(bytes, contentType) === 'msgpack')
      return unpackStrict(bytes, maxMessageBytes, packr);
    if (bytes.length > maxMessageBytes) {
      throw new DecodeError(
        'TOO_LARGE',
        `message is ${bytes.length} bytes, over the limit of ${maxMessageBytes}`,
      );
    }
    try {
      return JSON.parse(utf8.decode(bytes));
    } catch (cause) {
      throw new DecodeError(
        'MALFORMED',
        `not a JSON document (${cause instanceof Error ? cause.message : String(cause)})`,
        '',
        { cause },
      );
    }
  }

  function decoder<T>(validate: (value: unknown) => T) {
    return (bytes: Uint8Array, contentType?: string): T => {
      const value = parse(bytes, contentType);
      try {
        return validate(value);
      } catch (error) {
        throw asDecodeError(error);
      }
    };
  }

  return {
    maxMessageBytes,
    encodeWrite: (message, format = 'msgpack') => encode(message, format),
    encodeRead: (message, format = 'msgpack') => encode(message, format),
    encodeResponse: (message, format = 'msgpack') => encode(message, format),
    decodeWrite: decoder(toClientWrite),
    decodeRead: decoder(toClientRead),
    decodeResponse: decoder(toClientResponse),
  };
}
