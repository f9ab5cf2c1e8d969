import type { StoreRecord } from '@synod/protocol';
import { StoreClosedError } from './errors.js';
import { decodeRecord, packRecord } from './record-codec.js';
import type { MemoryStore, StoreStats } from './types.js';

/**
 * A store that keeps records in memory: durable for the life of the process, for embedding
 * and tests. Records go through the file store's codec, so it refuses what the file store
 * refuses, and keeps its own copies: a caller reusing a buffer cannot change a stored value.
 */
export function openMemoryStore(initial: readonly StoreRecord[] = []): MemoryStore {
  return new MemoryLog(initial.map(copyRecord));
}

function copyRecord(record: StoreRecord): StoreRecord {
  return decodeRecord(packRecord(record));
}

class MemoryLog implements MemoryStore {
  readonly recovered: readonly StoreRecord[];
  readonly #durable: StoreRecord[];
  #appends = 0;
  #records = 0;
  #closed = false;

  constructor(initial: StoreRecord[]) {
    this.recovered = Object.freeze([...initial]);
    this.#durable = initial;
  }

  get stats(): StoreStats {
    return { appends: this.#appends, records: this.#records, fsyncs: 0 };
  }

  async append(records: readonly StoreRecord[]): Promise<void> {
    if (this.#closed) throw new StoreClosedError();
    // All copied before any is kept, so a malformed record stores none of its batch.
    const copies = records.map(copyRecord);
    for (const copy of copies) this.#durable.push(copy);
    this.#appends += 1;
    this.#records += copies.length;
  }

  async rewrite(records: readonly StoreRecord[]): Promise<void> {
    if (this.#closed) throw new StoreClosedError();
    const copies = records.map(copyRecord);
    this.#durable.length = 0;
    for (const copy of copies) this.#durable.push(copy);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  durableRecords(): readonly StoreRecord[] {
    return Object.freeze([...this.#durable]);
  }
}
