import {
  type GatherOptions,
  type GatherResult,
  type MessageHandler,
  type PublishOptions,
  type RequestOptions,
  type SubscribeOptions,
  type Subscription,
  type Transport,
  TransportClosedError,
  type TransportMessage,
  type TransportStats,
} from '@synod/transport';

/**
 * A node's transport, its peer traffic held back until the node may vote: while held, what it
 * publishes to its peers does not leave and their messages do not reach it (its acceptor and
 * proposers are cut off, as by a partition, so it neither votes nor proposes with ballots it
 * may have used before): subscriptions to peer subjects are only made on release. Its
 * requests (a forwarded client request, asking to join) wait for the release too. Client
 * traffic (requests in, answers out to inboxes) passes: the node answers clients as one
 * that knows no leader does, instead of leaving the group's subjects without responders.
 * Closing closes the connection underneath, as the runtime's own transport would.
 */
export class HeldTransport implements Transport {
  readonly #inner: Transport;
  readonly #peer: (subject: string) => boolean;
  #held = true;
  #pending: HeldSubscription[] = [];
  #waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  /** `peer` tells the subjects of peer traffic (held) from the rest. */
  constructor(inner: Transport, peer: (subject: string) => boolean) {
    this.#inner = inner;
    this.#peer = peer;
  }

  get kind(): string {
    return this.#inner.kind;
  }

  get closed(): boolean {
    return this.#inner.closed;
  }

  get held(): boolean {
    return this.#held;
  }

  /** Lets everything through from now on: subscriptions made while held start now. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    // A node stopped meanwhile has nothing left to subscribe.
    if (!this.#inner.closed)
      for (const subscription of this.#pending) subscription.start(this.#inner);
    this.#pending = [];
    for (const waiter of this.#waiters) waiter.resolve();
    this.#waiters = [];
  }

  publish(subject: string, data: Uint8Array, options?: PublishOptions): void {
    if (!this.#held || !this.#peer(subject)) this.#inner.publish(subject, data, options);
  }

  subscribe(subject: string, handler: MessageHandler, options?: SubscribeOptions): Subscription {
    if (!this.#held || !this.#peer(subject))
      return this.#inner.subscribe(subject, handler, options);
    const subscription = new HeldSubscription(subject, handler, options, (s) => {
      this.#pending = this.#pending.filter((p) => p !== s);
    });
    this.#pending.push(subscription);
    return subscription;
  }

  async request(
    subject: string,
    data: Uint8Array,
    options: RequestOptions,
  ): Promise<TransportMessage> {
    await this.#released();
    return this.#inner.request(subject, data, options);
  }

  async gather<T>(
    subject: string,
    data: Uint8Array,
    options: GatherOptions<T>,
  ): Promise<GatherResult<T>> {
    await this.#released();
    return this.#inner.gather(subject, data, options);
  }

  flush(): Promise<void> {
    return this.#inner.flush();
  }

  drain(): Promise<void> {
    return this.#inner.drain();
  }

  close(): Promise<void> {
    for (const waiter of this.#waiters) waiter.reject(new TransportClosedError('request'));
    this.#waiters = [];
    return this.#inner.close();
  }

  stats(): TransportStats {
    return this.#inner.stats();
  }

  /** Resolves once released; rejects if the transport is closed first. */
  #released(): Promise<void> {
    if (!this.#held) return Promise.resolve();
    if (this.#inner.closed) return Promise.reject(new TransportClosedError('request'));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }
}

class HeldSubscription implements Subscription {
  #real: Subscription | undefined;
  #cancelled = false;

  constructor(
    readonly subject: string,
    readonly handler: MessageHandler,
    readonly options: SubscribeOptions | undefined,
    readonly forget: (s: HeldSubscription) => void,
  ) {}

  start(transport: Transport): void {
    if (!this.#cancelled)
      this.#real = transport.subscribe(this.subject, this.handler, this.options);
  }

  unsubscribe(): void {
    this.#cancelled = true;
    this.forget(this);
    this.#real?.unsubscribe();
  }
}
