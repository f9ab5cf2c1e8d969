// Runs inside one of the partition test's network namespaces (`ip netns exec NS node this.mjs
// CONFIG`). Plain JavaScript: it runs under a bare Node 20, outside vitest's TypeScript loader.
//
// - expose: a Unix socket per port, so the test process in the root namespace reaches this
//   namespace's nats-server through the filesystem, not through addresses of its own (none of
//   the test's traffic leaves loopback or the namespaces it made).
// - proxy: the route port peers dial over the links; forwards to the local nats-server's
//   cluster port, delaying each chunk when told to. This kernel has no netem
//   (CONFIG_NET_SCH_NETEM unset), so delay is added here, in order, per direction; drops are
//   done in the kernel by tc filters on the links (see netns.ts).
//
// stdin takes JSON lines {"delayMs":N,"jitterMs":N} and answers "ok" on stdout once in force;
// "ready" is printed once every listener is up. When stdin closes without a stop (the test
// process died, even of SIGKILL), the relay kills what runs in its namespace and removes it,
// so nothing outlives the test that started it.
import { spawnSync } from 'node:child_process';
import { createServer, connect as netConnect } from 'node:net';
import { createInterface } from 'node:readline';

/** @type {{ ns: string, expose: { socket: string, port: number }[], proxy: { listenPort: number, targetPort: number } }} */
const config = JSON.parse(process.argv[2] ?? '{}');
let delayMs = 0;
let jitterMs = 0;

/** Forwards `from`'s bytes to `to`, each chunk delayed as currently set, never reordered. */
function forward(from, to) {
  let lastAt = 0;
  let pending = 0;
  from.on('data', (chunk) => {
    if (delayMs === 0 && pending === 0) {
      to.write(chunk);
      return;
    }
    const now = performance.now();
    const at = Math.max(lastAt, now + delayMs + (Math.random() * 2 - 1) * jitterMs);
    lastAt = at;
    pending++;
    setTimeout(() => {
      pending--;
      if (!to.destroyed) to.write(chunk);
    }, at - now);
  });
  from.on('end', () => {
    setTimeout(() => to.end(), Math.max(0, lastAt - performance.now()));
  });
}

function splice(a, b) {
  const close = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', close);
  b.on('error', close);
  a.on('close', close);
  b.on('close', close);
}

const listening = [];
for (const { socket, port } of config.expose ?? []) {
  const server = createServer((client) => {
    const upstream = netConnect({ host: '127.0.0.1', port });
    client.pipe(upstream);
    upstream.pipe(client);
    splice(client, upstream);
  });
  listening.push(new Promise((resolve) => server.listen(socket, resolve)));
}
if (config.proxy !== undefined) {
  const server = createServer((peer) => {
    const local = netConnect({ host: '127.0.0.1', port: config.proxy.targetPort });
    forward(peer, local);
    forward(local, peer);
    splice(peer, local);
  });
  listening.push(
    new Promise((resolve) => server.listen(config.proxy.listenPort, '0.0.0.0', resolve)),
  );
}
await Promise.all(listening);
process.stdout.write('ready\n');

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const command = JSON.parse(line);
  delayMs = Number(command.delayMs ?? 0);
  jitterMs = Number(command.jitterMs ?? 0);
  process.stdout.write('ok\n');
});
lines.on('close', () => {
  const pids = spawnSync('ip', ['netns', 'pids', config.ns], { encoding: 'utf8' }).stdout ?? '';
  for (const pid of pids.split('\n').filter((p) => p !== '' && Number(p) !== process.pid)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {}
  }
  spawnSync('ip', ['netns', 'del', config.ns]);
  process.exit(0);
});
