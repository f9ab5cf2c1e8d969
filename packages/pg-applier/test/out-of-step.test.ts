// A node whose database left its log position (its synod bookkeeping changed behind its
// back, through --pg) repairs itself: it installs a peer's state and applies on, and ends
// identical to the others; while it cannot apply, its status says why and since when.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlGroup } from './sql-group.js';

const peers = ['a', 'b', 'c'];

describe('a database out of step with its log', () => {
  let group: SqlGroup;
  let seq = 0;
  const insert = (id: number) =>
    group.ask(`synod.${group.group}.write`, {
      clientId: 'writer',
      seq: ++seq,
      command: { op: 'sql', sql: `INSERT INTO t VALUES (${id})` },
    });

  beforeAll(async () => {
    group = await SqlGroup.start('astray', peers, { peers, replicated: ['t'] });
    for (const id of peers) await group.onDatabase(id, 'CREATE TABLE t (id int PRIMARY KEY)');
    for (const id of peers) await group.startNode(id);
    await group.leaderKnown();
  }, 60_000);
  afterAll(async () => {
    await group?.stop();
  });

  const rows = async (id: string): Promise<string> => {
    const db = new pg.Client({ connectionString: group.url(id) });
    await db.connect();
    try {
      return JSON.stringify((await db.query('SELECT id FROM t ORDER BY id')).rows);
    } finally {
      await db.end();
    }
  };
  const tamper = async (id: string): Promise<void> => {
    const db = new pg.Client({ connectionString: group.url(id) });
    await db.connect();
    await db.query('UPDATE synod.applied SET slot = slot - 3');
    await db.end();
  };
  const everyoneHas = async (id: number): Promise<void> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const all = await Promise.all(peers.map(rows));
      if (all.every((r) => r === all[0]) && all[0]!.includes(`"id":${id}`)) return;
      if (Date.now() > deadline) expect(all).toEqual([all[0], all[0], all[0]]);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  it("a follower installs a peer's state and ends identical to the others", async () => {
    for (const id of [1, 2, 3, 4]) {
      const answer = await insert(id);
      expect(answer, JSON.stringify(answer)).toMatchObject({ ok: true });
    }
    await everyoneHas(4);
    const leader = group.nodes.get('a')!.runtime.status().leader;
    const follower = peers.find((id) => id !== leader)!;
    await tamper(follower);
    expect(await insert(5)).toMatchObject({ ok: true });
    expect(await insert(6)).toMatchObject({ ok: true });
    await everyoneHas(6);
    const digests = await group.digests();
    expect(new Set(digests).size).toBe(1);
    expect(group.nodes.get(follower)!.runtime.status().applyFailing).toBeNull();
  }, 30_000);

  it('so does the leader, which answers writes again', async () => {
    const leader = group.nodes.get('a')!.runtime.status().leader!;
    await tamper(leader);
    const answer = await insert(7);
    expect(answer, JSON.stringify(answer)).toMatchObject({ ok: true });
    await everyoneHas(7);
    expect(new Set(await group.digests()).size).toBe(1);
  }, 30_000);
});
