import { Packr } from 'msgpackr';
import { DecodeError, EncodeError } from './errors.js';
import { type CodecOptions, LIMITS } from './limits.js';
import { type PeerMessage, PROTOCOL_VERSION } from './messages.js';
import { toPeerMessage } from './validate.js';

/**
 * One msgpackr configuration for every node (DEPENDENCIES.md): no records, so a message
 * decodes the same in any msgpack library; 64-bit integers as BigInt, which validation
 * rejects where it expects a safe integer rather than silently losing precision.
 * structuredClone must be `false`, not left unset: msgpackr only refuses its id/pointer
 * extensions (0x69/0x70) when it is exactly false, and with them a few hundred bytes can
 * encode a shared or cyclic graph that validation would walk exponentially.
 */
export function createPackr(): Packr {
  return new Packr({
    useRecords: false,
    useBigIntExtension: true,
    mapsAsObjects: true,
    structuredClone: false,
    // Decoded byte strings get their own memory: an acceptor keeps values for a long time,
    // and a view would pin the whole received message (up to 1 MiB) behind each one.
    copyBuffers: true,
  });
}

const sharedPackr = createPackr();

/** Unpacks exactly one msgpack document; anything the library throws becomes DecodeError. */
export function unpackStrict(
  bytes: Uint8Array,
  maxBytes: number,
  packr: Packr = sharedPackr,
): unknown {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError('MALFORMED', 'expected bytes');
  if (bytes.length > maxBytes) {
    throw new DecodeError(
      'TOO_LARGE',
      `message is ${bytes.length} bytes, over the limit of ${maxBytes}`,
    );
  }
  if (bytes.length === 0) throw new DecodeError('MALFORMED', 'empty message');
  let values: unknown[];
  try {
    values = packr.unpackMultiple(bytes) as unknown[];
  } catch (cause) {
    throw new DecodeError('MALFORMED', `not a msgpack document (${describeCause(cause)})`, '', {
      cause,
    });
  }
  if (values.length !== 1)
    throw new DecodeError('MALFORMED', `expected one msgpack document, found ${values.length}`);
  return values[0];
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message.slice(0, 200);
  return String(cause).slice(0, 200);
}

export function packChecked(
  value: unknown,
  maxBytes: number,
  packr: Packr = sharedPackr,
): Uint8Array {
  const bytes = packr.pack(value);
  if (bytes.length > maxBytes) throw new EncodeError(bytes.length, maxBytes);
  return bytes;
}

/** Encodes and decodes peer messages. Decoding throws only DecodeError. */
export interface PeerCodec {
  readonly maxMessageBytes: number;
  encode(message: PeerMessage): Uint8Array;
  decode(bytes: Uint8Array): PeerMessage;
}

/** The configured size limit, or RangeError: a NaN or infinite limit would disable the bound. */
export function resolveMaxMessageBytes(options: CodecOptions): number {
  const maxMessageBytes = options.maxMessageBytes ?? LIMITS.maxMessageBytes;
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < 64) {
    throw new RangeError(
      `maxMessageBytes must be an integer of at least 64, got ${maxMessageBytes}`,
    );
  }
  return maxMessageBytes;
}

export function createPeerCodec(options: CodecOptions = {}): PeerCodec {
  const maxMessageBytes = resolveMaxMessageBytes(options);
  const packr = createPackr();
  return {
    maxMessageBytes,
    encode: (message) => packChecked({ v: PROTOCOL_VERSION, ...message }, maxMessageBytes, packr),
    decode: (bytes) => {
      const value = unpackStrict(bytes, maxMessageBytes, packr);
      try {
        return toPeerMessage(value);
      } catch (error) {
        throw asDecodeError(error);
      }
    },
  };
}

/** Validation code throws DecodeError by design; this keeps the promise if it ever does not. */
export function asDecodeError(error: unknown): DecodeError {
  if (error instanceof DecodeError) return error;
  return new DecodeError('MALFORMED', `could not decode (${describeCause(error)})`, '', {
    cause: error,
  });
}
