// Each node's Prometheus metrics, scraped over HTTP from a real group, and the batch codec
// against hostile bytes.

import { DecodeError } from '@synod/protocol';
import { waitFor } from '@synod/testkit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeInspectBatch, encodeInspectBatch, type InspectBatch } from '../src/index.js';
import { InspectedGroup } from './inspected-group.js';

/** One sample's value out of Prometheus's text format (labels ignored). */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in\n${text}`);
  return Number(line.split(' ').at(-1));
}

describe('metrics', () => {
  let group: InspectedGroup;
  const ports = new Map<string, number>();
  const scrape = async (id: string): Promise<string> => {
    const response = await fetch(`http://127.0.0.1:${ports.get(id)}/metrics`);
    expect(response.status).toBe(200);
    return response.text();
  };

  beforeAll(async () => {
    group = await InspectedGroup.start('measured', ['a', 'b', 'c']);
    for (const [id, node] of group.nodes) ports.set(id, await node.metrics.serve(0));
    await group.leaderKnown();
  }, 60_000);
  afterAll(async () => {
    await group?.stop();
  });

  it('counts commits, their latency, fsyncs and acceptor messages, and leader changes', async () => {
    const leader = group.nodes.get('a')!.runtime.leader!;
    const follower = ['a', 'b', 'c'].find((id) => id !== leader)!;
    const before = await scrape(leader);
    for (let seq = 1; seq <= 20; seq++)
      expect(await group.put(`m${seq}`, 'v', seq)).toMatchObject({ ok: true });
    const after = await scrape(leader);
    expect(
      sample(after, 'synod_commit_latency_seconds_count') -
        sample(before, 'synod_commit_latency_seconds_count'),
    ).toBe(20);
    expect(
      sample(after, 'synod_commits_total') - sample(before, 'synod_commits_total'),
    ).toBeGreaterThanOrEqual(20);
    expect(sample(after, 'synod_fsync_latency_seconds_count')).toBeGreaterThanOrEqual(20);
    expect(sample(after, 'synod_phase2_messages_total')).toBeGreaterThanOrEqual(20);
    expect(sample(after, 'synod_phase1_messages_total')).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'synod_is_leader')).toBe(1);
    expect(sample(after, 'synod_nats_reconnects_total')).toBe(0);
    expect(after).toMatch(/synod_commit_index\{group="measured",node="[abc]"\} \d+/);
    await waitFor(
      'the follower applied everything',
      async () => sample(await scrape(follower), 'synod_applied_lag_slots') === 0,
      5_000,
      20,
    );
    const changes = sample(await scrape(follower), 'synod_leader_changes_total');
    await group.stopNode(leader);
    await waitFor(
      'a new leader',
      async () => {
        const now = group.nodes.get(follower)!.runtime.leader;
        return now !== undefined && now !== leader;
      },
      15_000,
      20,
    );
    await waitFor(
      'the change counted',
      async () => sample(await scrape(follower), 'synod_leader_changes_total') === changes + 1,
      5_000,
      20,
    );
    expect(
      await fetch(`http://127.0.0.1:${ports.get(follower)}/nothing`).then((r) => r.status),
    ).toBe(404);
  }, 60_000);
});

describe('the inspection batch codec', () => {
  const batch: InspectBatch = {
    v: 1,
    group: 'g',
    node: 'a',
    seq: 3,
    at: 1_700_000_000_000,
    summary: {
      role: 'leader',
      leader: 'a',
      ballot: '2.a',
      commitIndex: 10,
      acceptedThrough: 11,
      appliedThrough: 9,
      members: ['a', 'b', 'c'],
      phase1Answers: 1,
      phase2Answers: 30,
    },
    actors: [{ id: 'leader#2', machine: 'leader', state: 'leading' }],
    events: [{ at: 1, kind: 'event', actor: 'leader#2', event: 'timer', source: 'acceptor#0' }],
    dropped: 4,
  };

  it('decodes what it encodes', () => {
    expect(decodeInspectBatch(encodeInspectBatch(batch))).toEqual(batch);
  });

  it('throws only DecodeError, for any bytes, and refuses each field of the wrong type', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          decodeInspectBatch(bytes);
        } catch (error) {
          if (!(error instanceof DecodeError)) throw error;
        }
      }),
      { numRuns: 2_000 },
    );
    const broken: unknown[] = [
      { ...batch, v: 2 },
      { ...batch, seq: 'x' },
      { ...batch, summary: { ...batch.summary, commitIndex: 1.5 } },
      { ...batch, summary: { ...batch.summary, members: [1] } },
      { ...batch, actors: [{ id: 'x', machine: 'leader' }] },
      { ...batch, events: [{ at: 1, kind: 'teleport', actor: 'x' }] },
      { ...batch, events: [{ at: 1, kind: 'event', actor: 'x', event: 7 }] },
    ];
    for (const value of broken)
      expect(
        () => decodeInspectBatch(encodeInspectBatch(value as InspectBatch)),
        JSON.stringify(value),
      ).toThrow(DecodeError);
  });
});
