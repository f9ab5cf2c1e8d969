/**
 * The store's typed errors. Every one sets `name`, so a caller can tell them apart after
 * they cross a boundary that loses the class (a worker, a log line).
 */

/**
 * The log cannot be trusted: a record in its middle is damaged, or a record with good
 * checksums does not decode. The store refuses to open rather than guess, because an acceptor
 * that silently forgets a promise or an acceptance can break consensus. The file is left as
 * it was, for an operator to inspect.
 */
export class CorruptStoreError extends Error {
  override readonly name = 'CorruptStoreError';
  readonly path: string;
  /** Byte offset of the first record (or header) that could not be trusted. */
  readonly offset: number;
  /** What is wrong, in words; the message adds the path, the offset and what to do. */
  readonly reason: string;

  constructor(path: string, offset: number, reason: string, options?: { cause?: unknown }) {
    super(`${path}: refusing to start: byte ${offset}: ${reason}`, options);
    this.path = path;
    this.offset = offset;
    this.reason = reason;
  }
}

/** The store was closed; nothing more can be appended. */
export class StoreClosedError extends Error {
  override readonly name = 'StoreClosedError';

  constructor(message = 'the store is closed') {
    super(message);
  }
}

/**
 * A write or fsync failed, so the store stopped acknowledging: after a failed fsync the
 * kernel may have dropped the dirty pages, and retrying could report success for bytes that
 * are not on disk. Every later append rejects with this error; reopen the store to recover.
 */
export class StoreFailedError extends Error {
  override readonly name = 'StoreFailedError';

  constructor(cause: unknown) {
    super(`the store could not persist a write and accepts no more appends (${describe(cause)})`, {
      cause,
    });
  }
}

/** The file is already open as a store in this process; two writers would interleave frames. */
export class StoreInUseError extends Error {
  override readonly name = 'StoreInUseError';
  readonly path: string;

  constructor(path: string) {
    super(`${path} is already open as an acceptor store in this process`);
    this.path = path;
  }
}

/** A record payload that is not a valid store record. The only error decodeRecord throws. */
export class RecordDecodeError extends Error {
  override readonly name = 'RecordDecodeError';
  readonly reason: string;

  constructor(reason: string, options?: { cause?: unknown }) {
    super(`not a valid store record: ${reason}`, options);
    this.reason = reason;
  }
}

export function describe(cause: unknown): string {
  if (cause instanceof Error) return cause.message.slice(0, 200);
  return String(cause).slice(0, 200);
}
