/**
 * Message delays behind what a commit node does now: set while a received message is handled
 * (its `hops`), carried over a log write or an fsync to what follows from it, and one more on
 * every message sent. `npm run bench:commit` reports the longest chain as the paper counts it.
 */
export class CausalHops {
  current = 0;

  /** Runs `step` as caused by something `hops` message delays from the client's request. */
  at<T>(hops: number, step: () => T): T {
    const outer = this.current;
    this.current = hops;
    try {
      return step();
    } finally {
      this.current = outer;
    }
  }
}
