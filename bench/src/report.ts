import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Machine } from './machine.js';

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Writes bench/results/<name>-<date>.json and returns its path relative to bench/. */
export function writeResults(name: string, machine: Machine, results: unknown): string {
  const dir = join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const file = `${name}-${machine.date.slice(0, 10)}.json`;
  writeFileSync(join(dir, file), `${JSON.stringify({ machine, results }, null, 2)}\n`);
  return `results/${file}`;
}

/** Replaces the section between `<!-- name:begin -->` and `<!-- name:end -->` of bench/README.md. */
export function updateReadme(name: string, markdown: string): void {
  const file = join(BENCH_DIR, 'README.md');
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const section = `${begin}\n${markdown.trim()}\n${end}`;
  const start = current.indexOf(begin);
  const stop = current.indexOf(end);
  const next =
    start >= 0 && stop > start
      ? current.slice(0, start) + section + current.slice(stop + end.length)
      : `${current.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, next);
}
