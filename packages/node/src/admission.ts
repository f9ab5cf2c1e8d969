import type { Logger } from '@synod/log';
import type { Transport } from '@synod/transport';
import { type Asker, type Decision, decide } from './admission-rules.js';
import { mergeRegistry } from './identity-file.js';
import {
  decodeIdentityAnswer,
  encodeIdentity,
  type IdentityAnswer,
  identitySubject,
} from './identity-messages.js';
import type { IdentityStore } from './identity-store.js';

/** How long one round of asking waits for answers. */
const ROUND_MS = 250;
/** Pause between rounds: short while a group is likely starting together, then longer. */
const FIRST_PAUSE_MS = 100;
const MAX_PAUSE_MS = 2_000;
const QUICK_FOR_MS = 5_000;
/** How often a node that still waits says so. */
const LOG_EVERY_MS = 5_000;

export interface AdmissionOptions {
  /** The node's own connection (not held back). */
  readonly transport: Transport;
  readonly asker: Omit<Asker, 'incarnation'>;
  readonly identity: IdentityStore;
  readonly logger?: Logger | undefined;
}

/**
 * Asks the group, on `synod.<group>.identity`, to admit a node that has no acceptor state
 * (admission-rules), round after round, until it is admitted or refused. What peers report
 * of the others' incarnations is kept, so this node can witness for them later. Admission is
 * made durable (the identity says `voting`) before anyone is told.
 */
export class Admission {
  readonly #o: AdmissionOptions;
  readonly #abort = new AbortController();
  readonly #started = Date.now();
  #loggedAt = 0;
  #nudged = false;
  #wake: (() => void) | undefined;

  constructor(options: AdmissionOptions) {
    this.#o = options;
  }

  get stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  /** Ends the asking: a round in progress finishes as `waiting` and no other starts. */
  stop(): void {
    this.#abort.abort();
  }

  /**
   * A peer asked this node: it has just started, maybe the peer this node waits for. Ask again
   * now rather than after the pause (founders started one after another admit each other
   * as soon as the last one asks).
   */
  nudge(): void {
    this.#nudged = true;
    this.#wake?.();
  }

  /**
   * For a node that votes already: tells the peers its incarnation once, so they can witness
   * for it later (a directory from before identity files was never recorded), and keeps
   * what they know. Their objections are only logged: its acceptor state is here.
   */
  async announce(): Promise<void> {
    const o = this.#o;
    const asker: Asker = { ...o.asker, incarnation: o.identity.current.incarnation };
    let answers: readonly IdentityAnswer[] = [];
    try {
      const result = await o.transport.gather(
        identitySubject(asker.group),
        this.#request(asker, true),
        {
          timeoutMs: ROUND_MS * 4,
          map: (m) => decodeIdentityAnswer(m.data, asker.group),
          until: (sofar) => everyoneAnswered(asker, sofar),
          maxReplies: 100,
        },
      );
      answers = result.replies;
    } catch (error) {
      o.logger?.debug({ err: error }, 'identity: telling the group this node votes failed');
      return;
    }
    await this.#learn(answers);
    for (const answer of answers)
      if (answer.verdict !== 'recorded')
        o.logger?.warn(
          { peer: answer.node, verdict: answer.verdict, known: answer.known[asker.node] },
          'a peer does not recognise this voting node (was this data directory copied or restored from an old backup?)',
        );
  }

