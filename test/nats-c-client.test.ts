// An application in C, through Debian's NATS C library (libnats-dev), against three
// `synod node start` processes: JSON writes on the public subject synod.<g>.write while the
// leader is SIGKILLed mid-run. The C client retries a write after "no responders" (nobody
// serves the subject between a leader's death and its followers' election timeout), a
// timeout or NOT_LEADER/NO_QUORUM, as the client README tells any-language clients to; every
// write must be acknowledged and readable afterwards through every surviving node.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, until } from './support/process-cluster.js';

const GROUP = 'cclient';
const peers = ['a', 'b', 'c'];
const COUNT = 150;
const SOURCE = fileURLToPath(new URL('./clients/nats_writer.c', import.meta.url));

describe("Debian's NATS C library as a synod client", () => {
  let server: NatsServer;
  let group: ProcessCluster;
  let dir: string;
  let writer: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'synod-c-client-'));
    writer = join(dir, 'nats_writer');
    const built = spawnSync('gcc', ['-O1', '-Wall', '-o', writer, SOURCE, '-lnats'], {
      encoding: 'utf8',
    });
    if (built.status !== 0)
      throw new Error(`gcc failed (is libnats-dev installed?): ${built.stderr}`);
    server = await startNatsServer();
    group = await ProcessCluster.start(GROUP, peers, [server.url]);
    await until('one leader', async () => (await group.oneLeader()) !== undefined, 20_000);
  }, 60_000);
  afterAll(async () => {
    await group?.stop();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes through the public subject while the leader is killed, and every write is there', async () => {
    const leader = (await group.oneLeader())!;
    // 10 ms between writes: the leader dies mid-run, not after the last write.
    const child = spawn(writer, [server.url, GROUP, 'c-app', String(COUNT), '10']);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await until(
      'a third of the writes acknowledged',
      async () => out.split('\n').length > COUNT / 3,
    );
    await group.kill(leader);
    expect(await exited, err).toBe(0);

    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(COUNT);
    for (const [i, line] of lines.entries()) {
      const space = line.indexOf(' ');
      expect(Number(line.slice(0, space))).toBe(i + 1);
      expect(JSON.parse(line.slice(space + 1)), line).toMatchObject({ ok: true, result: null });
    }
    // The leader's death cost the client at least one retry: the path was exercised.
    expect(Number(/retries (\d+)/.exec(err)?.[1])).toBeGreaterThan(0);

    for (const node of peers.filter((p) => p !== leader))
      for (let i = 1; i <= COUNT; i++) {
        const answer = await group.ask(`synod.${GROUP}.node.${node}.read`, {
          command: { op: 'get', key: `c${i}` },
          consistency: 'strong',
        });
        expect(answer, `c${i} on ${node}`).toMatchObject({
          ok: true,
          result: { found: true, value: `v${i}` },
        });
      }
  }, 90_000);
});
