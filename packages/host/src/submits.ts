import { createHash } from 'node:crypto';
import type { Value } from '@synod/protocol';

/**
 * The outcome of submit(): the slot the value was chosen in, or who to ask instead. Chosen is
 * not yet in order: a slot below may still be open, and a later write can be chosen there. An
 * answer to a client waits until the slot is delivered (the node runtime answers writes as
 * they are applied), or a client's next write can overtake the one it was told of.
 */
export type SubmitResult =
  | { readonly ok: true; readonly slot: number }
  | { readonly ok: false; readonly leader: string | undefined };

/**
 * What a submitted value is matched by when it is chosen: its bytes in hex when short, else a
 * SHA-256 digest (a 512 KiB batch made a 1 MiB string per waiting submit, and hex of it took
 * twice as long as hashing). The prefixes keep the two kinds apart.
 */
const valueKey = (value: Value): string =>
  value.length <= 64
    ? `h${Buffer.from(value.buffer, value.byteOffset, value.length).toString('hex')}`
    : `s${createHash('sha256').update(value).digest('base64')}`;

/**
 * Values a leader was given and has not yet seen chosen or refused, matched by their bytes:
 * the same value submitted twice waits once. At most `max` distinct values wait.
 */
export class WaitingSubmits {
  readonly #waiting = new Map<string, ((result: SubmitResult) => void)[]>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#waiting.size;
  }

  /**
   * Waits for `value`'s outcome; `propose` runs only for a value not already waiting.
   * Returns false, and waits for nothing, when `max` distinct values already wait.
   */
  add(value: Value, done: (result: SubmitResult) => void, propose: () => void): boolean {
    const key = valueKey(value);
    const waiting = this.#waiting.get(key);
    if (waiting !== undefined) {
      waiting.push(done);
      return true;
    }
    if (this.#waiting.size >= this.#max) return false;
    this.#waiting.set(key, [done]);
    propose();
    return true;
  }

  chosen(slot: number, value: Value): void {
    if (this.#waiting.size === 0) return;
    this.#settle(value, { ok: true, slot });
  }

  refused(value: Value, leader: string | undefined): void {
    this.#settle(value, { ok: false, leader });
  }

  #settle(value: Value, result: SubmitResult): void {
    const key = valueKey(value);
    const waiting = this.#waiting.get(key);
    if (waiting === undefined) return;
    this.#waiting.delete(key);
    for (const done of waiting) done(result);
  }
}
