/** A cancellable timer. */
export interface TimerHandle {
  cancel(): void;
}

/**
 * Time as the transports see it. The real scheduler uses Node's timers; the simulator
 * passes a virtual one so that a seed replays the same schedule (no Date.now() inside).
 */
export interface Scheduler {
  now(): number;
  /** Runs `task` after `delayMs` (0: as soon as possible, after what is already due). */
  setTimer(delayMs: number, task: () => void): TimerHandle;
}

export const realScheduler: Scheduler = {
  now: () => performance.now(),
  setTimer(delayMs, task) {
    if (delayMs <= 0) {
      // setImmediate keeps FIFO order among zero-delay deliveries and does not clamp to 1 ms.
      const immediate = setImmediate(task);
      return { cancel: () => clearImmediate(immediate) };
    }
    const timeout = setTimeout(task, delayMs);
    return { cancel: () => clearTimeout(timeout) };
  },
};
