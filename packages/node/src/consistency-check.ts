import type { Logger } from '@synod/log';
import { groupSubjects } from '@synod/protocol';
import type { Transport } from '@synod/transport';

/** How many verified slots a node remembers the digest of, for peers that ask late. */
const KEEP_DIGESTS = 16;
/** How long a node waits for its peers to apply a verified slot before it gives up on them. */
const PEER_WAIT_MS = 30_000;
const ASK_EVERY_MS = 250;
const REQUEST_TIMEOUT_MS = 2_000;
/** How often a node that differs from the group tries again to fetch a peer's state. */
const REPAIR_RETRY_MS = 1_000;
const REPAIR_TRIES = 30;

/** What the last verified slot showed, as `synod status` reports it. */
export interface ConsistencyVerdict {
  readonly slot: number;
  readonly digest: string;
  /**
   * `agreed`: a majority of the members has this node's digest. `differs`: a majority has
   * another, and this node installs one of theirs. `undecided`: no majority either way (peers
   * down or behind, or every copy different), and nothing is repaired.
   */
  readonly verdict: 'pending' | 'agreed' | 'differs' | 'undecided';
  /** Members whose digest at the slot equals this node's (this node included). */
  readonly agreeing: number;
  readonly members: number;
  readonly at: string;
}

export interface ConsistencyCheckOptions {
  readonly transport: Transport;
  readonly group: string;
  readonly nodeId: string;
  /** The members, as of now. */
  readonly members: () => readonly string[];
  /** Replaces this node's state with one of `from`'s: ApplyQueue.reinstall. */
  readonly reinstall: (why: string, from: readonly string[]) => Promise<boolean>;
  readonly appliedThrough: () => number;
  readonly isLeader: () => boolean;
  /** Puts a `{"op":"verify"}` write in the log. */
  readonly submitVerify: () => Promise<void>;
  /** The leader verifies this often while the log moves (0: only when a client asks). */
  readonly everyMs: number;
  readonly logger?: Logger | undefined;
}

/**
 * A database can be changed behind its node's back (through `--pg`, a restore from an old
 * backup), and nothing in the log would show it. A `{"op":"verify"}` write makes every
 * replica take a digest of its replicated state at the same slot; each node then asks the
 * members for theirs. A node in the minority, when a majority agrees on another digest,
 * installs the state of a node of that majority and applies on from there; with no majority
 * nothing is repaired and `synod status` says so.
 *
 * Each node answers on `synod.<g>.node.<id>.digest`: `{"slot":N}` gets `{"digest":D}` once it
 * has applied the verify write at N, else `{"applied":A}`. Only nodes may publish there under
 * the secured NATS setup. The leader puts a verify write in the log every `everyMs` while
 * slots are applied; any client may send one (`synod sql verify`).
 */
export class ConsistencyCheck {
  readonly #o: ConsistencyCheckOptions;
  readonly #digests = new Map<number, string>();
  #latest: ConsistencyVerdict | undefined;
  #subscription: { unsubscribe(): void } | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #verifiedThrough = -1;
  #stopped = false;

  constructor(options: ConsistencyCheckOptions) {
    this.#o = options;
  }

  get latest(): ConsistencyVerdict | undefined {
    return this.#latest;
  }

  #subject(node: string): string {
    return groupSubjects(this.#o.group).endpoint(node, 'digest');
  }

