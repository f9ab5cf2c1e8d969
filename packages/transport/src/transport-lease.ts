import { TransportClosedError } from './errors.js';
import type {
  GatherOptions,
  GatherResult,
  MessageHandler,
  PublishOptions,
  RequestOptions,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportMessage,
  TransportStats,
} from './types.js';

/**
 * One user's share of a transport that several share (the groups of one node process over one
 * NATS connection): closing it ends its own subscriptions and refuses its own further use,
 * and leaves the connection to the others. Without it, the first group to stop closed the
 * connection under the groups still stopping, whose last messages then threw.
 */
export class TransportLease implements Transport {
  readonly #inner: Transport;
  readonly #subscriptions = new Set<Subscription>();
  #closed = false;

  constructor(inner: Transport) {
    this.#inner = inner;
  }

  get kind(): string {
    return this.#inner.kind;
  }

  get closed(): boolean {
    return this.#closed || this.#inner.closed;
  }

  publish(subject: string, data: Uint8Array, options?: PublishOptions): void {
    if (this.#closed) throw new TransportClosedError('publish');
    this.#inner.publish(subject, data, options);
  }

  subscribe(subject: string, handler: MessageHandler, options?: SubscribeOptions): Subscription {
    if (this.#closed) throw new TransportClosedError('subscribe');
    const inner = this.#inner.subscribe(subject, handler, options);
    const subscription: Subscription = {
      subject: inner.subject,
      unsubscribe: () => {
        this.#subscriptions.delete(subscription);
        inner.unsubscribe();
      },
    };
    this.#subscriptions.add(subscription);
    return subscription;
  }

  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<TransportMessage> {
    if (this.#closed) return Promise.reject(new TransportClosedError('request'));
    return this.#inner.request(subject, data, options);
  }

  gather<T>(
    subject: string,
    data: Uint8Array,
    options: GatherOptions<T>,
  ): Promise<GatherResult<T>> {
    if (this.#closed) return Promise.reject(new TransportClosedError('gather'));
    return this.#inner.gather(subject, data, options);
  }

  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(new TransportClosedError('flush'));
    return this.#inner.flush();
  }

  /** Its own subscriptions end; what it published already is the connection's to send. */
  drain(): Promise<void> {
    return this.close();
  }

  close(): Promise<void> {
    this.#closed = true;
    for (const subscription of [...this.#subscriptions]) subscription.unsubscribe();
    return Promise.resolve();
  }

  /** The shared connection's counts. */
  stats(): TransportStats {
    return this.#inner.stats();
  }
}
