// Network namespaces for the partition test: one namespace per node ("host"), a veth pair
// between every two of them (a full mesh of point-to-point links, so any pair can be cut
// alone), and faults on those links. Nothing is added to the root namespace: the test reaches
// the namespaces through Unix sockets (netns-relay.mjs), and every address used lives only
// inside namespaces made here.
//
// Faults are tc filters on each link end's egress (clsact + cls_bpf running classic BPF):
// `ret 2` (TC_ACT_SHOT) drops every packet, a test of the kernel's random number against a
// threshold drops a share of them. That is what this kernel offers: it has no netem, gact or
// matchall (CONFIG_NET_SCH_NETEM, CONFIG_NET_ACT_GACT unset) and no iptables or nft binary.
// A dropped packet is silent, as a cut cable or a black-holing switch: TCP keeps retrying and
// NATS notices only by its pings.
import {
  type ChildProcess,
  execFile,
  type StdioOptions,
  spawn,
  spawnSync,
} from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Namespaces are named `synpart-<pid>-n<i>`: the pid tells a dead run's leftovers apart. */
const PREFIX = 'synpart';
/** Signals that end the process without an 'exit' event: cleaned up on too. */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface Link {
  readonly a: number;
  readonly b: number;
}

/** Runs a command; fails with the command and its stderr. */
async function sh(command: string, args: readonly string[]): Promise<string> {
  try {
    return (await execFileAsync(command, [...args], { encoding: 'utf8' })).stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || String(error)}`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function listNamespaces(): string[] {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (out.stdout ?? '')
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name !== '');
}

/** Kills what still runs in `ns` (only namespaces this test made) and deletes it. */
function removeNamespaceSync(ns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
  for (const pid of pids.split('\n').filter((p) => p !== '')) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {}
  }
  spawnSync('ip', ['netns', 'del', ns]);
}

/**
 * Fails with the reason when this machine cannot run the test: not root, no `ip netns`, or no
 * tc with classic BPF filters. The partition test needs all three; it does not skip.
 */
export function assertNamespacesUsable(): void {
  if (process.getuid?.() !== 0)
    throw new Error(
      `the partition test must run as root (uid ${process.getuid?.()}): it makes network namespaces`,
    );
  for (const tool of ['ip', 'tc']) {
    const found = spawnSync(tool, ['-V'], { encoding: 'utf8' });
    if (found.error !== undefined)
      throw new Error(`the partition test needs ${tool} (iproute2): ${found.error.message}`);
  }
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (list.status !== 0)
    throw new Error(`the partition test needs \`ip netns\`, which failed: ${list.stderr.trim()}`);
}

/** Removes namespaces of earlier runs of this test whose process is gone. */
export function removeLeftovers(): string[] {
  const removed: string[] = [];
  for (const ns of listNamespaces()) {
    const match = new RegExp(`^${PREFIX}-(\\d+)-`).exec(ns);
    if (match === null || alive(Number(match[1]))) continue;
    removeNamespaceSync(ns);
    removed.push(ns);
  }
  return removed;
}

/** Classic BPF for cls_bpf: drop `percent` of the packets (100: all of them). */
function dropProgram(percent: number): string {
  if (percent >= 100) return '1,6 0 0 2';
  // ld rand; if A >= threshold skip one; ret TC_ACT_SHOT; ret TC_ACT_OK
  const threshold = Math.round((percent / 100) * 2 ** 32);
  return `4,32 0 0 ${2 ** 32 - 0x1000 + 56},53 1 0 ${threshold},6 0 0 2,6 0 0 0`;
}

