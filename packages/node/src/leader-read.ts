import type { GroupHost } from '@synod/host';
import type { Scheduler } from '@synod/transport';
import type { Batcher, ReadOutcome } from './batcher.js';
import { failure } from './client-answers.js';

/** A BUSY answer's retry hint for a read refused because too many wait for a round. */
const BUSY_READ_RETRY_MS = 50;

/** What a linearizable read on the leader needs of the node. */
export interface LeaderReadTarget {
  readonly host: Pick<GroupHost, 'leaderRead'>;
  readonly batcher: Pick<Batcher, 'read'>;
  readonly scheduler: Scheduler;
}

/**
 * A linearizable read on the leader, settled once within `leftMs`: first ReadIndex
 * (GroupHost.leaderRead: one round of messages to a majority, no log slot, no fsync), served
 * at the slot it names once applied; a leader just elected, which cannot confirm that way
 * until the slots its phase 1 found are delivered, puts the read in the log instead
 * (Batcher.read), as every read did before ReadIndex.
 */
export function readOnLeader(
  target: LeaderReadTarget,
  leftMs: number,
  settle: (outcome: ReadOutcome) => void,
): void {
  const { scheduler } = target;
  const deadline = scheduler.now() + leftMs;
  let settled = false;
  const once = (outcome: ReadOutcome): void => {
    if (settled) return;
    settled = true;
    timeout.cancel();
    settle(outcome);
  };
  const timeout = scheduler.setTimer(leftMs, () => {
    cancel();
    once({ response: failure('NO_QUORUM', `read not confirmed within ${leftMs} ms`) });
  });
  const cancel = target.host.leaderRead((outcome) => {
    if (settled) return;
    if ('readIndex' in outcome) once({ slot: outcome.readIndex });
    else if (outcome.refused === 'unsettled') {
      settled = true;
      timeout.cancel();
      target.batcher.read(settle, Math.max(1, deadline - scheduler.now()));
    } else if (outcome.refused === 'busy')
      once({
        response: {
          ok: false,
          error: {
            code: 'BUSY',
            message: 'too many reads wait for this leader; retry',
            retryAfterMs: BUSY_READ_RETRY_MS,
          },
        },
      });
    else
      once({
        response: failure('NOT_LEADER', 'leadership changed; retry the read', outcome.leader),
      });
  });
}
