/** Base class of every error a Transport raises, so callers can tell transport trouble from bugs. */
export class TransportError extends Error {
  override readonly name: string = 'TransportError';
}

/** The transport was closed (by its owner, or because the connection gave up). */
export class TransportClosedError extends TransportError {
  override readonly name = 'TransportClosedError';
  constructor(operation: string) {
    super(`transport is closed: cannot ${operation}`);
  }
}

/** A request got no reply within its timeout. */
export class TransportTimeoutError extends TransportError {
  override readonly name = 'TransportTimeoutError';
  readonly subject: string;
  readonly timeoutMs: number;
  constructor(subject: string, timeoutMs: number) {
    super(`no reply on ${subject} within ${timeoutMs} ms`);
    this.subject = subject;
    this.timeoutMs = timeoutMs;
  }
}

/** Nobody subscribes to the subject a request went to (NATS status 503). */
export class NoRespondersError extends TransportError {
  override readonly name = 'NoRespondersError';
  readonly subject: string;
  constructor(subject: string) {
    super(`no responders on ${subject}`);
    this.subject = subject;
  }
}

/**
 * The first connection could not be made. The message names the servers without any
 * user:password@ or token@ part, and `secrets` (passwords, tokens) are blotted out of the
 * reason, so the message can be printed and logged.
 */
export class TransportConnectError extends TransportError {
  override readonly name = 'TransportConnectError';
  readonly servers: readonly string[];
  constructor(servers: readonly string[], cause: unknown, secrets: readonly string[] = []) {
    const shown = servers.map(withoutUserinfo);
    let reason = cause instanceof Error ? cause.message : String(cause);
    for (const secret of secrets) if (secret !== '') reason = reason.split(secret).join('***');
    super(`cannot connect to NATS at ${shown.join(', ') || '(no servers)'}: ${reason}`, {
      cause,
    });
    this.servers = shown;
  }
}

/** `nats://user:pass@host:4222` as `nats://host:4222`: a URL fit to print. */
export function withoutUserinfo(url: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  const rest = url.slice(scheme.length);
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
  const at = authority.lastIndexOf('@');
  return at === -1 ? url : `${scheme}${rest.slice(at + 1)}`;
}

/** A subject that is not a valid NATS subject (empty tokens, whitespace, misplaced wildcards). */
export class InvalidSubjectError extends TransportError {
  override readonly name = 'InvalidSubjectError';
  constructor(subject: string, reason: string) {
    super(`invalid subject ${JSON.stringify(subject)}: ${reason}`);
  }
}

/** A payload over the transport's maximum message size. Nothing was sent. */
export class PayloadTooLargeError extends TransportError {
  override readonly name = 'PayloadTooLargeError';
  constructor(size: number, limit: number) {
    super(`payload of ${size} bytes is over the limit of ${limit}`);
  }
}
