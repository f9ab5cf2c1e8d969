#!/usr/bin/env node
import { GroupHost } from '@synod/host';
// npm run demo — a local group of three nodes reaching consensus with the real machines, on
// the in-memory network with real time (no server needed): seed 001's paxos('leader', ...)
// from every node, then seed 000's statements appended to the Multi-Paxos log from different
// nodes and read back, in one order, by a strong read on a third.
import type { Instance, Value } from '@synod/protocol';
import { createRng, MemoryNetwork, realScheduler } from '@synod/transport';
import { SimDisk } from './sim/disk.js';

const peers = ['a', 'b', 'c'];
const network = new MemoryNetwork({ seed: 1, faults: { minDelayMs: 0.2, maxDelayMs: 1 } });
const hosts = new Map(
  peers.map((id, i) => [
    id,
    new GroupHost({
      group: 'mokka',
      nodeId: id,
      founders: peers,
      transport: network.connect(id),
      scheduler: realScheduler,
      disk: new SimDisk(realScheduler, createRng(i), { min: 0.1, max: 0.3 }),
      seed: i + 1,
    }),
  ]),
);
const text = (v: Value): string => new TextDecoder().decode(v);
const bytes = (s: string): Value => new TextEncoder().encode(s);
const node = (id: string): GroupHost => hosts.get(id)!;
const call = <T>(run: (done: (value: T) => void) => void): Promise<T> =>
  new Promise((resolve) => run(resolve));
const paxos = (id: string, key: Instance, value: string): Promise<Value> =>
  call((done) => node(id).paxos(key, bytes(value), done));

console.log(
  `synod demo: group mokka, nodes ${peers.join(', ')}, on the in-memory network (no NATS server needed)\n`,
);

const answers = await Promise.all(peers.map((id) => paxos(id, 'leader', `primary = node-${id}`)));
for (const [i, id] of peers.entries())
  console.log(`  ${id}: paxos('leader', 'primary = node-${id}') -> '${text(answers[i]!)}'`);
if (new Set(answers.map(text)).size !== 1) {
  console.error('  the nodes disagree: this is a bug, please report it');
  process.exit(1);
}
console.log('  every caller got the same chosen value\n');

const statements: [string, string][] = [
  ['a', 'INSERT INTO coordinates VALUES (3,3)'],
  ['b', 'UPDATE coordinates SET x = x * 10'],
  ['a', 'INSERT INTO coordinates VALUES (4,4)'],
];
for (const [id, sql] of statements) {
  const slot = await call<number>((done) => node(id).append(bytes(sql), done));
  console.log(`  ${id}: append '${sql}' -> slot ${slot}`);
}
const through = await call<number>((done) => node('c').read(done));
console.log(
  `\n  c: strong read (highest accepted slot from a majority, apply through it) -> through slot ${through}`,
);
for (const [slot, value] of node('c').log)
  if (value.length > 0) console.log(`     slot ${slot}: ${text(value)}`);

for (const host of hosts.values()) host.stop();
