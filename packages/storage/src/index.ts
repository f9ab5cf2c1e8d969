export type { StoreRecord, StoreRecordKind } from '@synod/protocol';
export {
  CorruptStoreError,
  RecordDecodeError,
  StoreClosedError,
  StoreFailedError,
  StoreInUseError,
} from './errors.js';
export { DEFAULT_MAX_RECORD_BYTES, openFileStore } from './file-store.js';
export { openMemoryStore } from './memory-store.js';
export { decodeRecord, encodeRecord } from './record-codec.js';
export { readSnapshotFile, type SnapshotFile, writeSnapshotFile } from './snapshot-file.js';
export type {
  AcceptorStore,
  FileStore,
  FileStoreOptions,
  FileStoreTestHooks,
  MemoryStore,
  StoreStats,
} from './types.js';
