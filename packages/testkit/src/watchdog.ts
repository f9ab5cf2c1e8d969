/**
 * Why a shell wrapper: a test runner can itself be SIGKILLed (a timeout, an OOM kill, Ctrl-\), and
 * then no 'exit' handler of ours runs. Every server is therefore started by a small `sh` script
 * whose standard input is a pipe held open only by this Node process. The kernel closes that pipe
 * whenever Node dies, however it dies, and the script's watcher then SIGKILLs the server at once:
 * no polling, no timing window, no helper written in another language.
 *
 * Alternatives considered: prctl(PR_SET_PDEATHSIG) (`setpriv --pdeathsig`) fires when the spawning
 * *thread* exits, which in a worker-thread test pool is long before the process does, and the kernel
 * clears it when the uid changes, which is exactly what we do for postgres under root. A detached
 * Node helper polling the parent pid costs a Node start per server and still has a polling window.
 *
 * The script runs the server as a background job so that it can report the server's real pid on
 * fd 3 (tests SIGKILL/SIGSTOP that pid directly) and exits with the server's status once the server
 * has been reaped. `wait` in a non-interactive sh does not return when the job is merely stopped,
 * so SIGSTOP/SIGCONT on the server do not end the wrapper.
 */
export const WATCHDOG_SCRIPT = [
  // Keep the lifeline pipe on fd 4: an asynchronous list in sh gets /dev/null as stdin otherwise.
  'exec 4<&0 </dev/null',
  '"$@" 3>&- 4<&- &',
  'child=$!',
  'echo "$child" >&3',
  'exec 3>&-',
  // EOF (or anything written) on the lifeline means the Node process is gone: kill the server.
  '{ read -r _ <&4; kill -KILL "$child" 2>/dev/null; } &',
  'watcher=$!',
  'exec 4<&-',
  'wait "$child"',
  'rc=$?',
  'kill "$watcher" 2>/dev/null',
  'exit "$rc"',
].join('\n');

/** argv for spawning `command args...` under the watchdog (`$0` is only a label in `ps`). */
export function watchdogArgs(command: string, args: readonly string[]): string[] {
  return ['-c', WATCHDOG_SCRIPT, 'synod-testkit-watchdog', command, ...args];
}
