// Clients of a NetnsCluster, a few attached to each side, writing and reading while the links
// fail; every operation is recorded for the linearizability checker. Jepsen's rules: a write
// whose outcome is unknown (it timed out or ran out of attempts) stays open (return Infinity,
// output undefined), and its client is not used again: the next operation comes from a new
// client id, as a crashed Jepsen process is replaced.
import { SynodClient } from '@synod/client';
import type { KvInput, Operation } from '@synod/sim';
import { createRng } from '@synod/transport';
import type { NetnsCluster } from './netns-cluster.js';

/** Keys every client writes and reads: where linearizability can fail. */
export const SHARED_KEYS = ['x0', 'x1', 'x2', 'x3'];

export interface Recorded extends Operation<KvInput, string> {
  /** The namespace (node) whose nats-server the client was attached to. */
  readonly side: number;
}

export class Workload {
  readonly history: Recorded[] = [];
  #running = true;
  readonly #workers: Promise<void>[] = [];
  #clients = 0;

  constructor(
    private readonly cluster: NetnsCluster,
    seed: number,
    perSide = 2,
    /** Pause between a worker's operations, to leave the two cores to the nodes. */
    private readonly pauseMs = 15,
  ) {
    for (let side = 1; side <= cluster.size; side++)
      for (let w = 0; w < perSide; w++)
        this.#workers.push(this.#work(side, createRng(seed * 100 + side * 10 + w)));
  }

  #client(side: number, attempts = 3): SynodClient {
    this.#clients += 1;
    return new SynodClient({
      transport: this.cluster.transports[side - 1]!,
      group: this.cluster.group,
      clientId: `s${side}-c${this.#clients}`,
      timeoutMs: 1_000,
      attempts,
    });
  }

  async #work(side: number, rng: ReturnType<typeof createRng>): Promise<void> {
    let client = this.#client(side);
    for (let n = 0; this.#running; n++) {
      const roll = rng.next();
      const label = `${client.clientId}.${n}`;
      if (roll < 0.3) {
        const key = SHARED_KEYS[rng.int(0, SHARED_KEYS.length - 1)]!;
        // Both consistent read paths: pg_paxos's strong read and the leader's linearizable one.
        const consistency = n % 2 === 0 ? 'strong' : 'linearizable';
        const call = performance.now();
        const answer = await client.get(key, consistency).catch(() => undefined);
        // A read that failed tells nothing: left out (the checker would prune it anyway).
        if (answer !== undefined) {
          const result = answer.result as { found: boolean; value?: string };
          this.history.push({
            clientId: label,
            side,
            input: { op: 'get', key },
            call,
            output: result.found ? result.value! : '',
            return: performance.now(),
          });
        }
      } else {
        // A fifth of the writes go to a key of their own, read back at the end: an
        // acknowledged one that is missing there is a lost write, whatever came after it.
        const key = roll < 0.5 ? `u.${label}` : SHARED_KEYS[rng.int(0, SHARED_KEYS.length - 1)]!;
        const value = label;
        const call = performance.now();
        const ok = await client.put(key, value).then(
          () => true,
          () => false,
        );
        this.history.push({
          clientId: label,
          side,
          input: { op: 'put', key, value },
          call,
          output: ok ? '' : undefined,
          return: ok ? performance.now() : Number.POSITIVE_INFINITY,
        });
        if (!ok) client = this.#client(side);
      }
      await new Promise((r) => setTimeout(r, this.pauseMs));
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#workers);
  }

  /** Completed operations of clients on `side` that began at or after `from` and ended by `to`. */
  completed(side: (s: number) => boolean, from: number, to: number, op?: 'put' | 'get'): number {
    return this.history.filter(
      (o) =>
        side(o.side) && o.call >= from && o.return <= to && (op === undefined || o.input.op === op),
    ).length;
  }

  /** Every key written, each read once more (strongly) through a healed group; recorded too. */
  async readEverything(): Promise<Map<string, string>> {
    const keys = [...new Set(this.history.map((o) => o.input.key))];
    const values = new Map<string, string>();
    const readers = Array.from({ length: this.cluster.size }, (_, i) => this.#client(i + 1, 10));
    let next = 0;
    await Promise.all(
      readers.map(async (reader, i) => {
        while (next < keys.length) {
          const key = keys[next++]!;
          const call = performance.now();
          const answer = await reader.get(key, 'strong');
          const result = answer.result as { found: boolean; value?: string };
          const output = result.found ? result.value! : '';
          this.history.push({
            clientId: `final.${i}`,
            side: i + 1,
            input: { op: 'get', key },
            call,
            output,
            return: performance.now(),
          });
          values.set(key, output);
        }
      }),
    );
    return values;
  }

  /** Acknowledged puts whose value the final reads do not show, for keys written once. */
  lostWrites(finalValues: ReadonlyMap<string, string>): Recorded[] {
    return this.history.filter(
      (o) =>
        o.input.op === 'put' &&
        o.input.key.startsWith('u.') &&
        o.return !== Number.POSITIVE_INFINITY &&
        finalValues.get(o.input.key) !== o.input.value,
    );
  }
}
