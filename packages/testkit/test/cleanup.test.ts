import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, processAlive } from './helpers.js';

const srcDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');

// The child must use the harness exactly as it is in src/ (not a possibly stale dist/), without a
// TypeScript loader in plain node: transpile src/ into a temp dir once for all cases.
let workDir = '';
beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'synod-'));
  for (const file of readdirSync(srcDir).filter((f) => f.endsWith('.ts'))) {
    const { outputText } = ts.transpileModule(readFileSync(join(srcDir, file), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    writeFileSync(join(workDir, file.replace(/\.ts$/, '.js')), outputText);
  }
  writeFileSync(join(workDir, 'package.json'), '{"type":"module"}');
  writeFileSync(
    join(workDir, 'child.js'),
    `import { startNatsServer } from './index.js';
const server = await startNatsServer();
process.stdout.write(JSON.stringify({ pid: server.pid }) + '\\n');
// 'stay' keeps the event loop busy until the test kills us; 'exit' just falls off the end.
if (process.argv[2] === 'stay') setInterval(() => {}, 60_000);
`,
  );
});
afterAll(() => {
  if (workDir !== '') rmSync(workDir, { recursive: true, force: true });
});

function startChild(mode: 'stay' | 'exit'): { child: ChildProcess; serverPid: Promise<number> } {
  const child = spawn(process.execPath, [join(workDir, 'child.js'), mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const serverPid = new Promise<number>((resolve, reject) => {
    let text = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) resolve((JSON.parse(text.split('\n')[0]!) as { pid: number }).pid);
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`child exited (${code ?? signal}) before reporting`)),
    );
  });
  return { child, serverPid };
}

function exited(child: ChildProcess): Promise<NodeJS.Signals | number | null> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve(child.signalCode ?? child.exitCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
}

describe('cleanup', () => {
  it('a SIGKILLed parent leaves no nats-server behind', async () => {
    const { child, serverPid } = startChild('stay');
    const pid = await serverPid;
    expect(processAlive(pid)).toBe(true);
    child.kill('SIGKILL');
    await exited(child);
    // The watchdog notices at once (its lifeline pipe closes); allow for scheduling only.
    expect(await eventually(() => !processAlive(pid), 2_000)).toBe(true);
  });

  it('a parent that exits without stopping its server takes the server with it', async () => {
    const { child, serverPid } = startChild('exit');
    const pid = await serverPid;
    // Nothing keeps the child's event loop alive, so it ends by itself: forgotten servers are unref'd.
    expect(await exited(child)).toBe(0);
    expect(await eventually(() => !processAlive(pid), 2_000)).toBe(true);
  });

  it('SIGTERM to the parent kills its servers and still ends the parent by SIGTERM', async () => {
    const { child, serverPid } = startChild('stay');
    const pid = await serverPid;
    child.kill('SIGTERM');
    expect(await exited(child)).toBe('SIGTERM');
    // SIGKILLed synchronously; the pid is gone once the watchdog has reaped it.
    expect(await eventually(() => !processAlive(pid), 2_000)).toBe(true);
  });
});
