/** A fixed-size set of small integers (operation ids), cheap to copy and to key. */
export class Bitset {
  readonly #words: Uint32Array;

  constructor(size: number, words?: Uint32Array) {
    this.#words = words ?? new Uint32Array(Math.ceil(size / 32));
  }

  set(i: number): void {
    this.#words[i >>> 5]! |= 1 << (i & 31);
  }

  clear(i: number): void {
    this.#words[i >>> 5]! &= ~(1 << (i & 31));
  }

  /** A copy with `i` added. */
  with(i: number): Bitset {
    const copy = new Bitset(0, this.#words.slice());
    copy.set(i);
    return copy;
  }

  /** A string that identifies the set's contents. */
  key(): string {
    let out = '';
    for (const word of this.#words) out += `${word.toString(36)},`;
    return out;
  }
}
