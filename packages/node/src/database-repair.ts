import type { Logger } from '@synod/log';
import { groupSubjects } from '@synod/protocol';
import type { Transport } from '@synod/transport';
import type { AsyncStateMachine } from './async-machine.js';

/** A snapshot moves in pieces of this size: NATS bounds a message (1 MiB by default). */
const CHUNK_BYTES = 512 * 1024;
/** How long a node keeps the snapshot it took for a peer, for that peer's next pieces. */
const KEEP_MS = 60_000;
const REQUEST_TIMEOUT_MS = 10_000;

export interface RepairSnapshot {
  readonly throughSlot: number;
  readonly bytes: Uint8Array;
}

/**
 * A node whose database left its log position (someone changed its bookkeeping through
 * `--pg`, a restore from an old backup) cannot apply the next slot: its machine throws a
 * SlotGapError at every try. It repairs itself with a peer's state: it asks the members in
 * turn for a snapshot through at least the slot before the one it cannot apply, and installs
 * it, which replaces its replicated state whole; it then applies the slots after it as usual.
 *
 * Each node serves its own: on `synod.<g>.node.<id>.repair`, `{"atLeast":N,"offset":O}` (and
 * `"throughSlot"` for the pieces after the first) is answered with a piece of a snapshot of its
 * machine (headers `through`, `total`, `offset`), or with header `behind` when it has not
 * applied slot N yet. Only nodes may publish there under the secured NATS setup.
 */
export interface DatabaseRepairOptions {
  readonly transport: Transport;
  readonly group: string;
  readonly nodeId: string;
  readonly machine: Pick<AsyncStateMachine, 'snapshot'>;
  /** The members to ask, in order (this node is skipped). */
  readonly peers: () => readonly string[];
  readonly logger?: Logger | undefined;
}

export class DatabaseRepair {
  readonly #o: DatabaseRepairOptions;
  #served: { readonly snapshot: RepairSnapshot; readonly at: number } | undefined;
  #subscription: { unsubscribe(): void } | undefined;

  constructor(options: DatabaseRepairOptions) {
    this.#o = options;
  }

  #subject(node: string): string {
    return groupSubjects(this.#o.group).endpoint(node, 'repair');
  }

  serve(): void {
    this.#subscription = this.#o.transport.subscribe(this.#subject(this.#o.nodeId), (m) => {
      if (m.reply === undefined) return;
      const reply = m.reply;
      void this.#answer(m.data).then(
        ({ data, headers }) => this.#o.transport.publish(reply, data, { headers }),
        (error: unknown) =>
          this.#o.transport.publish(reply, new Uint8Array(), {
            headers: { error: error instanceof Error ? error.message : String(error) },
          }),
      );
    });
  }

  stop(): void {
    this.#subscription?.unsubscribe();
  }

  async #answer(
    request: Uint8Array,
  ): Promise<{ data: Uint8Array; headers: Record<string, string> }> {
    const asked = JSON.parse(new TextDecoder().decode(request)) as Record<string, unknown>;
    const atLeast = asked.atLeast;
    const offset = asked.offset;
    if (
      typeof atLeast !== 'number' ||
      !Number.isSafeInteger(atLeast) ||
      typeof offset !== 'number' ||
      !Number.isSafeInteger(offset) ||
      offset < 0
    )
      throw new Error('a repair request is {"atLeast":slot,"offset":bytes}');
    const now = Date.now();
    const kept = this.#served;
    const continuing =
      kept !== undefined &&
      now - kept.at < KEEP_MS &&
      asked.throughSlot === kept.snapshot.throughSlot;
    if (!continuing && offset > 0) throw new Error('that snapshot is gone; start again');
    let snapshot = continuing ? kept!.snapshot : undefined;
    if (snapshot === undefined) {
      if (this.#o.machine.snapshot === undefined) throw new Error('this machine has no snapshots');
      snapshot = await this.#o.machine.snapshot();
      if (snapshot.throughSlot < atLeast)
        return { data: new Uint8Array(), headers: { behind: String(snapshot.throughSlot) } };
      this.#served = { snapshot, at: now };
    }
    return {
      data: snapshot.bytes.subarray(offset, offset + CHUNK_BYTES),
      headers: {
        through: String(snapshot.throughSlot),
        total: String(snapshot.bytes.length),
        offset: String(offset),
      },
    };
  }

  /**
   * A snapshot through at least `atLeast` from one of `from` (default: the members), or
   * undefined when none could give one.
   */
  async fetch(atLeast: number, from?: readonly string[]): Promise<RepairSnapshot | undefined> {
    for (const peer of from ?? this.#o.peers()) {
      if (peer === this.#o.nodeId) continue;
      try {
        const snapshot = await this.#fetchFrom(peer, atLeast);
        if (snapshot !== undefined) return snapshot;
      } catch (error) {
        this.#o.logger?.warn(
          { err: error, peer },
          'a peer could not give its snapshot for a repair',
        );
      }
    }
    return undefined;
  }

  async #fetchFrom(peer: string, atLeast: number): Promise<RepairSnapshot | undefined> {
    const pieces: Uint8Array[] = [];
    let received = 0;
    let through: number | undefined;
    for (;;) {
      const answer = await this.#o.transport.request(
        this.#subject(peer),
        new TextEncoder().encode(
          JSON.stringify({
            atLeast,
            offset: received,
            ...(through === undefined ? {} : { throughSlot: through }),
          }),
        ),
        { timeoutMs: REQUEST_TIMEOUT_MS },
      );
      const h = answer.headers ?? {};
      if (h.error !== undefined) throw new Error(h.error);
      if (h.behind !== undefined) return undefined;
      const slot = Number(h.through);
      const total = Number(h.total);
      if (
        !Number.isSafeInteger(slot) ||
        slot < atLeast ||
        !Number.isSafeInteger(total) ||
        total < 0
      )
        throw new Error('a repair answer without a usable snapshot');
      if (through !== undefined && slot !== through)
        throw new Error('the snapshot changed mid-way');
      through = slot;
      if (Number(h.offset) !== received) throw new Error('a repair answer out of order');
      pieces.push(answer.data);
      received += answer.data.length;
      if (received > total) throw new Error('a repair answer longer than it said');
      if (received === total) {
        const bytes = new Uint8Array(total);
        let at = 0;
        for (const piece of pieces) {
          bytes.set(piece, at);
          at += piece.length;
        }
        return { throughSlot: slot, bytes };
      }
      if (answer.data.length === 0) throw new Error('an empty piece of a repair answer');
    }
  }
}
