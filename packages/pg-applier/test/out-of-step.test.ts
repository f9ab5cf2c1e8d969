// A node whose database left its log position (its synod bookkeeping changed behind its
// back, through --pg, either way) repairs itself: it installs a peer's state and applies on,
// and ends identical to the others; while it cannot apply, its status says why and since
// when. A replicated table changed behind a node's back is found by a verify write (every
// replica's digest at one slot, compared among the members) and repaired the same way.
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
  const tamper = (id: string, how = 'UPDATE synod.applied SET slot = slot - 3'): Promise<void> =>
    group.onDatabase(id, how);
  let verifies = 0;
  const verify = () =>
    group.ask(`synod.${group.group}.write`, {
      clientId: 'verifier',
      seq: ++verifies,
      command: { op: 'verify' },
    });
  const verdicts = async (slot: number): Promise<Record<string, string>> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const all = Object.fromEntries(
        peers.map((id) => {
          const c = group.nodes.get(id)!.runtime.status().consistency;
          return [id, c === null || c.slot !== slot ? 'none' : c.verdict];
        }),
      );
      if (Object.values(all).every((v) => v !== 'none' && v !== 'pending')) return all;
      if (Date.now() > deadline) return all;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
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

  it("a database that claims slots it never applied installs a peer's state too", async () => {
    const leader = group.nodes.get('a')!.runtime.status().leader;
    const follower = peers.find((id) => id !== leader)!;
    await tamper(follower, 'UPDATE synod.applied SET slot = slot + 3');
    // Without the check, the follower would skip the next three slots' writes for good.
    for (const id of [8, 9, 10]) expect(await insert(id)).toMatchObject({ ok: true });
    await everyoneHas(10);
    expect(new Set(await group.digests()).size).toBe(1);
  }, 30_000);

  it("a verify write finds a table changed behind one node's back, which installs a peer's state", async () => {
    await everyoneHas(10);
    for (const id of peers) {
      await tamper(id === 'a' ? 'b' : id === 'b' ? 'c' : 'a', 'DELETE FROM t WHERE id = 1');
      const changed = id === 'a' ? 'b' : id === 'b' ? 'c' : 'a';
      expect(new Set(await group.digests()).size).toBe(2);
      const answer = (await verify()) as { ok: boolean; slot: number; result: { digest: string } };
      expect(answer, JSON.stringify(answer)).toMatchObject({ ok: true });
      const seen = await verdicts(answer.slot);
      expect(seen).toEqual(
        Object.fromEntries(peers.map((p) => [p, p === changed ? 'differs' : 'agreed'])),
      );
      await everyoneHas(10);
      const all = await Promise.all(peers.map(rows));
      expect(all[0]).toContain('{"id":1}');
      expect(new Set(await group.digests()).size).toBe(1);
    }
  }, 60_000);

  it('with no majority on one digest, every node says so and nothing is replaced', async () => {
    await tamper('a', 'DELETE FROM t WHERE id = 2');
    await tamper('b', 'DELETE FROM t WHERE id = 3');
    const answer = (await verify()) as { ok: boolean; slot: number };
    expect(answer).toMatchObject({ ok: true });
    expect(await verdicts(answer.slot)).toEqual({ a: 'undecided', b: 'undecided', c: 'undecided' });
    expect(await rows('a')).not.toContain('{"id":2}');
    expect(await rows('b')).not.toContain('{"id":3}');
  }, 30_000);
});
