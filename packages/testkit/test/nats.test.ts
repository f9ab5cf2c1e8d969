import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startNatsServer, trackedCount } from '../src/index.js';
import { eventually, firstLine, portAccepts, processAlive, processStopped } from './helpers.js';

describe('startNatsServer', () => {
  it('starts a real nats-server on loopback that greets with INFO', async () => {
    const server = await startNatsServer();
    try {
      expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
      expect([4222, 5432]).not.toContain(server.port);
      expect(server.running).toBe(true);
      // pid is the server itself, not the watchdog shell around it.
      expect(readFileSync(`/proc/${server.pid}/comm`, 'utf8').trim()).toBe('nats-server');
      const info = await firstLine(server.port);
      expect(info).toMatch(/^INFO \{/);
      const parsed = JSON.parse(info!.slice('INFO '.length)) as {
        port: number;
        jetstream?: boolean;
      };
      expect(parsed.port).toBe(server.port);
      expect(parsed.jetstream ?? false).toBe(false);
    } finally {
      await server.stop();
    }
    expect(server.running).toBe(false);
    expect(await portAccepts(server.port)).toBe(false);
    expect(trackedCount()).toBe(0);
  });

  it('survives SIGKILL and restarts on the same port with a new pid', async () => {
    const server = await startNatsServer();
    try {
      const { port, pid } = server;
      await server.kill();
      expect(server.running).toBe(false);
      expect(processAlive(pid)).toBe(false);
      expect(await portAccepts(port)).toBe(false);

      await server.restart();
      expect(server.running).toBe(true);
      expect(server.port).toBe(port);
      expect(server.pid).not.toBe(pid);
      expect(await firstLine(port)).toMatch(/^INFO /);
    } finally {
      await server.stop();
    }
  });

  it('can be frozen with SIGSTOP and thawed with SIGCONT', async () => {
    const server = await startNatsServer();
    try {
      server.signal('SIGSTOP');
      // Delivery is asynchronous: a thread that is still running can send one more INFO.
      expect(await eventually(() => processStopped(server.pid))).toBe(true);
      // The kernel still completes the TCP handshake, but a frozen server sends nothing.
      expect(await firstLine(server.port, 300)).toBeUndefined();
      expect(server.running).toBe(true);
      server.signal('SIGCONT');
      expect(await firstLine(server.port)).toMatch(/^INFO /);
    } finally {
      await server.stop();
    }
  });

  it('stop() also ends a server that is frozen', async () => {
    const server = await startNatsServer();
    const { pid } = server;
    server.signal('SIGSTOP');
    await server.stop();
    expect(await eventually(() => !processAlive(pid))).toBe(true);
  });

  it('refuses the ports of the real services on this machine', async () => {
    await expect(startNatsServer({ port: 4222 })).rejects.toThrow(RangeError);
    await expect(startNatsServer({ port: 5432 })).rejects.toThrow(RangeError);
  });

  it('reports a server that exits at once as ServerStartError with its log', async () => {
    const error = await startNatsServer({ extraArgs: ['--no-such-flag'] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('ServerStartError');
    expect((error as Error).message).toMatch(/exited early/);
    expect((error as Error).message).toMatch(/no-such-flag/);
  });
});
