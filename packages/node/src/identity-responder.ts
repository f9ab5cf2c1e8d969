import type { Logger } from '@synod/log';
import type { Subscription, Transport, TransportMessage } from '@synod/transport';
import { judge } from './admission-rules.js';
import type { Identity } from './identity-file.js';
import {
  decodeIdentityRequest,
  encodeIdentity,
  identitySubject,
  type Verdict,
} from './identity-messages.js';
import type { IdentityStore } from './identity-store.js';

export interface IdentityResponderOptions {
  /** The node's own connection, never held back: waiting nodes answer too. */
  readonly transport: Transport;
  readonly group: string;
  readonly node: string;
  /** Sorted. */
  readonly founders: readonly string[];
  readonly identity: IdentityStore;
  readonly logger?: Logger | undefined;
  /** A peer asked (after its answer is sent). */
  readonly asked?: () => void;
}

/**
 * Answers `synod.<group>.identity` for this node, waiting or voting: judges each request
 * (admission-rules' judge) and, when the asker's incarnation is new to it, records it durably
 * before answering `recorded`: an answer is a promise to remember.
 */
export class IdentityResponder {
  readonly #o: IdentityResponderOptions;
  readonly #subscription: Subscription;
  /** The members in this node's log; undefined while it waits to be admitted. */
  #members: (() => readonly string[]) | undefined;
  #stopped = false;

  constructor(options: IdentityResponderOptions) {
    this.#o = options;
    this.#subscription = options.transport.subscribe(identitySubject(options.group), (m) =>
      this.#answer(m),
    );
  }

  /** The node votes now: judge by the members in its log from here on. */
  voting(members: () => readonly string[]): void {
    this.#members = members;
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (!this.#o.transport.closed) this.#subscription.unsubscribe();
  }

  #answer(m: TransportMessage): void {
    const reply = m.reply;
    if (this.#stopped || reply === undefined) return;
    const o = this.#o;
    const request = decodeIdentityRequest(m.data, o.group);
    // Malformed requests are dropped like any bad network input; a node ignores its own.
    if (request === undefined || request.node === o.node) return;
    // A voting node judges by its log: until the runtime runs, the asker asks again.
    if (this.#members === undefined && o.identity.current.state === 'voting') return;
    const view = (identity: Identity) => ({
      node: o.node,
      founders: o.founders,
      members: this.#members?.() ?? null,
      known: identity.known,
    });
    let verdict: Verdict = 'recorded';
    o.identity
      .update((identity) => {
        // Judged against the registry as it is once earlier records are written.
        const judged = judge(view(identity), request);
        verdict = judged.verdict;
        if (!judged.record) return undefined;
        return {
          ...identity,
          known: {
            ...identity.known,
            [request.node]: { incarnation: request.incarnation, at: Date.now() },
          },
        };
      })
      .then(
        (identity) => {
          if (verdict === 'conflict')
            o.logger?.warn(
              {
                peer: request.node,
                asked: request.incarnation,
                known: identity.known[request.node]?.incarnation,
              },
              'a node asks to vote with an incarnation other than the one it voted as: its state is lost; refused',
            );
          if (this.#stopped || o.transport.closed) return;
          const members = this.#members?.();
          o.transport.publish(
            reply,
            encodeIdentity({
              type: 'identity-answer',
              v: 1,
              group: o.group,
              node: o.node,
              incarnation: identity.incarnation,
              voting: members !== undefined,
              founders: o.founders,
              members: members === undefined ? null : [...members].sort(),
              verdict,
              known: identity.known,
            }),
          );
          o.asked?.();
        },
        // Not recorded, so no answer: the asker asks again.
        (error: unknown) =>
          o.logger?.error({ err: error, peer: request.node }, 'identity: recording a peer failed'),
      );
  }
}
