import { encodeMembership } from '@synod/protocol';
import type { Rng } from '@synod/transport';
import type { SimCluster } from './cluster.js';
import type { Nemesis } from './nemesis.js';
import { describeValue } from './trace.js';
import type { Workload } from './workload.js';
import { pick, type SimWorld } from './world.js';

/** The operator's streams: the second is apart so the seeds before back-to-back changes kept their choices. */
export interface OperatorStreams {
  readonly changes: Rng;
  readonly backToBack: Rng;
}

/**
 * An operator changes the members now and then during the faults, to any set of the nodes,
 * and retries until the change is in the log. Each change comes with a burst of writes and
 * with the nemesis's faults aimed at it.
 */
export function scheduleMembershipChanges(
  world: SimWorld,
  cluster: SimCluster,
  workload: Workload,
  nemesis: Nemesis,
  rngs: OperatorStreams,
): void {
  const { scenario, scheduler, checker, trace, peers, founders } = world;
  const membershipRng = rngs.changes;
  const backToBackRng = rngs.backToBack;
  for (let i = 0; i < (scenario.membership?.changes ?? 0); i++) {
    scheduler.setTimer(membershipRng.next() * scenario.faultPhaseMs, () => {
      // Half the changes replace most of the current members: quorums of the old and the new
      // members then rarely meet, which is where a leader that asks the wrong ones goes wrong.
      const current = cluster.up()[0]?.host?.membership.latest ?? founders;
      const replace = membershipRng.chance(0.5);
      const members = peers.filter((id) =>
        membershipRng.chance(replace ? (current.includes(id) ? 0.3 : 0.9) : 0.6),
      );
      if (members.length === 0) members.push(pick(membershipRng, peers));
      // A quarter of them compare and set, from members that may be stale by the time it is chosen.
      const value = encodeMembership(members, membershipRng.chance(0.25) ? current : undefined);
      checker.submitted(value);
      const live = cluster.up();
      const first = live.length > 0 ? pick(membershipRng, live) : cluster.nodes.get(peers[0]!)!;
      trace?.(`operator submits ${describeValue(value)} to ${first.id}`);
      workload.submitWithRetries(
        first,
        value,
        () => true,
        () => undefined,
      );
      // Sometimes a second change right behind it: the leader puts them in adjacent slots, the
      // second decided by members the first has not yet brought in.
      if (scenario.membership?.backToBack === true && backToBackRng.chance(0.5)) {
        const second = peers.filter(() => backToBackRng.chance(0.5));
        if (second.length === 0) second.push(pick(backToBackRng, peers));
        const next = encodeMembership(second);
        checker.submitted(next);
        trace?.(`operator submits ${describeValue(next)} to ${first.id} right after`);
        workload.submitWithRetries(
          first,
          next,
          () => true,
          () => undefined,
        );
      }
      workload.burst(first, membershipRng.int(2, 8));
      nemesis.afterMembershipChange(members, membershipRng);
    });
  }
}
