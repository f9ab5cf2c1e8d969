import { describe, expect, it } from 'vitest';
import { findBinary, freePort, MissingBinaryError } from '../src/index.js';

describe('findBinary', () => {
  it('names the Debian package when nats-server is not on PATH', () => {
    const error = (() => {
      try {
        findBinary('nats-server', { path: '/nonexistent' });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(MissingBinaryError);
    expect(error).toMatchObject({
      name: 'MissingBinaryError',
      binary: 'nats-server',
      debianPackage: 'nats-server',
    });
    expect((error as Error).message).toBe(
      'nats-server not found on PATH; install the Debian package "nats-server" (apt-get install -y nats-server)',
    );
  });

  it('maps the PostgreSQL server binaries to the "postgresql" package', () => {
    for (const name of ['initdb', 'pg_ctl', 'postgres', 'pg_isready']) {
      expect(() => findBinary(name, { path: '', extraDirs: [] })).toThrow(
        expect.objectContaining({ debianPackage: 'postgresql', binary: name }),
      );
    }
  });

  it('finds installed binaries as absolute paths', () => {
    expect(findBinary('nats-server')).toMatch(/^\/.*\/nats-server$/);
  });
});

describe('freePort', () => {
  it('never repeats a port and never hands out 4222 or 5432', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    expect(new Set(ports).size).toBe(ports.length);
    for (const port of ports) expect([4222, 5432]).not.toContain(port);
  });
});
