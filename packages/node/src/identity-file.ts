import { randomUUID } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isValidName } from '@synod/protocol';
import { DataDirError, replaceHint } from './data-dir-errors.js';

/** The identity file in a data directory. */
export const IDENTITY_FILE = 'synod.identity.json';

/** What a node knows of another node's incarnation, and when it learned it (ms since 1970). */
export interface KnownIncarnation {
  readonly incarnation: string;
  readonly at: number;
}

/** Node id -> the incarnation it was admitted with: the witnesses of who has voted. */
export type Registry = Readonly<Record<string, KnownIncarnation>>;

/**
 * Which group and node a data directory belongs to, and which incarnation of that node it
 * holds: a fresh random id each time a node starts with no acceptor state (the first start,
 * or after its disk was lost and it was replaced). `state` is `waiting` until the node is
 * admitted (it has never voted: its acceptor heard nothing and said nothing), `voting` from
 * then on. `known` is the registry of other nodes' incarnations this node witnessed
 * (IdentityResponder) or learned from its peers when it was admitted.
 */
export interface Identity {
  readonly format: 1;
  readonly group: string;
  readonly node: string;
  readonly incarnation: string;
  readonly state: 'waiting' | 'voting';
  readonly createdAt: string;
  readonly known: Registry;
}

const INCARNATION = /^[A-Za-z0-9-]{8,64}$/;
/** More than any group has ever had: members past and present, 15 at a time. */
const MAX_KNOWN = 1_000;
/**
 * A registry is cut back to this many entries when written (requests that name made-up nodes
 * could otherwise grow it past MAX_KNOWN, and the file would no longer be read).
 */
const KEEP_KNOWN = 500;

export function newIncarnation(): string {
  return randomUUID();
}

export function isIncarnation(value: unknown): value is string {
  return typeof value === 'string' && INCARNATION.test(value);
}

/** The registry in `value`, or undefined when it is not one. */
export function toRegistry(value: unknown): Registry | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const entries = Object.entries(value);
  if (entries.length > MAX_KNOWN) return undefined;
  const registry: Record<string, KnownIncarnation> = {};
  for (const [node, entry] of entries) {
    if (!isValidName(node) || typeof entry !== 'object' || entry === null) return undefined;
    const { incarnation, at } = entry as Record<string, unknown>;
    if (!isIncarnation(incarnation) || typeof at !== 'number' || !Number.isSafeInteger(at))
      return undefined;
    registry[node] = { incarnation, at };
  }
  return registry;
}

/**
 * `mine` with what `theirs` knows added; for a node both know under different incarnations,
 * the one learned last wins (a replaced node's new incarnation). Entries about `self` are
 * never taken: a node knows its own incarnation. Undefined when nothing changes.
 */
export function mergeRegistry(
  mine: Registry,
  theirs: Registry,
  self: string,
): Registry | undefined {
  let merged: Record<string, KnownIncarnation> | undefined;
  for (const [node, entry] of Object.entries(theirs)) {
    const known = mine[node];
    if (node === self || known?.incarnation === entry.incarnation) continue;
    if (known !== undefined && known.at >= entry.at) continue;
    merged ??= { ...mine };
    merged[node] = entry;
  }
  return merged;
}

/**
 * `registry` cut back to KEEP_KNOWN entries, the ones learned last kept, and those of `keep`
 * (the founders) always.
 */
export function pruneRegistry(registry: Registry, keep: readonly string[]): Registry {
  const entries = Object.entries(registry);
  if (entries.length <= KEEP_KNOWN) return registry;
  const reserved = keep.filter((node) => registry[node] !== undefined).length;
  const kept = entries
    .filter(([node]) => !keep.includes(node))
    .sort(([, x], [, y]) => y.at - x.at)
    .slice(0, Math.max(0, KEEP_KNOWN - reserved));
  const pruned: Record<string, KnownIncarnation> = Object.fromEntries(kept);
  for (const node of keep) if (registry[node] !== undefined) pruned[node] = registry[node];
  return pruned;
}

/**
 * The identity of the data directory `dir`, or undefined when it has none. A file that is not
 * a whole, valid identity is refused: it was written atomically, so that is damage (or
 * someone else's file), and guessing could let a node vote with state it does not have.
 */
export async function readIdentity(
  dir: string,
  group: string,
  node: string,
): Promise<Identity | undefined> {
  const path = join(dir, IDENTITY_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const refuse = (why: string): never => {
    throw new DataDirError(
      'MALFORMED',
      `${path} is not a valid synod identity file (${why}): restore it from a backup of this directory, or if this node's data is really lost, delete the whole directory and ${replaceHint(group, node)}`,
    );
  };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return refuse('not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return refuse('not an object');
  const o = doc as Record<string, unknown>;
  if (o.format !== 1) return refuse(`unknown format ${JSON.stringify(o.format)}`);
  if (!isValidName(o.group)) return refuse('no valid "group"');
  if (!isValidName(o.node)) return refuse('no valid "node"');
  if (!isIncarnation(o.incarnation)) return refuse('no valid "incarnation"');
  if (o.state !== 'waiting' && o.state !== 'voting')
    return refuse('"state" is not waiting or voting');
  if (typeof o.createdAt !== 'string') return refuse('no "createdAt"');
  const known = toRegistry(o.known);
  if (known === undefined) return refuse('"known" is not a registry of incarnations');
  return {
    format: 1,
    group: o.group,
    node: o.node,
    incarnation: o.incarnation,
    state: o.state,
    createdAt: o.createdAt,
    known,
  };
}

/**
 * Writes the identity durably and atomically: a temporary file, fsync, rename over the old
 * one, fsync of the directory. A crash leaves the old identity or the new one.
 */
export async function writeIdentity(dir: string, identity: Identity): Promise<void> {
  const path = join(dir, IDENTITY_FILE);
  const temporary = `${path}.tmp`;
  await rm(temporary, { force: true });
  const handle = await open(temporary, 'wx');
  try {
    await handle.writeFile(`${JSON.stringify(identity, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
  const directory = await open(dir, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
