import { ServerStartError } from './errors.js';
import type { SupervisedProcess } from './supervised-process.js';
import { withTimeout } from './wait.js';

export interface ReadyOptions {
  readonly timeoutMs: number;
  /** Resolves true once the server answers; called repeatedly until then. */
  readonly probe: () => Promise<boolean>;
  readonly intervalMs?: number;
  /** Appended to the timeout reason, e.g. which port did not answer. */
  readonly what: string;
}

/**
 * Polls `probe` until it succeeds. A server that exits or misses the deadline is killed (so a failed
 * start leaves nothing behind) and reported as ServerStartError with the end of its log.
 */
export async function waitUntilReady(
  proc: SupervisedProcess,
  options: ReadyOptions,
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 50;
  let reason: string;
  for (;;) {
    if (!proc.running) {
      const status = await proc.exited;
      reason = `exited early (${status.signal ?? `code ${status.code}`}) before ${options.what}`;
      break;
    }
    if (await options.probe()) return;
    if (!proc.running) continue;
    if (Date.now() >= deadline) {
      reason = `not ready after ${options.timeoutMs} ms (${options.what})`;
      await proc.kill('SIGKILL');
      break;
    }
    await withTimeout(proc.exited, interval, undefined);
  }
  throw new ServerStartError(proc.name, reason, await proc.logTail());
}
