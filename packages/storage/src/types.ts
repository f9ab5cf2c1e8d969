import type { StoreRecord } from '@synod/protocol';

/** Counters of this session (records recovered at open are not counted). */
export interface StoreStats {
  /** append() calls that became durable. */
  readonly appends: number;
  /** Records that became durable. */
  readonly records: number;
  /** fsyncs issued to make appends durable (group commit makes this far below `appends`). */
  readonly fsyncs: number;
}

/** Durable acceptor state: an append-only sequence of records, replayed at open. */
export interface AcceptorStore {
  /** Every durable record, in append order, as recovered at open. */
  readonly recovered: readonly StoreRecord[];
  /**
   * Resolves once every given record is durable (fsynced); appends that arrive while an fsync
   * runs share the next one (group commit). Order is kept: a record is durable only after
   * every record appended before it. Rejects with StoreClosedError after close, with
   * StoreFailedError once a write or fsync has failed, and with TypeError or RangeError
   * (storing nothing) when a record is malformed or too large.
   */
  append(records: readonly StoreRecord[]): Promise<void>;
  /**
   * Replaces the whole content with `records`, atomically (a crash leaves the old content or
   * the new, never a mix), in order with appends: appends made before the call land first
   * and are then superseded, appends made after it follow the new content. For compaction:
   * `records` must recover the same state as everything they replace.
   */
  rewrite(records: readonly StoreRecord[]): Promise<void>;
  /** Lets appends already made finish, then releases the store. Idempotent. */
  close(): Promise<void>;
  readonly stats: StoreStats;
}

/** A store kept in memory. Durable for as long as the process lives. */
export interface MemoryStore extends AcceptorStore {
  /** Everything recovered or appended, in order: what a store reopened from it would recover. */
  durableRecords(): readonly StoreRecord[];
}

export interface FileStore extends AcceptorStore {
  readonly path: string;
  /** Bytes of a torn final write that recovery cut off at open (0 when the file was clean). */
  readonly droppedTailBytes: number;
}

export interface FileStoreTestHooks {
  /** Runs after a batch is written and before it is fsynced; a rejection fails the fsync. */
  readonly beforeSync?: () => Promise<void>;
}

export interface FileStoreOptions {
  /** fsync every batch, the file at recovery and its directory at creation. Default true; false only for tests that say so. */
  readonly fsync?: boolean;
  /** Largest record payload written or read, in bytes. Default 2 MiB. */
  readonly maxRecordBytes?: number;
  /** For tests only: lets a test hold or fail an fsync. */
  readonly testHooks?: FileStoreTestHooks;
}
