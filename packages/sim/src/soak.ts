#!/usr/bin/env node
// npm run sim:soak [-- --seeds N --start S --jobs J --out DIR --foreground]
// Many seeds of both modes, spread over worker threads, for the bugs CI's bounded run misses.
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { replayCommand, runSeeds } from './sim/batch.js';
import type { SimMode } from './sim/scenario.js';

const USAGE = `usage: npm run sim:soak -- [--seeds N] [--start S] [--jobs J] [--out DIR] [--foreground]

Runs N seeds (default 100000) from S (default: random, printed) in each mode, leaderless and
leader, on J worker threads (default: the cores), and reports every failing seed with the
command that replays it. Without --foreground it detaches and writes DIR/soak.log (default
DIR: sim-soak/ in the current directory), then DIR/report.txt when done.`;

interface Chunk {
  readonly mode: SimMode;
  readonly start: number;
  readonly count: number;
}

interface ChunkResult {
  readonly chunk: Chunk;
  readonly failing: readonly { seed: number; violations: readonly string[]; replay: string }[];
  readonly undecided: number;
  readonly steps: number;
}

const CHUNK_SEEDS = 500;

if (!isMainThread) {
  const chunk = workerData as Chunk;
  const failing: ChunkResult['failing'][number][] = [];
  const summary = runSeeds({
    start: chunk.start,
    count: chunk.count,
    mode: chunk.mode,
    onResult: (result, replay) => {
      if (result.violations.length > 0)
        failing.push({ seed: result.seed, violations: result.violations, replay });
    },
  });
  const result: ChunkResult = {
    chunk,
    failing,
    undecided: summary.undecided,
    steps: summary.steps,
  };
  parentPort?.postMessage(result);
} else {
  main();
}

function main(): void {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (error) {
    console.error(`sim:soak: ${error instanceof Error ? error.message : String(error)}`);
    console.error(USAGE);
    process.exit(2);
  }
  const { values } = parsed;
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const seeds = positive('seeds', values.seeds ?? '100000');
  const start = positive('start', values.start ?? String(1 + Math.floor(Math.random() * 1e9)));
  const jobs = positive('jobs', values.jobs ?? String(availableParallelism()));
  const out = resolve(values.out ?? 'sim-soak');
  mkdirSync(out, { recursive: true });
  if (!values.foreground) {
    const log = join(out, 'soak.log');
    const fd = openSync(log, 'w');
    const args = [
      process.argv[1]!,
      '--foreground',
      `--seeds=${seeds}`,
      `--start=${start}`,
      `--jobs=${jobs}`,
      `--out=${out}`,
    ];
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd] });
    child.unref();
    console.log(`sim:soak: seeds ${start}..${start + seeds - 1} in each mode, pid ${child.pid}`);
    console.log(`  follow: tail -f ${log}`);
    console.log(`  report: ${join(out, 'report.txt')} when done`);
    return;
  }
  void soak({ seeds, start, jobs, out });
}

function parse() {
  return parseArgs({
    options: {
      seeds: { type: 'string' },
      start: { type: 'string' },
      jobs: { type: 'string' },
      out: { type: 'string' },
      foreground: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(`sim:soak: --${name} must be a positive integer, got ${text}`);
    process.exit(2);
  }
  return n;
}

async function soak(options: {
  seeds: number;
  start: number;
  jobs: number;
  out: string;
}): Promise<void> {
  const started = Date.now();
  const chunks: Chunk[] = [];
  for (const mode of ['leaderless', 'leader'] as const)
    for (let s = options.start; s < options.start + options.seeds; s += CHUNK_SEEDS)
      chunks.push({
        mode,
        start: s,
        count: Math.min(CHUNK_SEEDS, options.start + options.seeds - s),
      });
  const total = chunks.length;
  const results: ChunkResult[] = [];
  console.log(
    `sim:soak: seeds ${options.start}..${options.start + options.seeds - 1} in each mode, ${total} chunks on ${options.jobs} workers`,
  );
  const next = (): Chunk | undefined => chunks.shift();
  const runWorker = async (): Promise<void> => {
    for (let chunk = next(); chunk !== undefined; chunk = next()) {
      // A seed that throws is a bug in the simulator or the code under it: a failure too.
      const result = await runChunk(chunk).catch(
        (error: unknown): ChunkResult => ({
          chunk,
          failing: [
            {
              seed: chunk.start,
              violations: [
                `a seed of ${chunk.start}..${chunk.start + chunk.count - 1} threw: ${String(error)}`,
              ],
              replay: replayCommand(chunk.start, { mode: chunk.mode }),
            },
          ],
          undecided: 0,
          steps: 0,
        }),
      );
      results.push(result);
      for (const f of result.failing) {
        console.log(`FAIL seed ${f.seed} (${chunk.mode}): ${f.violations[0] ?? ''}`);
        console.log(`  replay: ${f.replay}`);
      }
      const minutes = ((Date.now() - started) / 60_000).toFixed(1);
      console.log(
        `${results.length}/${total} chunks (${chunk.mode} ${chunk.start}..${chunk.start + chunk.count - 1}) after ${minutes} min`,
      );
    }
  };
  await Promise.all(Array.from({ length: options.jobs }, runWorker));
  const report = [
    `sim:soak ${new Date().toISOString()}: seeds ${options.start}..${options.start + options.seeds - 1} in each mode, ${((Date.now() - started) / 60_000).toFixed(1)} min`,
  ];
  for (const mode of ['leaderless', 'leader'] as const) {
    const mine = results.filter((r) => r.chunk.mode === mode);
    const failing = mine.flatMap((r) => r.failing).sort((a, b) => a.seed - b.seed);
    const seeds = mine.reduce((n, r) => n + r.chunk.count, 0);
    const undecided = mine.reduce((n, r) => n + r.undecided, 0);
    report.push(
      `${mode}: seeds: ${seeds}, violations: ${failing.length}, linearizability undecided: ${undecided}`,
    );
    for (const f of failing) report.push(`  ${f.replay}    # ${f.violations[0] ?? ''}`);
  }
  const text = `${report.join('\n')}\n`;
  writeFileSync(join(options.out, 'report.txt'), text);
  console.log(text);
  process.exitCode = results.some((r) => r.failing.length > 0) ? 1 : 0;
}

function runChunk(chunk: Chunk): Promise<ChunkResult> {
  return new Promise((resolveChunk, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: chunk });
    worker.once('message', (result: ChunkResult) => resolveChunk(result));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`worker for ${chunk.mode} ${chunk.start} exited ${code}`));
    });
  });
}
