import type { StoreRecord } from '@synod/protocol';
import { Packr } from 'msgpackr';
import { describe, RecordDecodeError } from './errors.js';
import { toStoreRecord } from './record-shape.js';

/**
 * The same msgpackr configuration as @synod/protocol's codec (which does not export it): no
 * records extension, so a payload reads the same in any msgpack library; 64-bit integers as
 * BigInt, which validation refuses rather than losing precision; structuredClone exactly
 * false, which turns off msgpackr's id/pointer extensions; and copied byte strings, so a
 * recovered value does not pin the read buffer it came from.
 */
const packr = new Packr({
  useRecords: false,
  useBigIntExtension: true,
  mapsAsObjects: true,
  structuredClone: false,
  copyBuffers: true,
});

/**
 * The payload bytes of a record, without copying out of msgpackr's shared output buffer.
 * Internal: the caller must copy or consume the bytes before the next pack.
 * Throws TypeError for a record that is not well formed, so nothing malformed reaches disk.
 */
export function packRecord(record: StoreRecord): Uint8Array {
  let clean: StoreRecord;
  try {
    clean = toStoreRecord(record);
  } catch (error) {
    throw new TypeError(`cannot store an invalid record: ${describe(error)}`, { cause: error });
  }
  return packr.pack(clean);
}

/** A record's payload: one msgpack map with the record's fields. */
export function encodeRecord(record: StoreRecord): Uint8Array {
  // Copied: msgpackr hands out views of one shared buffer.
  return new Uint8Array(packRecord(record));
}

/** The record in a payload. Throws only RecordDecodeError, whatever the bytes. */
export function decodeRecord(bytes: Uint8Array): StoreRecord {
  if (!(bytes instanceof Uint8Array)) throw new RecordDecodeError('expected bytes');
  if (bytes.length === 0) throw new RecordDecodeError('empty payload');
  let values: unknown[];
  try {
    values = packr.unpackMultiple(bytes) as unknown[];
  } catch (cause) {
    throw new RecordDecodeError(`not a msgpack document (${describe(cause)})`, { cause });
  }
  if (values.length !== 1) {
    throw new RecordDecodeError(`expected one msgpack document, found ${values.length}`);
  }
  try {
    return toStoreRecord(values[0]);
  } catch (error) {
    if (error instanceof RecordDecodeError) throw error;
    // Validation throws RecordDecodeError by design; this keeps the promise if it ever does not.
    throw new RecordDecodeError(describe(error), { cause: error });
  }
}
