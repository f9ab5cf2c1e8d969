// The burst part of `npm run bench:memory`: 200 writes of 250 KiB sent at once, twice, to a
// fresh three-node group. Reports each node's RSS before, at its peak (sampled every 50 ms) and
// 30 s after, the answers the clients got, and the leader's ballot before and after: a burst
// must cost bounded memory, give it back, and cause no election.
import { SynodClient, SynodError } from '@synod/client';
import { rssMiB, startSynod } from './cluster-procs.js';

export const BURST_WRITES = 200;
export const BURST_BYTES = 250 * 1024;
const SETTLE_MS = Number(process.env.BENCH_BURST_SETTLE_MS ?? 30_000);

interface NodeStatus {
  readonly node: string;
  readonly ballot: string;
  readonly appliedThrough: number;
}

export interface BurstRound {
  readonly round: number;
  readonly seconds: number;
  /** Writes acknowledged; the others failed with these codes after the client's retries. */
  readonly acknowledged: number;
  readonly failed: Readonly<Record<string, number>>;
  readonly rssBeforeMiB: readonly number[];
  readonly rssPeakMiB: readonly number[];
  readonly ballotBefore: string;
  readonly ballotAfter: string;
}

export interface BurstResult {
  readonly rounds: readonly BurstRound[];
  readonly rssAfterMiB: readonly number[];
  readonly settleSeconds: number;
  readonly ballotAtEnd: string;
}

export async function measureBurst(): Promise<BurstResult> {
  const synod = await startSynod('burst', [], ['--expose-gc']);
  try {
    const status = async (): Promise<readonly NodeStatus[]> =>
      (
        await synod.transport.gather(
          'synod.burst.status',
          new TextEncoder().encode('{"gc":true}'),
          {
            timeoutMs: 500,
            map: (m) => JSON.parse(new TextDecoder().decode(m.data)) as NodeStatus,
          },
        )
      ).replies;
    const ballot = async (): Promise<string> =>
      [...new Set((await status()).map((s) => s.ballot))].sort().join(' / ');
    const rss = (): number[] => synod.pids.map((pid) => rssMiB(pid));
    const value = 'x'.repeat(BURST_BYTES);
    const rounds: BurstRound[] = [];
    for (let round = 1; round <= 2; round++) {
      const rssBefore = rss();
      const ballotBefore = await ballot();
      let peak = rssBefore;
      const sampler = setInterval(() => {
        peak = rss().map((r, i) => Math.max(r, peak[i]!));
      }, 50);
      const started = performance.now();
      const outcomes = await Promise.allSettled(
        Array.from({ length: BURST_WRITES }, (_, i) =>
          new SynodClient({
            transport: synod.transport,
            group: 'burst',
            clientId: `burst-${round}-${i}`,
            timeoutMs: 10_000,
            attempts: 20,
          }).put(`burst-${i}`, value),
        ),
      );
      const seconds = (performance.now() - started) / 1000;
      clearInterval(sampler);
      const failed: Record<string, number> = {};
      for (const outcome of outcomes) {
        if (outcome.status === 'fulfilled') continue;
        const code = outcome.reason instanceof SynodError ? outcome.reason.code : 'ERROR';
        failed[code] = (failed[code] ?? 0) + 1;
      }
      rounds.push({
        round,
        seconds: Math.round(seconds * 10) / 10,
        acknowledged: outcomes.filter((o) => o.status === 'fulfilled').length,
        failed,
        rssBeforeMiB: rssBefore,
        rssPeakMiB: peak,
        ballotBefore,
        ballotAfter: await ballot(),
      });
      console.error(`burst ${round}: ${JSON.stringify(rounds.at(-1))}`);
    }
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    // The status request collects garbage first (--expose-gc): what is left is retained.
    const ballotAtEnd = await ballot();
    return {
      rounds,
      rssAfterMiB: rss(),
      settleSeconds: SETTLE_MS / 1000,
      ballotAtEnd,
    };
  } finally {
    await synod.stop();
  }
}

/** The markdown rows of a burst result. */
export function burstTable(result: BurstResult): string[] {
  const list = (values: readonly number[]): string => values.join(' / ');
  return [
    `| burst | seconds | acknowledged | failed | RSS before, MiB (a / b / c) | peak | ballot before → after |`,
    '|---:|---:|---:|---|---:|---:|---|',
    ...result.rounds.map(
      (r) =>
        `| ${r.round} | ${r.seconds} | ${r.acknowledged} / ${BURST_WRITES} | ${
          Object.entries(r.failed)
            .map(([code, n]) => `${code} ${n}`)
            .join(', ') || '-'
        } | ${list(r.rssBeforeMiB)} | ${list(r.rssPeakMiB)} | ${r.ballotBefore} → ${r.ballotAfter} |`,
    ),
    '',
    `${result.settleSeconds} s after the second burst: RSS ${list(result.rssAfterMiB)} MiB; ballot ${result.ballotAtEnd}.`,
  ];
}
