import { constants } from 'node:os';

export interface StopSignals {
  /** Resolves with the first SIGINT or SIGTERM. */
  readonly requested: Promise<NodeJS.Signals>;
  /** Stops listening, so that a signal after the command ends acts as usual. */
  dispose(): void;
}

/**
 * Listens for SIGINT and SIGTERM: the first asks for a clean stop, a second one (a stop that
 * hangs, a user pressing Ctrl-C again) exits at once with 128 + the signal's number, the
 * shell's convention. Dispose when done: a listener left behind swallows the next signal.
 */
export function listenForStop(): StopSignals {
  let resolve: (signal: NodeJS.Signals) => void = () => undefined;
  const requested = new Promise<NodeJS.Signals>((r) => {
    resolve = r;
  });
  let received = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received) process.exit(128 + constants.signals[signal]);
    received = true;
    resolve(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    requested,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
