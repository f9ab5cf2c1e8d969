import { createHash } from 'node:crypto';
import type { Command, PlainData } from '@synod/protocol';
import {
  CommandError,
  type StateMachine,
  type StateMachineKind,
  stringArg,
} from './state-machine.js';

/** Most entries one read returns. */
export const MAX_LOG_READ = 1_000;

/**
 * The built-in `log` state machine: an append-only list of opaque string values.
 * Write `{"op":"append","value":v}` → `{"index":i}`; read `{"op":"entries","from":i,"limit":n}`
 * → `{"entries":[...],"from":i,"total":t}` (from 0 and up to 100 entries by default).
 */
class LogMachine implements StateMachine {
  readonly #entries: string[] = [];
  /** sha256 chained over every value in order: O(1) per append. */
  #digest = Buffer.alloc(16);

  apply(command: Command): PlainData {
    if (command.op !== 'append')
      throw new CommandError(
        `unknown write operation ${JSON.stringify(command.op)}; the log machine knows append`,
      );
    const value = stringArg(command, 'value');
    this.#append(value);
    return { index: this.#entries.length - 1 };
  }

  read(command: Command): PlainData {
    if (command.op !== 'entries')
      throw new CommandError(
        `unknown read operation ${JSON.stringify(command.op)}; the log machine reads with "entries"`,
      );
    const from = count(command, 'from', 0, 0);
    const limit = count(command, 'limit', 100, 1);
    return {
      entries: this.#entries.slice(from, from + Math.min(limit, MAX_LOG_READ)),
      from,
      total: this.#entries.length,
    };
  }

  digest(): string {
    return this.#digest.toString('hex');
  }

  exportState(): unknown {
    return this.#entries;
  }

  static import(state: unknown): LogMachine {
    if (!Array.isArray(state) || !state.every((v) => typeof v === 'string'))
      throw new TypeError('not a log state');
    const machine = new LogMachine();
    for (const value of state as string[]) machine.#append(value);
    return machine;
  }

  #append(value: string): void {
    this.#entries.push(value);
    this.#digest = createHash('sha256').update(this.#digest).update(value).digest().subarray(0, 16);
  }
}

function count(command: Command, name: string, fallback: number, min: number): number {
  const value = command[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min)
    throw new CommandError(`"${name}" must be a whole number of at least ${min}`);
  return value;
}

export const LOG: StateMachineKind = {
  name: 'log',
  create: () => new LogMachine(),
  import: (state) => LogMachine.import(state),
};
