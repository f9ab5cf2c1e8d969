import type { DropReason } from '@synod/host';
import type { Logger } from '@synod/log';
import type { PeerMessage } from '@synod/protocol';

/** At most one warning per reason in this long: a flood of forgeries must not flood the log. */
const WARN_EVERY_MS = 10_000;

/**
 * Logs the peer messages a node did not believe (see @synod/host's PeerFilter), rate-limited:
 * the first of each reason at once, then one line per reason and period with the count and
 * the last sender. The counts themselves are in the node's status.
 */
export class DropLog {
  readonly #logger: Logger | undefined;
  readonly #pending = new Map<
    DropReason,
    { count: number; last: { from: string; type: string } }
  >();
  readonly #lastWarned = new Map<DropReason, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(logger: Logger | undefined) {
    this.#logger = logger;
  }

  note(reason: DropReason, message: PeerMessage): void {
    if (this.#logger === undefined) return;
    const last = { from: message.from, type: message.type };
    const now = Date.now();
    const warned = this.#lastWarned.get(reason);
    if (warned === undefined || now - warned >= WARN_EVERY_MS) {
      this.#lastWarned.set(reason, now);
      this.#logger.warn({ reason, ...last }, 'dropped a peer message');
      return;
    }
    const pending = this.#pending.get(reason) ?? { count: 0, last };
    pending.count += 1;
    pending.last = last;
    this.#pending.set(reason, pending);
    this.#timer ??= setTimeout(() => this.#flush(), WARN_EVERY_MS);
    this.#timer.unref?.();
  }

  #flush(): void {
    this.#timer = undefined;
    const now = Date.now();
    for (const [reason, { count, last }] of this.#pending) {
      this.#lastWarned.set(reason, now);
      this.#logger?.warn(
        { reason, count, lastFrom: last.from, lastType: last.type },
        `dropped ${count} more peer messages in the last ${WARN_EVERY_MS / 1000} s`,
      );
    }
    this.#pending.clear();
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
