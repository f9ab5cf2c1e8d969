import { isNoop } from '@synod/actors';
import { isMembershipValue, type Value } from '@synod/protocol';

/** A client command of the simulated key-value store. (client, seq) makes every value unique. */
export interface KvWrite {
  readonly client: string;
  readonly seq: number;
  readonly op: 'put' | 'append';
  readonly key: string;
  readonly value: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeWrite(write: KvWrite): Value {
  return encoder.encode(JSON.stringify(write));
}

export function decodeWrite(value: Value): KvWrite {
  return JSON.parse(decoder.decode(value)) as KvWrite;
}

export function hex(value: Value): string {
  return Buffer.from(value).toString('hex');
}

/** The state machine each simulated node applies its delivered log to. */
export class KvStore {
  readonly #data = new Map<string, string>();
  /** The last (client, seq) applied per client: a retried write is applied once. */
  readonly #lastSeq = new Map<string, number>();
  /**
   * Ghost state for the checkers, never read by the store: what every slot held (hex), and
   * where each write was applied. It travels inside snapshots, so a node that skipped slots
   * by installing one can still be checked for agreement, durability and applied-once.
   */
  readonly ghostLog = new Map<number, string>();
  readonly ghostApplied = new Map<string, number>();

  /**
   * Applies a delivered value; false when it is a no-op or a write this client already
   * made (a retry chosen again, or an abandoned write overtaken by the client's next one).
   */
  apply(value: Value, slot: number): boolean {
    this.ghostLog.set(slot, hex(value));
    if (isNoop(value) || isMembershipValue(value)) return false;
    const write = decodeWrite(value);
    if (write.seq <= (this.#lastSeq.get(write.client) ?? -1)) return false;
    this.#lastSeq.set(write.client, write.seq);
    const current = this.#data.get(write.key) ?? '';
    this.#data.set(write.key, write.op === 'put' ? write.value : current + write.value);
    this.ghostApplied.set(hex(value), slot);
    return true;
  }

  get(key: string): string {
    return this.#data.get(key) ?? '';
  }

  /** The whole state, as bytes a peer can install. */
  snapshot(): Uint8Array {
    return encoder.encode(
      JSON.stringify({
        data: [...this.#data],
        lastSeq: [...this.#lastSeq],
        ghostLog: [...this.ghostLog],
        ghostApplied: [...this.ghostApplied],
      }),
    );
  }

  static restore(bytes: Uint8Array): KvStore {
    const doc = JSON.parse(decoder.decode(bytes)) as {
      data: [string, string][];
      lastSeq: [string, number][];
      ghostLog: [number, string][];
      ghostApplied: [string, number][];
    };
    const store = new KvStore();
    for (const [k, v] of doc.data) store.#data.set(k, v);
    for (const [k, v] of doc.lastSeq) store.#lastSeq.set(k, v);
    for (const [k, v] of doc.ghostLog) store.ghostLog.set(k, v);
    for (const [k, v] of doc.ghostApplied) store.ghostApplied.set(k, v);
    return store;
  }
}
