import { NoRespondersError, TransportClosedError, TransportTimeoutError } from './errors.js';
import type { Scheduler, TimerHandle } from './scheduler.js';
import type { GatherOptions, GatherResult, TransportMessage } from './types.js';

/** A reply as the mux sees it: a message, or the server's "no responders" status. */
export interface InboxReply {
  readonly message: TransportMessage;
  readonly noResponders: boolean;
}

type Waiter = (reply: InboxReply) => void;

const DEFAULT_MAX_REPLIES = 1000;

/**
 * Request/reply over one wildcard inbox subscription (`<prefix>.*`) per transport, matching
 * replies by the last token. One subscription instead of one per request is what lets a
 * requester keep hundreds of requests in flight cheaply (DEPENDENCIES.md: ~6x faster than
 * nats.js request() under pipelining). Both transports share this code.
 */
export class InboxMux {
  readonly #prefix: string;
  readonly #scheduler: Scheduler;
  readonly #waiters = new Map<string, Waiter>();
  readonly #cancels = new Set<() => void>();
  #next = 0;

  constructor(prefix: string, scheduler: Scheduler) {
    this.#prefix = prefix;
    this.#scheduler = scheduler;
  }

  /** The subscription subject that must deliver to dispatch(). */
  get subscription(): string {
    return `${this.#prefix}.*`;
  }

  dispatch(reply: InboxReply): void {
    const token = reply.message.subject.slice(this.#prefix.length + 1);
    this.#waiters.get(token)?.(reply);
  }

  request(
    subject: string,
    timeoutMs: number,
    send: (replySubject: string) => void,
  ): Promise<TransportMessage> {
    return new Promise((resolve, reject) => {
      const { token, replySubject } = this.#allocate();
      let timer: TimerHandle | undefined;
      const finish = (): void => {
        timer?.cancel();
        this.#waiters.delete(token);
        this.#cancels.delete(cancel);
      };
      const cancel = (): void => {
        finish();
        reject(new TransportClosedError(`wait for a reply on ${subject}`));
      };
      this.#waiters.set(token, (reply) => {
        finish();
        if (reply.noResponders) reject(new NoRespondersError(subject));
        else resolve(reply.message);
      });
      this.#cancels.add(cancel);
      timer = this.#scheduler.setTimer(timeoutMs, () => {
        finish();
        reject(new TransportTimeoutError(subject, timeoutMs));
      });
      try {
        send(replySubject);
      } catch (error) {
        finish();
        reject(error);
      }
    });
  }

  gather<T>(
    subject: string,
    options: GatherOptions<T>,
    send: (replySubject: string) => void,
  ): Promise<GatherResult<T>> {
    const maxReplies = options.maxReplies ?? DEFAULT_MAX_REPLIES;
    return new Promise((resolve, reject) => {
      const { token, replySubject } = this.#allocate();
      const replies: T[] = [];
      let timer: TimerHandle | undefined;
      const finish = (result: Omit<GatherResult<T>, 'replies'>): void => {
        timer?.cancel();
        this.#waiters.delete(token);
        this.#cancels.delete(cancel);
        resolve({ replies, ...result });
      };
      const cancel = (): void => {
        timer?.cancel();
        this.#waiters.delete(token);
        this.#cancels.delete(cancel);
        reject(new TransportClosedError(`gather replies on ${subject}`));
      };
      const satisfied = (): boolean => options.until?.(replies) ?? false;
      this.#waiters.set(token, (reply) => {
        if (reply.noResponders) {
          finish({ satisfied: satisfied(), timedOut: false, noResponders: true });
          return;
        }
        const value = options.map(reply.message);
        if (value === undefined) return;
        replies.push(value);
        if (satisfied()) finish({ satisfied: true, timedOut: false, noResponders: false });
        else if (replies.length >= maxReplies)
          finish({ satisfied: false, timedOut: false, noResponders: false });
      });
      this.#cancels.add(cancel);
      timer = this.#scheduler.setTimer(options.timeoutMs, () =>
        finish({ satisfied: false, timedOut: true, noResponders: false }),
      );
      try {
        send(replySubject);
      } catch (error) {
        timer.cancel();
        this.#waiters.delete(token);
        this.#cancels.delete(cancel);
        reject(error);
      }
    });
  }

  /** Fails every pending request and gather with TransportClosedError. */
  closeAll(): void {
    for (const cancel of [...this.#cancels]) cancel();
  }

  get pending(): number {
    return this.#waiters.size;
  }

  #allocate(): { token: string; replySubject: string } {
    const token = (this.#next++).toString(36);
    return { token, replySubject: `${this.#prefix}.${token}` };
  }
}

export function checkTimeout(timeoutMs: number): void {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
  }
}
