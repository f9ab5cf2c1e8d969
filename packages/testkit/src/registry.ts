/** Something this process started and must not leave behind. `destroySync` may only use sync APIs. */
export interface TrackedResource {
  destroySync(): void;
}

const live = new Set<TrackedResource>();
let exitHookInstalled = false;
let signalHooksInstalled = false;

function destroyAll(): void {
  for (const resource of [...live]) {
    live.delete(resource);
    try {
      resource.destroySync();
    } catch {
      // Best effort: one failure must not keep the others alive.
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  destroyAll();
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  signalHooksInstalled = false;
  // Our listener suppressed Node's default "die on signal"; if nobody else handles it, re-raise it so
  // the exit status still says "killed by SIGINT/SIGTERM". Other listeners (a test runner) decide.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installHooks(): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' listeners must be synchronous; destroySync SIGKILLs, which the kernel completes for us.
    process.on('exit', destroyAll);
  }
  if (!signalHooksInstalled) {
    signalHooksInstalled = true;
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
}

export function track(resource: TrackedResource): void {
  installHooks();
  live.add(resource);
}

export function untrack(resource: TrackedResource): void {
  live.delete(resource);
}

/** How many started resources are still alive; tests use it to prove nothing leaked. */
export function trackedCount(): number {
  return live.size;
}