  start(): void {
    this.#subscription = this.#o.transport.subscribe(this.#subject(this.#o.nodeId), (m) => {
      if (m.reply === undefined) return;
      let slot: unknown;
      try {
        slot = (JSON.parse(new TextDecoder().decode(m.data)) as { slot?: unknown }).slot;
      } catch {
        slot = undefined;
      }
      const answer =
        typeof slot !== 'number' || !Number.isSafeInteger(slot)
          ? { error: 'a digest request is {"slot":N}' }
          : this.#digests.has(slot)
            ? { digest: this.#digests.get(slot) }
            : { applied: this.#o.appliedThrough() };
      this.#o.transport.publish(m.reply, new TextEncoder().encode(JSON.stringify(answer)));
    });
    if (this.#o.everyMs > 0) {
      this.#timer = setInterval(() => this.#maybeVerify(), this.#o.everyMs);
      this.#timer.unref?.();
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#subscription?.unsubscribe();
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  #maybeVerify(): void {
    const applied = this.#o.appliedThrough();
    if (!this.#o.isLeader() || applied <= this.#verifiedThrough) return;
    this.#o
      .submitVerify()
      .catch((error: unknown) =>
        this.#o.logger?.warn({ err: error }, 'the periodic verify write failed'),
      );
  }

  /** This node applied a verify write: remember its digest and compare it with the members'. */
  verified(slot: number, digest: string): void {
    this.#verifiedThrough = Math.max(this.#verifiedThrough, slot);
    this.#digests.set(slot, digest);
    for (const old of this.#digests.keys())
      if (this.#digests.size > KEEP_DIGESTS) this.#digests.delete(old);
    void this.#compare(slot, digest);
  }

  async #compare(slot: number, digest: string): Promise<void> {
    const members = this.#o.members();
    if (!members.includes(this.#o.nodeId)) return;
    const verdict = (v: ConsistencyVerdict['verdict'], agreeing: number): void => {
      this.#latest = {
        slot,
        digest,
        verdict: v,
        agreeing,
        members: members.length,
        at: new Date().toISOString(),
      };
    };
    verdict('pending', 1);
    const peers = members.filter((id) => id !== this.#o.nodeId);
    const answers = await Promise.all(peers.map((peer) => this.#askUntilApplied(peer, slot)));
    if (this.#stopped || (this.#latest !== undefined && this.#latest.slot > slot)) return;
    const holders = new Map<string, string[]>([[digest, [this.#o.nodeId]]]);
    answers.forEach((answer, i) => {
      if (answer !== undefined) holders.set(answer, [...(holders.get(answer) ?? []), peers[i]!]);
    });
    const majority = Math.floor(members.length / 2) + 1;
    const agreeing = holders.get(digest)!.length;
    if (agreeing >= majority) {
      verdict('agreed', agreeing);
      return;
    }
    const winner = [...holders].find(([, nodes]) => nodes.length >= majority);
    if (winner === undefined) {
      verdict('undecided', agreeing);
      this.#o.logger?.warn(
        { slot, digest, answers: Object.fromEntries(holders) },
        'verified slot: no majority of the members has one digest; nothing repaired',
      );
      return;
    }
    verdict('differs', agreeing);
    this.#o.logger?.error(
      { slot, digest, group: winner[0], holders: winner[1] },
      "this node's replicated state differs from the group's at a verified slot",
    );
    for (let i = 0; i < REPAIR_TRIES && !this.#stopped; i++) {
      if (
        await this.#o.reinstall(
          `this node's replicated state differs from the group's at slot ${slot}`,
          winner[1],
        )
      )
        return;
      await new Promise((resolve) => setTimeout(resolve, REPAIR_RETRY_MS));
    }
  }

  /** The peer's digest at `slot`, waiting while it has not applied it; undefined: none. */
  async #askUntilApplied(peer: string, slot: number): Promise<string | undefined> {
    const deadline = Date.now() + PEER_WAIT_MS;
    while (!this.#stopped && Date.now() < deadline) {
      try {
        const answer = await this.#o.transport.request(
          this.#subject(peer),
          new TextEncoder().encode(JSON.stringify({ slot })),
          { timeoutMs: REQUEST_TIMEOUT_MS },
        );
        const body = JSON.parse(new TextDecoder().decode(answer.data)) as {
          digest?: unknown;
          applied?: unknown;
        };
        if (typeof body.digest === 'string') return body.digest;
        // Applied past the slot without its digest: restarted since, or repaired over it.
        if (typeof body.applied !== 'number' || body.applied >= slot) return undefined;
      } catch {
        // Down or slow: asked again until the deadline.
      }
      await new Promise((resolve) => setTimeout(resolve, ASK_EVERY_MS));
    }
    return undefined;
  }
}
