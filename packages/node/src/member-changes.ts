import type { GroupHost } from '@synod/host';
import { type ClientResponse, encodeMembership, isValidName, MAX_MEMBERS } from '@synod/protocol';
import { encodeBarrier } from './batch.js';

/** A client's request to change the members: `{"op":"join","node":"d"}` or `"leave"`. */
export type MemberOp = 'join' | 'leave';

export function isMemberOp(op: string): op is MemberOp {
  return op === 'join' || op === 'leave';
}

/**
 * pg_paxos's paxos_join_group, and its opposite: the leader turns a request to add or remove
 * one node into a membership change in the log (the whole new member list). One change at a
 * time: a second request waits until the first is delivered here, so each starts from the
 * members the log really has. The change governs slots a membership window after its own:
 * the leader fills those slots with empty entries at once, so the answer comes when the new
 * members decide (a removed node can be shut down then), not after a window of client writes.
 */
export class MemberChanges {
  readonly #host: GroupHost;
  /** The slot of a change this leader put in the log and has not delivered yet. */
  #pendingSlot: number | undefined;
  #submitting = false;

  constructor(host: GroupHost) {
    this.#host = host;
  }

  /** Runs at the leader; answers once the change is chosen, or says why not. */
  change(op: MemberOp, node: unknown, answer: (response: ClientResponse) => void): void {
    const fail = (code: 'BAD_REQUEST' | 'UNAVAILABLE' | 'NOT_LEADER', message: string): void =>
      answer({ ok: false, error: { code, message } });
    if (!isValidName(node)) {
      fail('BAD_REQUEST', `${op} needs "node": a node id of letters, digits, '-' and '_'`);
      return;
    }
    if (this.#submitting || this.#pendingSlot !== undefined) {
      fail('UNAVAILABLE', 'another membership change is in progress; try again');
      return;
    }
    const membership = this.#host.membership;
    const current = membership.latest;
    const members =
      op === 'join' ? [...new Set([...current, node])] : current.filter((m) => m !== node);
    const result = { members, effectiveFromSlot: -1 };
    if (members.length === current.length) {
      // Already so: nothing to change, and the answer says where the last change took effect.
      const last = membership.changes.at(-1);
      result.effectiveFromSlot = last === undefined ? 0 : last.slot + membership.window;
      answer({ ok: true, slot: last?.slot ?? -1, result });
      return;
    }
    if (members.length === 0) {
      fail('BAD_REQUEST', `${node} is the only member: a group cannot lose its last member`);
      return;
    }
    if (members.length > MAX_MEMBERS) {
      fail('BAD_REQUEST', `a group has at most ${MAX_MEMBERS} members`);
      return;
    }
    this.#submitting = true;
    this.#host.submit(encodeMembership(members), (outcome) => {
      this.#submitting = false;
      if (!outcome.ok) {
        fail('NOT_LEADER', 'leadership moved while the change was proposed; try again');
        return;
      }
      if (outcome.slot >= this.#host.deliveredThrough + 1) this.#pendingSlot = outcome.slot;
      result.effectiveFromSlot = outcome.slot + membership.window;
      this.#fillWindow(outcome.slot, membership.window, (ok) =>
        ok
          ? answer({ ok: true, slot: outcome.slot, result })
          : fail('NOT_LEADER', 'leadership moved before the change took effect; ask again'),
      );
    });
  }

  /** Puts `window` empty entries after the change's slot, and says once all are chosen. */
  #fillWindow(slot: number, window: number, done: (ok: boolean) => void): void {
    let left = window;
    let failed = false;
    for (let i = 0; i < window; i++) {
      this.#host.submit(encodeBarrier(`members-${slot}-${i}`), (outcome) => {
        if (failed) return;
        if (!outcome.ok) {
          failed = true;
          done(false);
        } else if (--left === 0) done(true);
      });
    }
  }

  /** `slot` was delivered here: a change in flight through it is now in the membership. */
  delivered(slot: number): void {
    if (this.#pendingSlot !== undefined && slot >= this.#pendingSlot) this.#pendingSlot = undefined;
  }
}
