import { StoreFailedError } from './errors.js';

/**
 * Largest batch written by one write call. Appends that queued during a slow fsync are split
 * into several write+fsync rounds beyond it, so memory for a batch stays bounded (one append
 * is never split: its frames go out in one round).
 */
const MAX_GROUP_COMMIT_BYTES = 8 * 1024 * 1024;

/** Writes the bytes and makes them durable; resolves only once they are. */
export type PersistBatch = (bytes: Uint8Array) => Promise<void>;

interface Waiter {
  /** Runs alone, in order with the appends, instead of writing frames (a file rewrite). */
  readonly task?: () => Promise<void>;
  readonly frames: readonly Uint8Array[];
  readonly bytes: number;
  readonly records: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit: the first append starts a round; appends that arrive while a round's write
 * and fsync run wait, then all go out together in the next round's single write and single
 * fsync. Rounds run one at a time and in submission order, so a record is acknowledged only
 * after every record submitted before it is durable.
 */
export class GroupCommitter {
  readonly #persist: PersistBatch;
  #pending: Waiter[] = [];
  #running: Promise<void> | undefined;
  #failure: StoreFailedError | undefined;
  #appends = 0;
  #records = 0;

  constructor(persist: PersistBatch) {
    this.#persist = persist;
  }

  get appends(): number {
    return this.#appends;
  }

  get records(): number {
    return this.#records;
  }

  /** Resolves once the frames (and everything submitted before them) are durable. */
  submit(frames: readonly Uint8Array[], records: number): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    let bytes = 0;
    for (const frame of frames) bytes += frame.length;
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ frames, bytes, records, resolve, reject });
      this.#running ??= this.#drain();
    });
  }

  /**
   * Runs `task` after every append submitted before it is durable and before any submitted
   * after it is written: nothing else touches the file meanwhile. A failing task fails the
   * store, like a failing fsync.
   */
  exclusive(task: () => Promise<void>): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ task, frames: [], bytes: 0, records: 0, resolve, reject });
      this.#running ??= this.#drain();
    });
  }

  /** Resolves once everything submitted so far has been settled (made durable or rejected). */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #drain(): Promise<void> {
    // Yield once, so every append made in the same tick as the first joins its round.
    await Promise.resolve();
    while (this.#pending.length > 0) {
      const batch = this.#takeBatch();
      const task = batch[0]!.task;
      try {
        if (task !== undefined) await task();
        else {
          const bytes = concat(batch);
          if (bytes.length > 0) await this.#persist(bytes);
        }
      } catch (cause) {
        // A store that cannot persist must stop acknowledging: fail this round and every
        // append queued behind it, which can no longer become durable in order.
        this.#failure = new StoreFailedError(cause);
        const failed = [...batch, ...this.#pending];
        this.#pending = [];
        for (const waiter of failed) waiter.reject(this.#failure);
        break;
      }
      for (const waiter of batch) {
        if (waiter.task === undefined) {
          this.#appends += 1;
          this.#records += waiter.records;
        }
        waiter.resolve();
      }
    }
    this.#running = undefined;
  }

  #takeBatch(): Waiter[] {
    let bytes = 0;
    let count = 0;
    if (this.#pending[0]?.task !== undefined) return this.#pending.splice(0, 1);
    for (const waiter of this.#pending) {
      if (waiter.task !== undefined) break;
      if (count > 0 && bytes + waiter.bytes > MAX_GROUP_COMMIT_BYTES) break;
      bytes += waiter.bytes;
      count += 1;
    }
    return this.#pending.splice(0, count);
  }
}

function concat(batch: readonly Waiter[]): Uint8Array {
  let total = 0;
  for (const waiter of batch) total += waiter.bytes;
  const out = new Uint8Array(total);
  let at = 0;
  for (const waiter of batch) {
    for (const frame of waiter.frames) {
      out.set(frame, at);
      at += frame.length;
    }
  }
  return out;
}
