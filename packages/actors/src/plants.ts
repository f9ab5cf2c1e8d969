/**
 * Known bugs that can be built into the machines, so the simulator can prove it catches them
 * (`npm run sim -- --plant BUG`). Production code never sets these.
 */
export type PlantedBug = 'reply-before-persist' | 'ignore-accepted' | 'mixed-ballot-quorum';

export const PLANTED_BUGS: readonly PlantedBug[] = [
  'reply-before-persist',
  'ignore-accepted',
  'mixed-ballot-quorum',
];

export interface Plants {
  readonly plant?: PlantedBug;
}
