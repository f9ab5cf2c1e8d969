// The nats-server configurations in infra/ must load: `nats-server -t` parses and checks one.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findBinary } from '@synod/testkit';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dir = join(import.meta.dirname, '..', 'infra', 'nats');
const configs = readdirSync(dir).filter((f) => f.endsWith('.conf'));

describe('infra/nats configurations', () => {
  it('has the single-server and the three cluster configurations', () => {
    expect(configs.sort()).toEqual([
      'cluster-1.conf',
      'cluster-2.conf',
      'cluster-3.conf',
      'single.conf',
    ]);
  });

  it.each(configs)('%s is accepted by nats-server -t', async (file) => {
    const { stdout, stderr } = await run(findBinary('nats-server'), ['-t', '-c', join(dir, file)]);
    expect(`${stdout}${stderr}`).toMatch(/is valid/);
  });

  it('nats-server -t does reject a broken configuration (the check can fail)', async () => {
    const broken = join(import.meta.dirname, 'fixtures', 'broken-nats.conf');
    await expect(run(findBinary('nats-server'), ['-t', '-c', broken])).rejects.toThrow(
      /Parse error/,
    );
  });
});
