import { createClientCodec, groupSubjects } from '@synod/protocol';
import type { Scheduler } from '@synod/transport';
import type { NodeRuntimeOptions } from './runtime-options.js';

/** How often a joining node asks to be added until a leader answers. */
const JOIN_RETRY_MS = 1_000;
/** The longest wait between two asks. */
const JOIN_RETRY_MAX_MS = 10_000;

/** The joining node: its clock, and whether it has stopped (then it asks no more). */
export interface Joiner {
  readonly scheduler: Scheduler;
  stopped(): boolean;
}

/**
 * A node started to join asks the group (through any node, which routes to the leader) to
 * add it, and asks again until a leader has put it in the log. Asking when already a member
 * is answered at once, so a restarted joiner does no harm.
 */
export function askToJoin(
  options: Pick<NodeRuntimeOptions, 'transport' | 'group' | 'nodeId' | 'logger'>,
  joiner: Joiner,
): void {
  const codec = createClientCodec();
  const subject = groupSubjects(options.group).write;
  const ask = (delayMs: number): void => {
    if (joiner.stopped()) return;
    const body = codec.encodeWrite(
      { clientId: `join-${options.nodeId}`, seq: 1, command: { op: 'join', node: options.nodeId } },
      'json',
    );
    const again = (reason: string): void => {
      options.logger?.info({ reason, retryMs: delayMs }, 'not a member yet: asking again');
      if (!joiner.stopped())
        joiner.scheduler.setTimer(delayMs, () => ask(Math.min(delayMs * 2, JOIN_RETRY_MAX_MS)));
    };
    options.transport.request(subject, body, { timeoutMs: JOIN_RETRY_MS * 3 }).then(
      (answer) => {
        const response = codec.decodeResponse(answer.data);
        if (!response.ok) again(response.error.message);
        else
          options.logger?.info(
            { slot: response.slot, result: response.result },
            'joined the group: the log now lists this node as a member',
          );
      },
      (error: unknown) => again(error instanceof Error ? error.message : String(error)),
    );
  };
  ask(JOIN_RETRY_MS);
}
