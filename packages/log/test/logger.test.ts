import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { childLogger, createLogger, resolveLevel, wantsPrettyOutput } from '../src/index.js';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('logger factory', () => {
  it('child loggers stamp group, node and role on every line', () => {
    const out = capture();
    const root = createLogger({ level: 'info', destination: out.stream });
    const log = childLogger(root, { group: 'mokka', node: 'a', role: 'acceptor' });
    log.info({ slot: 3 }, 'accepted');
    const [line] = out.lines();
    expect(line).toMatchObject({
      group: 'mokka',
      node: 'a',
      role: 'acceptor',
      slot: 3,
      msg: 'accepted',
    });
  });

  it('drops lines below the configured level', () => {
    const out = capture();
    const log = createLogger({ level: 'warn', destination: out.stream });
    log.info('hidden');
    log.warn('shown');
    expect(out.lines().map((l) => l.msg)).toEqual(['shown']);
  });

  it('takes LOG_LEVEL from the environment and rejects unknown levels', () => {
    expect(resolveLevel('DEBUG')).toBe('debug');
    expect(resolveLevel(undefined)).toBe(process.env.LOG_LEVEL?.toLowerCase() ?? 'info');
    expect(() => resolveLevel('loud')).toThrow(/unknown log level "loud"/);
  });

  it('is human-readable only on a TTY unless told otherwise', () => {
    expect(wantsPrettyOutput(undefined, true)).toBe(true);
    expect(wantsPrettyOutput(undefined, false)).toBe(false);
    expect(wantsPrettyOutput(undefined, undefined)).toBe(false);
    expect(wantsPrettyOutput(false, true)).toBe(false);
    expect(wantsPrettyOutput(true, false)).toBe(true);
  });
});
