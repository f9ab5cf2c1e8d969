import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';

/** The first line a server sends on a fresh TCP connection, or undefined if none within `timeoutMs`. */
export function firstLine(port: number, timeoutMs = 2_000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    const done = (line: string | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(line);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      const newline = text.indexOf('\r\n');
      if (newline >= 0) done(text.slice(0, newline));
    });
    socket.once('error', () => done(undefined));
    socket.once('close', () => done(undefined));
  });
}

export function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function taskState(path: string): string | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** True once every thread of `pid` is stopped (SIGSTOP reaches a multi-threaded process's threads one by one). */
export function processStopped(pid: number): boolean {
  try {
    const tasks = readdirSync(`/proc/${pid}/task`);
    return tasks.length > 0 && tasks.every((t) => taskState(`/proc/${pid}/task/${t}/stat`) === 'T');
  } catch {
    return false;
  }
}

/** Polls until `condition` holds or `timeoutMs` passes; returns the last result. */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 3_000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
