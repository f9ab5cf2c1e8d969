import { type Ballot, formatBallot, majorityOf } from '@synod/protocol';
import { decodeVote, instanceOf, type Outcome, type Vote } from './types.js';

/**
 * The paper's aState: for each RM's instance, which acceptors accepted which vote at which
 * ballot, from the acceptors' phase 2b messages. An instance's vote is chosen once a majority
 * of the 2F+1 acceptors accepted it at one ballot.
 */
export class Tally {
  readonly #acceptorCount: number;
  readonly #txid: string;
  readonly #rms: readonly string[];
  /** instance -> ballot -> (vote, acceptors) */
  readonly #votes = new Map<string, Map<string, { vote: Vote; acceptors: Set<string> }>>();
  readonly #chosen = new Map<string, Vote>();

  constructor(txid: string, rms: readonly string[], acceptorCount: number) {
    this.#txid = txid;
    this.#rms = rms;
    this.#acceptorCount = acceptorCount;
  }

  /** One acceptor's phase 2b; ignored unless it names an instance of this transaction. */
  add(acceptor: string, instance: string, ballot: Ballot, value: Uint8Array): void {
    const vote = decodeVote(value);
    if (vote === undefined || !this.#rms.some((rm) => instanceOf(this.#txid, rm) === instance))
      return;
    let byBallot = this.#votes.get(instance);
    if (byBallot === undefined) {
      byBallot = new Map();
      this.#votes.set(instance, byBallot);
    }
    const key = formatBallot(ballot);
    let entry = byBallot.get(key);
    if (entry === undefined) {
      entry = { vote, acceptors: new Set() };
      byBallot.set(key, entry);
    }
    entry.acceptors.add(acceptor);
    if (entry.acceptors.size >= majorityOf(this.#acceptorCount))
      this.#chosen.set(instance, entry.vote);
  }

  /** The vote chosen in `rm`'s instance, if one is. */
  chosen(rm: string): Vote | undefined {
    return this.#chosen.get(instanceOf(this.#txid, rm));
  }

  /** The RMs whose instance has no chosen vote yet. */
  undecided(): string[] {
    return this.#rms.filter((rm) => this.chosen(rm) === undefined);
  }

  /**
   * The global commit condition: committed once every instance chose `prepared`, aborted as
   * soon as one chose `aborted`; undefined while neither holds.
   */
  outcome(): Outcome | undefined {
    if (this.#rms.some((rm) => this.chosen(rm) === 'aborted')) return 'aborted';
    return this.#rms.every((rm) => this.chosen(rm) === 'prepared') ? 'committed' : undefined;
  }
}
