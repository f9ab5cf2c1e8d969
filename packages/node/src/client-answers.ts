import type { ClientResponse, ErrorBody, ErrorCode } from '@synod/protocol';

/** A client request, from NATS or from this process, and where its answer goes. */
export interface Incoming {
  readonly data: Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sends the encoded answer (a forwarded request's answer as the leader encoded it). */
  reply(answer: Uint8Array): void;
}

/** A failed request's answer. */
export function failure(
  code: ErrorCode,
  message: string,
  leader?: string,
  more: Pick<ErrorBody, 'sqlState' | 'limitBytes'> = {},
): ClientResponse {
  return {
    ok: false,
    error: { code, message, ...(leader === undefined ? {} : { leader }), ...more },
  };
}

/** A machine's error as a client is told it: its SQLSTATE too, when it has one. */
export function machineFailure(error: unknown): ClientResponse {
  const message = error instanceof Error ? error.message : String(error);
  // A key held by a prepared transaction (kv's KeyHeldError): the read may be sent again.
  const retryAfterMs = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  if (typeof retryAfterMs === 'number')
    return { ok: false, error: { code: 'BUSY', message, retryAfterMs } };
  // Duck-typed: the node does not depend on the SQL machine's error class.
  const state = (error as { sqlState?: unknown } | null)?.sqlState;
  return failure(
    'BAD_REQUEST',
    message,
    undefined,
    typeof state === 'string' && /^[0-9A-Z]{5}$/.test(state) ? { sqlState: state } : {},
  );
}
