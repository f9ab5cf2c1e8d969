import { hash } from 'node:crypto';
import type { Command, PlainData } from '@synod/protocol';
import {
  CommandError,
  type StateMachine,
  type StateMachineKind,
  stringArg,
} from './state-machine.js';

/**
 * The built-in `kv` state machine: put, get, delete, compare-and-set on string keys and values.
 */
class KvMachine implements StateMachine {
  readonly #data = new Map<string, string>();
  /** XOR of a hash of every (key, value): order-free, so it is kept up to date in O(1) per write. */
  readonly #digest = Buffer.alloc(16);

  apply(command: Command): PlainData {
    switch (command.op) {
      case 'put':
        this.#set(stringArg(command, 'key'), stringArg(command, 'value'));
        return null;
      case 'delete':
        return { found: this.#delete(stringArg(command, 'key')) };
      case 'cas': {
        const key = stringArg(command, 'key');
        const expect = command.expect;
        if (expect !== null && typeof expect !== 'string')
          throw new CommandError('cas "expect" must be a string, or null for an absent key');
        const value = stringArg(command, 'value');
        const current = this.#data.get(key) ?? null;
        if (current !== expect) return { swapped: false };
        this.#set(key, value);
        return { swapped: true };
      }
      default:
        throw new CommandError(
          `unknown write operation ${JSON.stringify(command.op)}; the kv machine knows put, delete, cas`,
        );
    }
  }

  read(command: Command): PlainData {
    if (command.op !== 'get')
      throw new CommandError(
        `unknown read operation ${JSON.stringify(command.op)}; the kv machine reads with "get"`,
      );
    const value = this.#data.get(stringArg(command, 'key'));
    return value === undefined ? { found: false } : { found: true, value };
  }

  digest(): string {
    return this.#digest.toString('hex');
  }

  exportState(): unknown {
    return [...this.#data];
  }

  static import(state: unknown): KvMachine {
    if (!Array.isArray(state)) throw new TypeError('not a kv state');
    const machine = new KvMachine();
    for (const entry of state) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'string')
        throw new TypeError('not a kv state');
      machine.#set(entry[0], entry[1]);
    }
    return machine;
  }

  #set(key: string, value: string): void {
    const old = this.#data.get(key);
    if (old !== undefined) this.#toggle(key, old);
    this.#data.set(key, value);
    this.#toggle(key, value);
  }

  #delete(key: string): boolean {
    const old = this.#data.get(key);
    if (old === undefined) return false;
    this.#toggle(key, old);
    return this.#data.delete(key);
  }

  #toggle(key: string, value: string): void {
    // One-shot hash(): a third cheaper than createHash().update().digest(), on every write.
    const entry = hash('sha256', JSON.stringify([key, value]), 'buffer');
    for (let i = 0; i < this.#digest.length; i++) this.#digest[i]! ^= entry[i]!;
  }
}

export const KV: StateMachineKind = {
  name: 'kv',
  create: () => new KvMachine(),
  import: (state) => KvMachine.import(state),
};
