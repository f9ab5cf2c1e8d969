/** A message as a handler sees it. `data` belongs to the handler; it may keep or change it. */
export interface TransportMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** Where to publish an answer, when the sender asked for one. */
  readonly reply?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export type MessageHandler = (message: TransportMessage) => void | Promise<void>;

export interface PublishOptions {
  readonly reply?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group instead of to all. */
  readonly queue?: string;
}

export interface Subscription {
  readonly subject: string;
  unsubscribe(): void;
}

export interface RequestOptions {
  readonly timeoutMs: number;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface GatherOptions<T> {
  /** Give up waiting after this long; the replies so far are returned. */
  readonly timeoutMs: number;
  /** Turns a reply into a value; return undefined to ignore the reply (e.g. it does not decode). */
  readonly map: (message: TransportMessage) => T | undefined;
  /** Stop as soon as this holds for the replies so far, e.g. a quorum answered. */
  readonly until?: (replies: readonly T[]) => boolean;
  /** Never keep more than this many replies (default 1,000). */
  readonly maxReplies?: number;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface GatherResult<T> {
  readonly replies: readonly T[];
  /** `until` held: the caller got what it asked for. */
  readonly satisfied: boolean;
  /** The timeout ran out before `until` held. */
  readonly timedOut: boolean;
  /** Nobody subscribes to the subject (only NATS can tell; the in-memory transport emulates it). */
  readonly noResponders: boolean;
}

export interface TransportStats {
  readonly published: number;
  readonly received: number;
  readonly reconnects: number;
  readonly handlerErrors: number;
}

/**
 * How synod's nodes and clients talk. NATS semantics: at-most-once, subjects with `*` and
 * `>` wildcards, queue groups, request/reply through inbox subjects. Implementations: NATS
 * (connectNats) and in memory (MemoryNetwork), held to one contract test suite.
 */
export interface Transport {
  /** 'nats' or 'memory'. */
  readonly kind: string;
  readonly closed: boolean;
  publish(subject: string, data: Uint8Array, options?: PublishOptions): void;
  subscribe(subject: string, handler: MessageHandler, options?: SubscribeOptions): Subscription;
  /** One reply, or TransportTimeoutError / NoRespondersError / TransportClosedError. */
  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<TransportMessage>;
  /** Send once and collect replies until `until` holds, the timeout runs out, or nobody listens. */
  gather<T>(subject: string, data: Uint8Array, options: GatherOptions<T>): Promise<GatherResult<T>>;
  /** Resolves when what this transport published so far has left it (NATS: reached the server). */
  flush(): Promise<void>;
  /** Stop receiving, let handlers in progress finish and published messages leave, then close. */
  drain(): Promise<void>;
  /** Close now. Pending requests fail with TransportClosedError. Idempotent. */
  close(): Promise<void>;
  stats(): TransportStats;
}
