import type { GroupView } from './group-view.js';

const pad = (text: string, width: number) =>
  text.length >= width ? `${text.slice(0, width - 1)} ` : text.padEnd(width);

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 23);

/**
 * The terminal view of a group, as text: a line per node (role, ballot, leader, commit and
 * applied index, rates, each actor's state), then the latest events. `synod inspect` repaints
 * it; tests read it.
 */
export function renderTerminal(
  view: GroupView,
  options: { width?: number; events?: number; now?: number } = {},
): string {
  const width = options.width ?? 120;
  const nodes = view.nodes();
  const leader = view.leader();
  const lines = [
    `synod inspect  group ${view.group}  leader ${leader ?? '(none)'}  nodes ${nodes.length}  ${clock(options.now ?? Date.now())}`,
    '',
    `${pad('NODE', 8)}${pad('ROLE', 10)}${pad('BALLOT', 10)}${pad('LEADER', 8)}${pad('COMMIT', 8)}${pad('APPLIED', 9)}${pad('MSG/S', 7)}${pad('EV/S', 7)}ACTORS`,
  ];
  for (const n of nodes) {
    const s = n.summary;
    const actors = n.actors
      .filter((a) => !a.id.includes('/'))
      .map((a) => `${a.machine}:${a.state}`)
      .join(' ');
    lines.push(
      `${pad(n.node, 8)}${pad(n.stale ? 'gone' : s.role, 10)}${pad(s.ballot, 10)}${pad(s.leader ?? '-', 8)}${pad(String(s.commitIndex), 8)}${pad(String(s.appliedThrough), 9)}${pad(String(Math.round(n.messagesPerSecond)), 7)}${pad(String(Math.round(n.eventsPerSecond)), 7)}${actors}`.slice(
        0,
        width,
      ),
    );
  }
  if (nodes.length === 0) lines.push('(waiting for nodes: is a group with this name running?)');
  lines.push('', 'latest events:');
  const events = view.events().slice(-(options.events ?? 15));
  for (const e of events) {
    const what =
      e.kind === 'transition'
        ? `-> ${e.state}`
        : e.kind === 'actor'
          ? 'started'
          : `<- ${e.event}${e.source === undefined ? '' : ` from ${e.source}`}`;
    lines.push(`${clock(e.at)} ${pad(e.node, 6)}${pad(e.actor, 16)}${what}`.slice(0, width));
  }
  if (view.malformed > 0) lines.push('', `${view.malformed} malformed inspection messages dropped`);
  return `${lines.join('\n')}\n`;
}
