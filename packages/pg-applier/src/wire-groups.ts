import { SqlError } from './errors.js';
import { tableKey } from './replicated-tables.js';

/**
 * A group whose tables the SQL front end routes to: its replicated tables (live: the group's
 * SqlMachine adds the ones replicated later) and how to reach its node in this process.
 */
export interface FrontEndGroup {
  readonly group: string;
  readonly replicated: Iterable<string>;
  /** NodeRuntime.write of this group's node; over NATS when not given. */
  readonly local?: (write: Uint8Array) => Promise<Uint8Array>;
  /** NodeRuntime.read of this group's node; over NATS when not given. */
  readonly localRead?: (read: Uint8Array) => Promise<Uint8Array>;
}

/**
 * The groups a node serves on one database, as the front end routes statements to them: each
 * replicated table belongs to one group, and a write goes through its table's group's log.
 * The first group is the default: `synod.replicate_table('t')` replicates in it, and its
 * users log in.
 *
 * A statement that writes must keep to one group's tables: each group's replicas apply its
 * log at their own pace, so a statement that also used another group's table would see that
 * table at a different moment on each replica (SQLSTATE 0A000). A transaction may use several
 * groups, each statement one (wire-transaction.ts: Paxos Commit across them).
 */
export class FrontEndGroups {
  readonly all: readonly FrontEndGroup[];

  constructor(groups: readonly FrontEndGroup[]) {
    if (groups.length === 0) throw new Error('a SQL front end serves at least one group');
    this.all = groups;
  }

  get default(): FrontEndGroup {
    return this.all[0]!;
  }

  /** Every group's replicated tables, live (what the determinism guard routes by). */
  readonly replicated: Iterable<string> = {
    [Symbol.iterator]: () => this.all.flatMap((g) => [...g.replicated])[Symbol.iterator](),
  };

  named(group: string): FrontEndGroup | undefined {
    return this.all.find((g) => g.group === group);
  }

  /** The groups that replicate any of `tables` (a read may use several). */
  owning(tables: readonly string[]): FrontEndGroup[] {
    const keys = new Set(tables.map(tableKey));
    return this.all.filter((g) => [...g.replicated].some((t) => keys.has(tableKey(t))));
  }

  /**
   * The one group whose tables a write (or a transaction) uses, the default when it names
   * none. Throws 0A000 when they belong to several groups.
   */
  writer(tables: readonly string[], what = 'a write'): FrontEndGroup {
    return this.single(tables, what) ?? this.default;
  }

  /**
   * The group whose replicated tables `tables` are, undefined when none is. Throws 0A000 when
   * they belong to several groups.
   */
  single(tables: readonly string[], what: string): FrontEndGroup | undefined {
    const owners = this.owning(tables);
    if (owners.length <= 1) return owners[0];
    const byGroup = owners.map(
      (g) =>
        `${tables
          .filter((t) => [...g.replicated].some((r) => tableKey(r) === tableKey(t)))
          .map((t) => `"${t}"`)
          .join(', ')} of ${g.group}`,
    );
    throw new SqlError(
      '0A000',
      `${what} uses the replicated tables of several groups (${byGroup.join('; ')}): each group applies its own log, so it must keep to one group's tables`,
    );
  }
}