export class NetnsNet {
  readonly names: readonly string[];
  readonly links: readonly Link[];
  readonly #children = new Set<ChildProcess>();
  /** Each link's drop percentage now, by `linkKey`; absent: no filter. */
  readonly #loss = new Map<string, number>();
  readonly #onExit = (): void => this.destroySync();
  /** Ctrl-C or a runner's SIGTERM: clean up, then die of the signal as if we had not caught it. */
  readonly #onSignal = (signal: NodeJS.Signals): void => {
    this.destroySync();
    process.kill(process.pid, signal);
  };
  #destroyed = false;

  private constructor(readonly size: number) {
    const run = `${PREFIX}-${process.pid}`;
    this.names = Array.from({ length: size }, (_, i) => `${run}-n${i + 1}`);
    const links: Link[] = [];
    for (let a = 1; a <= size; a++) for (let b = a + 1; b <= size; b++) links.push({ a, b });
    this.links = links;
  }

  /** Makes `size` namespaces (nodes 1..size) joined pairwise; removed at exit whatever happens. */
  static async create(size: number): Promise<NetnsNet> {
    if (size > 9) throw new RangeError('at most 9 namespaces (one address octet per pair)');
    assertNamespacesUsable();
    removeLeftovers();
    const net = new NetnsNet(size);
    process.on('exit', net.#onExit);
    for (const signal of SIGNALS) process.once(signal, net.#onSignal);
    try {
      for (const ns of net.names) {
        await sh('ip', ['netns', 'add', ns]);
        await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      }
      for (const { a, b } of net.links) {
        const [nsA, nsB] = [net.ns(a), net.ns(b)];
        await sh(
          'ip',
          words(`link add to${b} netns ${nsA} type veth peer name to${a} netns ${nsB}`),
        );
        for (const [ns, self, peer] of [
          [nsA, a, b],
          [nsB, b, a],
        ] as const) {
          await sh('ip', words(`-n ${ns} addr add ${net.address(self, peer)}/30 dev to${peer}`));
          await sh('ip', words(`-n ${ns} link set to${peer} up`));
          await sh('tc', ['-n', ns, 'qdisc', 'add', 'dev', `to${peer}`, 'clsact']);
        }
      }
    } catch (error) {
      await net.destroy();
      throw error;
    }
    return net;
  }

  ns(node: number): string {
    const name = this.names[node - 1];
    if (name === undefined) throw new RangeError(`no namespace for node ${node}`);
    return name;
  }

  /** `node`'s address on its link to `peer` (a /30 per pair: 10.231.<ab>.1 and .2). */
  address(node: number, peer: number): string {
    const [a, b] = node < peer ? [node, peer] : [peer, node];
    return `10.231.${a * 10 + b}.${node === a ? 1 : 2}`;
  }

  /** Starts `command` inside `node`'s namespace; killed at destroy. */
  spawn(
    node: number,
    command: string,
    args: readonly string[],
    options: { stdio?: StdioOptions; env?: NodeJS.ProcessEnv } = {},
  ): ChildProcess {
    // `ip netns exec` execs the command in place, so the child's pid is the command's.
    const child = spawn('ip', ['netns', 'exec', this.ns(node), command, ...args], {
      stdio: options.stdio ?? 'ignore',
      env: options.env ?? process.env,
    });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** Drops `percent` of the packets both ways between `a` and `b`: 100 cuts, 0 heals. */
  async setLoss(a: number, b: number, percent: number): Promise<void> {
    const key = linkKey(a, b);
    const before = this.#loss.get(key);
    if ((before ?? 0) === percent) return;
    for (const [self, peer] of [
      [a, b],
      [b, a],
    ] as const) {
      const filter = (verb: string) =>
        words(`-n ${this.ns(self)} filter ${verb} dev to${peer} egress pref 1`);
      if (before !== undefined) await sh('tc', filter('del'));
      if (percent > 0)
        await sh('tc', [...filter('add'), 'bpf', 'da', 'bytecode', dropProgram(percent)]);
    }
    if (percent > 0) this.#loss.set(key, percent);
    else this.#loss.delete(key);
  }

  /** Cuts `node` off from every other node (its namespace keeps its own nats-server). */
  async isolate(node: number): Promise<void> {
    for (const { a, b } of this.links) if (a === node || b === node) await this.setLoss(a, b, 100);
  }

  /** `percent` loss on every link. */
  async lossEverywhere(percent: number): Promise<void> {
    for (const { a, b } of this.links) await this.setLoss(a, b, percent);
  }

  async healAll(): Promise<void> {
    await this.lossEverywhere(0);
  }

  /** The links with a filter now, e.g. "1-2 100%, 1-3 100%", for messages. */
  describe(): string {
    return [...this.#loss].map(([key, percent]) => `${key} ${percent}%`).join(', ') || 'healed';
  }

  /** Kills every process started here (SIGTERM, then SIGKILL) and removes the namespaces. */
  async destroy(): Promise<void> {
    const exits = [...this.#children].map(
      (child) => new Promise((resolve) => child.once('exit', resolve)),
    );
    for (const child of this.#children) child.kill('SIGTERM');
    await Promise.race([Promise.all(exits), new Promise((resolve) => setTimeout(resolve, 3_000))]);
    this.destroySync();
  }

  /** What `destroy` does, synchronously: for process exit, where nothing asynchronous runs. */
  destroySync(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const child of this.#children) child.kill('SIGKILL');
    for (const ns of this.names) removeNamespaceSync(ns);
    process.off('exit', this.#onExit);
    for (const signal of SIGNALS) process.off(signal, this.#onSignal);
  }
}

/** A command line's words (none of ours has spaces inside one). */
function words(line: string): string[] {
  return line.split(' ');
}

function linkKey(a: number, b: number): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}
