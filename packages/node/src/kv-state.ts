import { createHash } from 'node:crypto';
import type { ClientWrite, Command, PlainData } from '@synod/protocol';
import { Packr } from 'msgpackr';

/** Snapshot encoding: plain arrays and maps of strings, no records or structured clones. */
const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false });

interface KvSnapshot {
  readonly v: 1;
  readonly data: [string, string][];
  /** clientId, seq, and the result: the value, or an error's message. */
  readonly clients: [string, number, { ok: PlainData } | { error: string }][];
}

/** Why a command could not be applied; the same on every replica, so replicas stay identical. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
}

/**
 * The built-in `kv` state machine: put, get, delete, compare-and-set on string keys and values.
 * It remembers the last (seq, result) of every client, so a retried write is applied once and
 * the retry gets the first result.
 */
export class KvState {
  readonly #data = new Map<string, string>();
  /** XOR of a hash of every (key, value): order-free, so it is kept up to date in O(1) per write. */
  readonly #digest = Buffer.alloc(16);
  readonly #lastByClient = new Map<string, { seq: number; result: PlainData | CommandError }>();

  /** Applies one committed write; returns its result (or the first result of a retry). */
  applyWrite(write: ClientWrite): PlainData | CommandError {
    const last = this.#lastByClient.get(write.clientId);
    if (last !== undefined && write.seq <= last.seq) {
      return write.seq === last.seq
        ? last.result
        : new CommandError(
            `seq ${write.seq} of ${write.clientId} is older than its last write (${last.seq})`,
          );
    }
    let result: PlainData | CommandError;
    try {
      result = this.#write(write.command);
    } catch (error) {
      result = error instanceof CommandError ? error : new CommandError(String(error));
    }
    this.#lastByClient.set(write.clientId, { seq: write.seq, result });
    return result;
  }

  read(command: Command): PlainData {
    if (command.op !== 'get')
      throw new CommandError(
        `unknown read operation ${JSON.stringify(command.op)}; the kv machine reads with "get"`,
      );
    const value = this.#data.get(stringArg(command, 'key'));
    return value === undefined ? { found: false } : { found: true, value };
  }

  /** A digest of the data, equal on replicas that applied the same writes. O(1): see #toggle. */
  digest(): string {
    return this.#digest.toString('hex');
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
    const entry = createHash('sha256')
      .update(JSON.stringify([key, value]))
      .digest();
    for (let i = 0; i < this.#digest.length; i++) this.#digest[i]! ^= entry[i]!;
  }

  /** The whole state (data and every client's last result), as bytes restore() takes back. */
  snapshot(): Uint8Array {
    const doc: KvSnapshot = {
      v: 1,
      data: [...this.#data],
      clients: [...this.#lastByClient].map(([clientId, { seq, result }]) => [
        clientId,
        seq,
        result instanceof CommandError ? { error: result.message } : { ok: result },
      ]),
    };
    return new Uint8Array(packr.pack(doc)); // a copy: pack() returns a view into a shared buffer
  }

  /** Rebuilds a state from snapshot() bytes; throws if they are not one. */
  static restore(bytes: Uint8Array): KvState {
    const doc = packr.unpack(bytes) as KvSnapshot;
    if (doc?.v !== 1 || !Array.isArray(doc.data) || !Array.isArray(doc.clients))
      throw new TypeError('not a kv snapshot');
    const state = new KvState();
    for (const [key, value] of doc.data) state.#set(key, value);
    for (const [clientId, seq, result] of doc.clients) {
      state.#lastByClient.set(clientId, {
        seq,
        result: 'error' in result ? new CommandError(result.error) : result.ok,
      });
    }
    return state;
  }

  get size(): number {
    return this.#data.size;
  }

  #write(command: Command): PlainData {
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
}

function stringArg(command: Command, name: string): string {
  const value = command[name];
  if (typeof value !== 'string') throw new CommandError(`${command.op} needs a string "${name}"`);
  return value;
}
