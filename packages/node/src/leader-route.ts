import type { ClientResponse, GroupSubjects, WireFormat } from '@synod/protocol';
import type { Scheduler, Transport } from '@synod/transport';
import { failure, type Incoming } from './client-answers.js';

export const HOPS_HEADER = 'synod-hops';
/** The most hops a forwarded request makes (`hops < MAX_HOPS` before forwarding again). */
export const MAX_HOPS = 3;
/** How long a follower waits for the leader to answer a forwarded request before routing it again. */
export const FORWARD_TIMEOUT_MS = 1_000;
/** The shortest wait for a forward's answer, however close the client's deadline. */
export const MIN_FORWARD_MS = 100;
/** After a failed forward, the request is routed again this much later (if before the deadline). */
export const RETRY_PAUSE_MS = 50;
/** With no leader known (or MAX_HOPS reached), the node looks again this much later. */
export const NO_LEADER_POLL_MS = 20;

/** What routing a request to the leader needs of its node. */
export interface ForwardingNode {
  readonly nodeId: string;
  readonly group: string;
  readonly subjects: GroupSubjects;
  readonly transport: Transport;
  readonly scheduler: Scheduler;
  readonly requestTimeoutMs: number;
  /** Most request bytes this node holds forwarded and unanswered. */
  readonly maxPendingBytes: number;
  /** Who this node knows leads. */
  leader(): string | undefined;
  stopped(): boolean;
  /** Sends a response of this node's own, encoded in the request's format. */
  answer(m: Incoming, format: WireFormat, response: ClientResponse): void;
}

/**
 * Gets a client request to the leader: runs it here when this node leads, forwards it when
 * another node does (at most MAX_HOPS hops), waits while no leader is known, and gives up at
 * the client's deadline. What it forwards it holds until answered, within maxPendingBytes.
 */
export class LeaderRoute {
  readonly #n: ForwardingNode;
  /** Request bytes this node forwarded to the leader and holds until it answers. */
  #forwardedBytes = 0;

  constructor(node: ForwardingNode) {
    this.#n = node;
  }

  /**
   * Runs `atLeader` if this node leads, with what is left of the request's time (the client's
   * deadline holds even when this node waited to become leader); otherwise forwards the
   * request to the leader as a request of its own, and routes it again if that leader does
   * not answer (it may have died before anyone noticed; a write's (clientId, seq) is applied
   * once however often it is sent).
   */
  route(
    m: Incoming,
    format: WireFormat,
    kind: 'write' | 'read',
    hops: number,
    forward: Uint8Array,
    atLeader: (leftMs: number) => void,
  ): void {
    const clock = this.#n.scheduler;
    const deadline = clock.now() + this.#n.requestTimeoutMs;
    // A follower holds what it forwards until the leader answers: bounded, like the leader's.
    const max = this.#n.maxPendingBytes;
    if (this.#forwardedBytes > 0 && this.#forwardedBytes + forward.length > max) {
      this.#n.answer(m, format, {
        ok: false,
        error: {
          code: 'BUSY',
          message: `node ${this.#n.nodeId} is forwarding ${this.#forwardedBytes} bytes to the leader (limit ${max})`,
          retryAfterMs: 100,
        },
      });
      return;
    }
    let held = 0;
    const hold = (bytes: number): void => {
      this.#forwardedBytes += bytes - held;
      held = bytes;
    };
    const request: Incoming = {
      ...m,
      reply: (answer) => {
        hold(0);
        m.reply(answer);
      },
    };
    const route = (): void => {
      if (this.#n.stopped()) {
        hold(0);
        return;
      }
      const leader = this.#n.leader();
      if (leader === this.#n.nodeId) {
        hold(0);
        atLeader(Math.max(1, deadline - clock.now()));
      } else if (leader !== undefined && hops < MAX_HOPS) {
        hold(forward.length);
        const forwardMs = Math.max(
          MIN_FORWARD_MS,
          Math.min(FORWARD_TIMEOUT_MS, deadline - clock.now()),
        );
        this.#n.transport
          .request(this.#n.subjects.endpoint(leader, kind), forward, {
            timeoutMs: forwardMs,
            headers: { ...request.headers, [HOPS_HEADER]: String(hops + 1) },
          })
          .then(
            (answer) => {
              if (!this.#n.stopped()) request.reply(answer.data);
            },
            () => {
              if (clock.now() < deadline) clock.setTimer(RETRY_PAUSE_MS, route);
              else
                this.#n.answer(
                  request,
                  format,
                  failure(
                    'NO_QUORUM',
                    `the leader of group ${this.#n.group} did not answer within the timeout`,
                  ),
                );
            },
          );
      } else if (clock.now() < deadline) {
        clock.setTimer(NO_LEADER_POLL_MS, route);
      } else {
        this.#n.answer(
          request,
          format,
          failure('NO_QUORUM', `no leader for group ${this.#n.group} within the timeout`, leader),
        );
      }
    };
    route();
  }
}
