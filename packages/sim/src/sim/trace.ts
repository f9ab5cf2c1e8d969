import { isNoop } from '@synod/actors';
import {
  type Ballot,
  decodeMembershipChange,
  formatBallot,
  type Instance,
  isMembershipValue,
  type PeerMessage,
  type Value,
} from '@synod/protocol';
import { decodeWrite } from './kv.js';

/**
 * One line of a seed's trace. `npm run sim -- --seed S --trace` prints them as they happen;
 * the simulator's behaviour does not depend on whether anyone listens.
 */
export type TraceSink = (line: string) => void;

/** A value as a reader of a trace wants it: the write, the member list, or a no-op. */
export function describeValue(value: Value): string {
  if (isNoop(value)) return 'noop';
  if (isMembershipValue(value)) {
    try {
      const change = decodeMembershipChange(value);
      return `members[${change?.members.join(',')}]${change?.from === undefined ? '' : ` if [${change.from.join(',')}]`}`;
    } catch {
      return 'members(damaged)';
    }
  }
  try {
    const w = decodeWrite(value);
    return `${w.op} ${w.key}=${w.value}`;
  } catch {
    return `0x${Buffer.from(value.subarray(0, 8)).toString('hex')}${value.length > 8 ? '…' : ''}`;
  }
}

const b = (ballot: Ballot): string => formatBallot(ballot);
const slot = (instance: Instance): string =>
  typeof instance === 'number' ? `slot ${instance}` : `key ${instance}`;

/** A peer message in one line: its type, ballot, slot and value, as far as it has them. */
export function describeMessage(m: PeerMessage): string {
  switch (m.type) {
    case 'prepare':
      return `prepare ${b(m.ballot)} ${slot(m.instance)}`;
    case 'prepareLog':
      return `prepareLog ${b(m.ballot)} from slot ${m.fromSlot}`;
    case 'promise': {
      const what = m.instance === undefined ? 'log' : slot(m.instance);
      if (!m.ok) return `promise refused ${b(m.ballot)} ${what} (promised ${b(m.promised)})`;
      const accepted = m.accepted
        .map((e) => `${String(e.instance)}@${b(e.ballot)}=${describeValue(e.value)}`)
        .join('; ');
      const extra = [
        m.fromSlot === undefined ? '' : ` page from ${m.fromSlot}`,
        m.more ? ' more' : '',
        m.compactedThrough === undefined ? '' : ` compacted through ${m.compactedThrough}`,
      ].join('');
      return `promise ${b(m.ballot)} ${what}${extra} [${accepted}]`;
    }
    case 'accept':
      return `accept ${b(m.ballot)} ${slot(m.instance)} ${describeValue(m.value)}`;
    case 'accepted':
      return `accepted${m.ok ? '' : ' refused'} ${b(m.ballot)} ${slot(m.instance)}${m.ok ? '' : ` (promised ${b(m.promised)})`}${m.value === undefined ? '' : ` copy ${describeValue(m.value)}`}`;
    case 'decide':
      return `decide ${b(m.ballot)} ${slot(m.instance)} ${describeValue(m.value)}`;
    case 'heartbeat':
      return `heartbeat ${b(m.ballot)} commit ${m.commitIndex}`;
    case 'catchupRequest':
      return `catchupRequest from slot ${m.fromSlot}${m.snapshot === undefined ? '' : ` snapshot ${m.snapshot.throughSlot}@${m.snapshot.offset}`}`;
    case 'catchupResponse':
      return `catchupResponse commit ${m.commitIndex} [${m.entries.map((e) => `${e.slot}=${describeValue(e.value)}`).join('; ')}]${m.snapshot === undefined ? '' : ` snapshot through ${m.snapshot.throughSlot} ${m.snapshot.offset}+${m.snapshot.bytes.length}/${m.snapshot.total}`}`;
    case 'highestAcceptedQuery':
      return `highestAcceptedQuery #${m.requestId}`;
    case 'highestAcceptedAnswer':
      return `highestAcceptedAnswer #${m.requestId} slot ${m.slot}`;
    case 'readIndexCheck':
      return `readIndexCheck #${m.requestId} ${b(m.ballot)}`;
    case 'readIndexAnswer':
      return `readIndexAnswer #${m.requestId} ${b(m.ballot)} (promised ${b(m.promised)})`;
    case 'error':
      return `error ${m.code}: ${m.message}`;
  }
}

/** `t=   819.600` : simulated time, aligned so a trace reads as columns. */
export const at = (ms: number): string => `t=${ms.toFixed(3).padStart(11)}`;
