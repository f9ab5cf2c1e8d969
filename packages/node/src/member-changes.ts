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
 * one node into a membership change in the log (the whole new member list, and the list it
 * replaces: it holds only if that is still the list at its slot). One change at a time here:
 * a second request is UNAVAILABLE until the first is delivered; a change that another leader's
 * change overtook is answered UNAVAILABLE too, never acknowledged and lost. The change governs slots a membership window after its own:
 * the leader fills those slots with empty entries at once, so the answer comes when the new
 * members decide (a removed node can be shut down then), not after a window of client writes.
 */
export class MemberChanges {
  readonly #host: GroupHost;
  /** A change this leader put in the log and has not delivered yet, and what to do then. */
  #pending: { readonly slot: number; readonly then: () => void } | undefined;
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
    if (this.#submitting || this.#pending !== undefined) {
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
    // Compare and set: the change holds only if the members are still `current` at its slot.
    this.#host.submit(encodeMembership(members, current), (outcome) => {
      this.#submitting = false;
      if (!outcome.ok) {
        fail('NOT_LEADER', 'leadership moved while the change was proposed; try again');
        return;
      }
      const slot = outcome.slot;
      this.#onceDelivered(slot, () => {
        const now = this.#host.membership;
        if (!now.changes.some((change) => change.slot === slot)) {
          fail('UNAVAILABLE', 'another membership change came first; ask again');
          return;
        }
        result.effectiveFromSlot = slot + now.window;
        this.#fillWindow(slot, now.window, (ok) =>
          ok
            ? answer({ ok: true, slot, result })
            : fail('NOT_LEADER', 'leadership moved before the change took effect; ask again'),
        );
      });
    });
  }

  #onceDelivered(slot: number, then: () => void): void {
    if (this.#host.deliveredThrough >= slot) then();
    else this.#pending = { slot, then };
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

  /** `slot` was delivered here (the host's membership has it): a change waiting for it goes on. */
  delivered(slot: number): void {
    const pending = this.#pending;
    if (pending === undefined || slot < pending.slot) return;
    this.#pending = undefined;
    pending.then();
  }
}
