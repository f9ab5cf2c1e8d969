import { describe, expect, it } from 'vitest';
import { routeCount, startNatsCluster } from '../src/index.js';
import { firstLine } from './helpers.js';

describe('startNatsCluster', () => {
  it('forms a full mesh, and a killed and restarted member rejoins it', async () => {
    const cluster = await startNatsCluster(3);
    try {
      expect(cluster.servers).toHaveLength(3);
      expect(cluster.urls).toEqual(cluster.servers.map((s) => s.url));
      expect(new Set(cluster.servers.map((s) => s.port)).size).toBe(3);
      const counts = await Promise.all(cluster.servers.map((s) => routeCount(s.monitorPort!)));
      expect(counts).toEqual([2, 2, 2]);

      const member = cluster.servers[0]!;
      const oldPid = member.pid;
      await member.kill();
      await member.restart();
      expect(member.pid).not.toBe(oldPid);
      await cluster.waitForRoutes();
      const after = await Promise.all(cluster.servers.map((s) => routeCount(s.monitorPort!)));
      expect(after).toEqual([2, 2, 2]);
      // Once routed, INFO advertises every member's client URL (2.9.10 includes the server's own).
      const info = JSON.parse((await firstLine(member.port))!.slice(5)) as {
        connect_urls?: string[];
      };
      expect([...(info.connect_urls ?? [])].sort()).toEqual(
        cluster.servers.map((s) => `127.0.0.1:${s.port}`).sort(),
      );
    } finally {
      await cluster.stop();
    }
    expect(cluster.servers.every((s) => !s.running)).toBe(true);
  });
});
