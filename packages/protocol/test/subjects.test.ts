import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { groupSubjects, InvalidNameError } from '../src/index.js';
import { nameArb } from './arbitraries.js';
import { NUM_RUNS, PROPERTY_TIMEOUT_MS } from './helpers.js';

describe('groupSubjects', () => {
  it('builds synod.<group>.<role> subjects and per-node subjects', () => {
    const s = groupSubjects('orders');
    expect(s.group).toBe('orders');
    expect(s.acceptor).toBe('synod.orders.acceptor');
    expect(s.learn).toBe('synod.orders.learn');
    expect(s.write).toBe('synod.orders.write');
    expect(s.read).toBe('synod.orders.read');
    expect(s.catchup).toBe('synod.orders.catchup');
    expect(s.node('n1')).toBe('synod.orders.node.n1');
    expect(s.inspect('n-2_b')).toBe('synod.orders.inspect.n-2_b');
    expect(s.status).toBe('synod.orders.status');
    expect(s.identity).toBe('synod.orders.identity');
    expect(s.endpoint('n1', 'read')).toBe('synod.orders.node.n1.read');
    expect(s.endpoint('n1', 'repair')).toBe('synod.orders.node.n1.repair');
    expect(() => s.endpoint('n.1', 'write')).toThrow(InvalidNameError);
  });

  it.each(['', 'a.b', 'a*', '>', 'a b', 'x'.repeat(65)])(
    'rejects the group name %j with InvalidNameError of kind group',
    (group) => {
      expect(() => groupSubjects(group)).toThrow(InvalidNameError);
      try {
        groupSubjects(group);
      } catch (error) {
        expect((error as InvalidNameError).kind).toBe('group');
      }
    },
  );

  it.each(['', 'n.1', '*', '>', 'n 1'])(
    'rejects the node id %j in node() and inspect() with InvalidNameError of kind node',
    (nodeId) => {
      const s = groupSubjects('g');
      expect(() => s.node(nodeId)).toThrow(InvalidNameError);
      expect(() => s.inspect(nodeId)).toThrow(InvalidNameError);
      try {
        s.node(nodeId);
      } catch (error) {
        expect((error as InvalidNameError).kind).toBe('node');
      }
    },
  );

  it(
    'for any valid names, every subject has exactly the expected dot-separated tokens',
    () => {
      fc.assert(
        fc.property(nameArb, nameArb, (group, nodeId) => {
          const s = groupSubjects(group);
          for (const role of ['acceptor', 'learn', 'write', 'read', 'catchup'] as const) {
            expect(s[role].split('.')).toStrictEqual(['synod', group, role]);
          }
          expect(s.node(nodeId).split('.')).toStrictEqual(['synod', group, 'node', nodeId]);
          expect(s.inspect(nodeId).split('.')).toStrictEqual(['synod', group, 'inspect', nodeId]);
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
