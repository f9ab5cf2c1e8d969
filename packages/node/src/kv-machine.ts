import { hash } from 'node:crypto';
import type { Command, PlainData } from '@synod/protocol';
import { KvTransactions, readTxnMeta, readTxnWrite } from './kv-transactions.js';
import {
  CommandError,
  type StateMachine,
  type StateMachineKind,
  stringArg,
} from './state-machine.js';

/**
 * A read or write of a key a prepared transaction holds: it waits for the outcome, which
 * the group's RM logs as soon as it learns it. Reads are told to retry (BUSY): answering with
 * the value before the transaction would break linearizability once the transaction's
 * coordinator has told its client it committed.
 */
export class KeyHeldError extends CommandError {
  readonly retryAfterMs = 20;
}

/**
 * The built-in `kv` state machine: put, get, delete, compare-and-set on string keys and values.
 */
class KvMachine implements StateMachine {
  readonly #data = new Map<string, string>();
  /** XOR of a hash of every (key, value): order-free, so it is kept up to date in O(1) per write. */
  readonly #digest = Buffer.alloc(16);
  #txns = new KvTransactions();

  apply(command: Command): PlainData {
    if (command.op.startsWith('txn')) return this.#applyTxn(command);
    if (typeof command.key === 'string') this.#notHeld(command.key, command.op);
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

  /** `txn` (a client's), `txn_prepare` and `txn_outcome` (an RM's): see KvTransactions. */
  #applyTxn(command: Command): PlainData {
    switch (command.op) {
      case 'txn':
        return this.#txns.begin(command);
      case 'txn_prepare': {
        const writes = command.writes;
        if (!Array.isArray(writes)) throw new CommandError('txn_prepare needs "writes"');
        return this.#txns.prepare(
          readTxnMeta(command.meta),
          writes.map((w: PlainData) => readTxnWrite(w as Record<string, PlainData>, 'txn_prepare')),
          (key) => this.#data.get(key),
        );
      }
      case 'txn_outcome': {
        const { txid, outcome } = command;
        if (typeof txid !== 'string' || (outcome !== 'committed' && outcome !== 'aborted'))
          throw new CommandError('txn_outcome needs "txid" and "outcome"');
        for (const w of this.#txns.decide(txid, outcome)) {
          if (w.op === 'delete') this.#delete(w.key);
          else this.#set(w.key, w.value!);
        }
        return null;
      }
      case 'txn_decided': {
        const { txid, outcome } = command;
        if (typeof txid !== 'string' || (outcome !== 'committed' && outcome !== 'aborted'))
          throw new CommandError('txn_decided needs "txid" and "outcome"');
        return this.#txns.tmDecide(txid, outcome);
      }
      default:
        throw new CommandError(`unknown transaction operation ${JSON.stringify(command.op)}`);
    }
  }

  #notHeld(key: string, op: string): void {
    const holder = this.#txns.held.get(key);
    if (holder !== undefined)
      throw new KeyHeldError(
        `key ${JSON.stringify(key)} is held by transaction ${holder}, prepared and waiting for its outcome; ${op === 'get' ? 'read again' : 'send the write again, as a new write,'} once it ends`,
      );
  }

  read(command: Command): PlainData {
    // The transactions this replica voted on and has not seen decided: the RM's recovery.
    if (command.op === 'txn_open')
      return [...this.#txns.open.values()].map((t) => ({ meta: { ...t.meta }, vote: t.vote }));
    // Two-phase commit: what this group's coordinator logged for a transaction, if anything.
    if (command.op === 'txn_decided') {
      const outcome = this.#txns.tmOutcomes.get(stringArg(command, 'txid'));
      return outcome === undefined ? null : { outcome };
    }
    if (command.op !== 'get')
      throw new CommandError(
        `unknown read operation ${JSON.stringify(command.op)}; the kv machine reads with "get"`,
      );
    const key = stringArg(command, 'key');
    this.#notHeld(key, 'get');
    const value = this.#data.get(key);
    return value === undefined ? { found: false } : { found: true, value };
  }

  digest(): string {
    return this.#digest.toString('hex');
  }

  exportState(): unknown {
    // A bare array of entries while no transaction was ever seen: what earlier versions wrote.
    const txns = this.#txns.exportState();
    const t = this.#txns;
    const seen = t.numbered > 0 || t.open.size > 0 || t.decided.size > 0 || t.tmOutcomes.size > 0;
    return seen ? { data: [...this.#data], txns } : [...this.#data];
  }

  static import(state: unknown): KvMachine {
    const machine = new KvMachine();
    let entries = state;
    if (state !== null && typeof state === 'object' && !Array.isArray(state)) {
      const doc = state as { data?: unknown; txns?: unknown };
      entries = doc.data;
      machine.#txns = KvTransactions.import(doc.txns);
    }
    if (!Array.isArray(entries)) throw new TypeError('not a kv state');
    for (const entry of entries) {
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
