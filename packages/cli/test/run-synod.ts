// Runs the built `synod` command as a process and says how it ended and how long it took.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const SYNOD = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export interface Ended {
  /** The exit status; null when killed by a signal (e.g. because it hung). */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export interface Running {
  readonly child: ChildProcess;
  /** What was written to standard error so far. */
  stderr(): string;
  readonly ended: Promise<Ended>;
}

/** Starts `synod ARGS`; it is killed with SIGKILL after `killAfterMs`, so a hang cannot stall a test. */
export function startSynod(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; killAfterMs?: number } = {},
): Running {
  const started = performance.now();
  const child = spawn(process.execPath, [SYNOD, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => {
    stdout += String(chunk);
  });
  child.stderr!.on('data', (chunk) => {
    stderr += String(chunk);
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs ?? 5_000);
  const ended = new Promise<Ended>((resolve) =>
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    }),
  );
  return { child, stderr: () => stderr, ended };
}

export function synod(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; killAfterMs?: number } = {},
): Promise<Ended> {
  return startSynod(args, options).ended;
}

/**
 * How long this machine takes to start Node.js and load nothing: "exits within a second"
 * means a second on top of this, so that a busy machine does not fail the test.
 */
export function nodeStartupMs(): number {
  const started = performance.now();
  execFileSync(process.execPath, ['-e', '0']);
  return performance.now() - started;
}
