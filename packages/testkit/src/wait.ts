import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOOPBACK } from './ports.js';

export function delay(ms: number): Promise<void> {
  return sleep(ms);
}

/**
 * Resolves with `promise`'s value, or with `onTimeout` after `ms`. The timer is cleared as soon as
 * the promise settles, so a long grace period never keeps Node alive after the work is done.
 */
export async function withTimeout<T, U>(
  promise: Promise<T>,
  ms: number,
  onTimeout: U,
): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<U>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether a TCP connection to 127.0.0.1:port is accepted within `timeoutMs`. */
export function canConnect(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: LOOPBACK, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Polls `check` every `everyMs` until it resolves true; a check that throws counts as false.
 * Fails with an error naming `what` after `timeoutMs`.
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 15_000,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * Sends a request to a synod group again, as a client would, while the answer says a leader
 * change is under way (NOT_LEADER or NO_QUORUM): tests with short election timeouts can see
 * one on a busy machine, or when the request was lost (no reply). `send` must repeat the same
 * request (a write keeps its clientId and seq, so it is applied once). Returns the first other
 * answer, or the last after `attempts`.
 */
export async function whileLeaderMoves(
  send: () => Promise<Record<string, unknown>>,
  attempts = 100,
  everyMs = 50,
): Promise<Record<string, unknown>> {
  for (let attempt = 1; ; attempt++) {
    let answer: Record<string, unknown>;
    try {
      answer = await send();
    } catch (error) {
      // NATS is at-most-once: a request can be lost, e.g. delivered to the queue subscription
      // of a node that was just stopped, before the server saw its connection close. And
      // while a leader that crashed is still believed by its followers, nobody serves the
      // public write subject ("no responders"). Sent again with the same (clientId, seq), a
      // write is still applied once.
      const name = (error as Error).name;
      const retryable = name === 'TransportTimeoutError' || name === 'NoRespondersError';
      if (!retryable || attempt >= attempts) throw error;
      // "No responders" comes back at once: wait, as for a leader change, before asking again.
      if (name === 'NoRespondersError') await sleep(everyMs);
      continue;
    }
    const code = (answer.error as { code?: string } | undefined)?.code;
    if (attempt >= attempts || (code !== 'NOT_LEADER' && code !== 'NO_QUORUM')) return answer;
    await sleep(everyMs);
  }
}

/** Waits until every node `nodes()` lists knows a leader (node runtimes, in-process). */
export function leaderKnown(
  nodes: () => Iterable<{ readonly leader: string | undefined }>,
  timeoutMs = 15_000,
): Promise<void> {
  return waitFor(
    'a leader',
    async () => [...nodes()].every((n) => n.leader !== undefined),
    timeoutMs,
    20,
  );
}
