import { type ChildProcess, spawn } from 'node:child_process';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { type TrackedResource, track, untrack } from './registry.js';
import { withTimeout } from './wait.js';
import { watchdogArgs } from './watchdog.js';

export interface SpawnSpec {
  /** Label for errors, e.g. "nats-server". */
  readonly name: string;
  /** Absolute path of the executable. */
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Run as this user (postgres refuses to run as root). */
  readonly uid?: number;
  readonly gid?: number;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const LOG_LIMIT = 64 * 1024;
const TAIL_LINES = 40;
const HEAD_LINES = 5;

function signalName(num: number): NodeJS.Signals | null {
  for (const [name, value] of Object.entries(constants.signals)) {
    if (value === num) return name as NodeJS.Signals;
  }
  return null;
}

/** sh reports a job killed by signal N as status 128+N. */
function decodeStatus(code: number | null, signal: NodeJS.Signals | null): ExitStatus {
  if (code !== null && code > 128) {
    const name = signalName(code - 128);
    if (name !== null) return { code: null, signal: name };
  }
  return { code, signal };
}

function unrefStream(stream: unknown): void {
  if (stream instanceof Socket) stream.unref();
}

function isMissingProcess(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === 'ESRCH';
}

/**
 * One server process under the watchdog, registered for cleanup until it has exited. The handles
 * are unref'd so a forgotten server never keeps Node alive (the 'exit' hook then kills it), and
 * ref'd again while someone awaits it, so an awaited stop() is not cut short by Node exiting.
 */
export class SupervisedProcess implements TrackedResource {
  readonly name: string;
  readonly exited: Promise<ExitStatus>;
  private readonly child: ChildProcess;
  private readonly closed: Promise<void>;
  private log = '';
  private readonly logListeners = new Set<(chunk: string) => void>();
  private hasExited = false;
  private serverPid = 0;

  private constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    // Listen before anything can be emitted: a server that fails at once exits during spawn().
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.hasExited = true;
        untrack(this);
        resolve(decodeStatus(code, signal));
      });
    });
    this.closed = new Promise((resolve) => child.once('close', () => resolve()));
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => this.appendLog(chunk));
    }
  }

  static async spawn(spec: SpawnSpec): Promise<SupervisedProcess> {
    const child = spawn('/bin/sh', watchdogArgs(spec.command, spec.args), {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      // Own process group: Ctrl-C in a terminal reaches Node, which then decides; the servers do not
      // each get a SIGINT and start shutting down behind the harness's back.
      detached: true,
      ...(spec.uid === undefined ? {} : { uid: spec.uid }),
      ...(spec.gid === undefined ? {} : { gid: spec.gid }),
    });
    child.stdin?.on('error', () => {
      // The lifeline is never written to; EPIPE after the wrapper exited is expected.
    });
    const proc = new SupervisedProcess(spec.name, child);
    const pid = await readPid(child, spec.name);
    proc.serverPid = pid;
    if (proc.running) track(proc);
    child.unref();
    for (const stream of child.stdio) unrefStream(stream);
    return proc;
  }

  /** The real server pid (not the watchdog's). */
  get pid(): number {
    return this.serverPid;
  }

  get running(): boolean {
    return !this.hasExited;
  }

  /** Called with every chunk of stdout/stderr from now on; returns an unsubscribe function. */
  onLog(listener: (chunk: string) => void): () => void {
    this.logListeners.add(listener);
    return () => this.logListeners.delete(listener);
  }

  logText(): string {
    return this.log;
  }

  /** The last lines of output; after an exit, waits briefly so the final lines are included. */
  async logTail(): Promise<string> {
    if (this.hasExited) await withTimeout(this.closed, 250, undefined);
    const lines = this.log.trimEnd().split('\n');
    if (lines.length <= TAIL_LINES) return lines.join('\n');
    // Keep the first lines too: nats-server prints a flag error first and then its whole usage text.
    return [
      ...lines.slice(0, HEAD_LINES),
      '[...]',
      ...lines.slice(-(TAIL_LINES - HEAD_LINES)),
    ].join('\n');
  }

  /** Sends a signal to the real server process without waiting (SIGSTOP, SIGCONT, SIGHUP...). */
  signal(sig: NodeJS.Signals): void {
    if (this.hasExited) return;
    try {
      process.kill(this.pid, sig);
    } catch (error) {
      if (!isMissingProcess(error)) throw error;
    }
  }

  /** Sends `sig` and resolves once the server has exited; meant for terminating signals. */
  async kill(sig: NodeJS.Signals = 'SIGKILL'): Promise<ExitStatus> {
    this.signal(sig);
    return this.awaitExit();
  }

  /** `sig` first, SIGKILL if the server is still running after `graceMs`. */
  async stop(sig: NodeJS.Signals, graceMs: number): Promise<ExitStatus> {
    if (this.hasExited) return this.exited;
    this.signal(sig);
    // A SIGSTOPped server would never act on the graceful signal.
    this.signal('SIGCONT');
    if ((await withTimeout(this.awaitExit(), graceMs, 'timeout')) === 'timeout') {
      this.signal('SIGKILL');
    }
    return this.awaitExit();
  }

  destroySync(): void {
    // Only the server: the watchdog then reaps it and exits by itself. Killing the watchdog too
    // would leave the server's zombie to whatever init this container has.
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  private async awaitExit(): Promise<ExitStatus> {
    if (this.hasExited) return this.exited;
    this.child.ref();
    try {
      return await this.exited;
    } finally {
      this.child.unref();
    }
  }

  private appendLog(chunk: string): void {
    if (chunk === '') return;
    this.log += chunk;
    if (this.log.length > LOG_LIMIT) this.log = this.log.slice(-LOG_LIMIT);
    for (const listener of this.logListeners) listener(chunk);
  }
}

function readPid(child: ChildProcess, name: string): Promise<number> {
  const pidStream = child.stdio[3] as Readable | null | undefined;
  return new Promise((resolve, reject) => {
    if (pidStream === null || pidStream === undefined) {
      reject(new Error(`${name}: watchdog pid pipe missing`));
      return;
    }
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const newline = text.indexOf('\n');
      if (newline < 0) return;
      cleanup();
      const pid = Number.parseInt(text.slice(0, newline), 10);
      if (Number.isInteger(pid) && pid > 0) resolve(pid);
      else reject(new Error(`${name}: watchdog reported an invalid pid ${JSON.stringify(text)}`));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(new Error(`${name}: could not spawn /bin/sh: ${error.message}`));
    };
    // 'close' on fd 3, not the child's 'exit': data on the pipe is always delivered before its EOF.
    const onClose = (): void => {
      cleanup();
      reject(new Error(`${name}: watchdog exited before reporting a pid`));
    };
    const cleanup = (): void => {
      pidStream.off('data', onData);
      pidStream.off('close', onClose);
      child.off('error', onError);
    };
    pidStream.on('data', onData);
    pidStream.once('close', onClose);
    child.once('error', onError);
  });
}
