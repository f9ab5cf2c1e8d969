/**
 * Known bugs that can be built into the machines, so the simulator can prove it catches them
 * (`npm run sim -- --plant BUG`). Production code never sets these.
 */
export type PlantedBug =
  | 'reply-before-persist'
  | 'ignore-accepted'
  | 'mixed-ballot-quorum'
  // Leader mode (issue 4): a new leader that does not re-propose values reported in phase 1,
  // and a deposed leader that keeps counting refusals as acceptances.
  | 'skip-repropose'
  | 'deposed-keeps-committing'
  // Compaction that only deletes: the acceptor forgets compacted slots without refusing
  // later requests for them, so they look undecided.
  | 'compaction-forgets-slots';

export const PLANTED_BUGS: readonly PlantedBug[] = [
  'reply-before-persist',
  'ignore-accepted',
  'mixed-ballot-quorum',
];

/** The bugs specific to the distinguished-leader mode. */
export const LEADER_PLANTED_BUGS: readonly PlantedBug[] = [
  'skip-repropose',
  'deposed-keeps-committing',
  'compaction-forgets-slots',
];

export interface Plants {
  readonly plant?: PlantedBug;
}