  #request(asker: Asker, voting: boolean): Uint8Array {
    return encodeIdentity({
      type: 'identity-request',
      v: 1,
      group: asker.group,
      node: asker.node,
      incarnation: asker.incarnation,
      voting,
      join: asker.join,
      founders: asker.founders,
    });
  }

  /** One round: ask, wait up to ROUND_MS for answers, decide. */
  async round(): Promise<Decision> {
    const o = this.#o;
    const asker: Asker = { ...o.asker, incarnation: o.identity.current.incarnation };
    const request = this.#request(asker, false);
    let answers: readonly IdentityAnswer[] = [];
    if (!this.stopped && !o.transport.closed) {
      try {
        const result = await o.transport.gather(identitySubject(asker.group), request, {
          timeoutMs: ROUND_MS,
          map: (m) => decodeIdentityAnswer(m.data, asker.group),
          // A refusal ends the round; so does admission, once every member has answered
          // (one that answers late could still know of a conflict).
          until: (sofar) => {
            const decision = decide(asker, sofar);
            return (
              decision.kind === 'refused' ||
              (decision.kind === 'admitted' && everyoneAnswered(asker, sofar))
            );
          },
          maxReplies: 100,
        });
        answers = result.replies;
      } catch (error) {
        o.logger?.debug({ err: error }, 'identity: asking the group failed; asking again');
      }
    }
    await this.#learn(answers);
    const decision = this.stopped ? waiting(asker) : decide(asker, answers);
    if (decision.kind === 'admitted') {
      await o.identity.update((identity) =>
        identity.state === 'voting' ? undefined : { ...identity, state: 'voting' },
      );
      o.logger?.info(
        { incarnation: asker.incarnation, witnesses: answers.map((a) => a.node) },
        'admitted: the group recorded this node, which now votes',
      );
    }
    return decision;
  }

  /** Rounds until admitted or refused; undefined when stopped first. */
  async untilDecided(): Promise<Exclude<Decision, { kind: 'waiting' }> | undefined> {
    for (let round = 1; !this.stopped; round++) {
      const decision = await this.round();
      if (decision.kind !== 'waiting') return decision;
      this.#report(decision);
      const elapsed = Date.now() - this.#started;
      const pause =
        elapsed < QUICK_FOR_MS ? FIRST_PAUSE_MS : Math.min(MAX_PAUSE_MS, FIRST_PAUSE_MS * round);
      await this.#pause(pause);
    }
    return undefined;
  }

  /** Waits `ms`, less if stopped or nudged (a nudge during the round counts too). */
  async #pause(ms: number): Promise<void> {
    if (this.#nudged) {
      this.#nudged = false;
      return;
    }
    const signal = this.#abort.signal;
    if (signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        this.#nudged = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.#wake = done;
    });
  }

  /** Registries the peers sent: what they witnessed, this node now witnesses too. */
  async #learn(answers: readonly IdentityAnswer[]): Promise<void> {
    const self = this.#o.asker.node;
    if (answers.length === 0) return;
    await this.#o.identity
      .update((identity) => {
        let known = identity.known;
        for (const answer of answers) known = mergeRegistry(known, answer.known, self) ?? known;
        return known === identity.known ? undefined : { ...identity, known };
      })
      .catch((error: unknown) =>
        this.#o.logger?.warn({ err: error }, 'identity: keeping what peers know failed'),
      );
  }

  #report(decision: Extract<Decision, { kind: 'waiting' }>): void {
    const now = Date.now();
    if (now - this.#loggedAt < LOG_EVERY_MS) return;
    const first = this.#loggedAt === 0;
    this.#loggedAt = now;
    const a = this.#o.asker;
    const fields = {
      waitingMs: now - this.#started,
      recorded: decision.have,
      needed: decision.need,
      notYet: decision.missing,
    };
    const message = `no acceptor state here yet: not voting until ${decision.need} of the other members of group ${a.group} (${decision.missing.join(', ')} not yet) have recorded this node on ${identitySubject(a.group)}`;
    if (first) this.#o.logger?.info(fields, message);
    else this.#o.logger?.warn(fields, message);
  }
}

/** Whether every member (as voting peers report them; else the founders) has answered. */
function everyoneAnswered(asker: Asker, answers: readonly IdentityAnswer[]): boolean {
  const answered = new Set(answers.map((a) => a.node));
  const reported = answers.flatMap((a) => a.members ?? []);
  const members = new Set(reported.length > 0 ? reported : asker.founders);
  members.delete(asker.node);
  return [...members].every((m) => answered.has(m));
}

function waiting(asker: Asker): Decision {
  return {
    kind: 'waiting',
    missing: asker.founders.filter((f) => f !== asker.node),
    need: 0,
    have: 0,
  };
}
