import type { Scheduler, TimerHandle } from './scheduler.js';

interface Task {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
  cancelled: boolean;
}

/**
 * Simulated time. Nothing runs until the owner steps it; tasks due at the same instant run
 * in the order they were scheduled. Same inputs, same order: this is what makes a seed
 * replay exactly.
 */
export class VirtualScheduler implements Scheduler {
  #now = 0;
  #seq = 0;
  readonly #heap: Task[] = [];

  now(): number {
    return this.#now;
  }

  setTimer(delayMs: number, run: () => void): TimerHandle {
    const task: Task = {
      at: this.#now + Math.max(0, delayMs),
      seq: this.#seq++,
      run,
      cancelled: false,
    };
    this.#push(task);
    return {
      cancel: () => {
        task.cancelled = true;
      },
    };
  }

  /** Runs the next due task, moving time forward to it. False when nothing is scheduled. */
  step(): boolean {
    for (;;) {
      const task = this.#pop();
      if (task === undefined) return false;
      if (task.cancelled) continue;
      this.#now = task.at;
      task.run();
      return true;
    }
  }

  /** Runs every task due at or before `until` (absolute time), then sets the clock to it. */
  runUntil(until: number): number {
    let steps = 0;
    for (;;) {
      const next = this.#peek();
      if (next === undefined || next.at > until) break;
      if (this.step()) steps++;
    }
    this.#now = Math.max(this.#now, until);
    return steps;
  }

  /** Steps until nothing is scheduled or `maxSteps` ran; returns the number of steps. */
  runUntilIdle(maxSteps = 1_000_000): number {
    let steps = 0;
    while (steps < maxSteps && this.step()) steps++;
    return steps;
  }

  /**
   * Like runUntilIdle, but lets promise callbacks run after every step, so code written
   * with promises (request().then) interleaves with simulated time as it would with real
   * timers. Still deterministic: microtasks run in a fixed order, and no real time is read.
   */
  async runUntilIdleAsync(maxSteps = 1_000_000): Promise<number> {
    let steps = 0;
    await flushMicrotasks();
    while (steps < maxSteps && this.step()) {
      steps++;
      await flushMicrotasks();
    }
    return steps;
  }

  get pending(): number {
    return this.#heap.filter((task) => !task.cancelled).length;
  }

  #peek(): Task | undefined {
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) this.#pop();
    return this.#heap[0];
  }

  #less(x: Task, y: Task): boolean {
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }

  #push(task: Task): void {
    const heap = this.#heap;
    heap.push(task);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  #pop(): Task | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && this.#less(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && this.#less(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
        i = smallest;
      }
    }
    return top;
  }
}

function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
