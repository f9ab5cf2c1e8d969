import type { ClientWrite, Command, PlainData } from '@synod/protocol';

import pg from 'pg';
import { PgApplier } from './applier.js';
import { backendPid } from './backend-pid.js';
import { loadParser } from './classify.js';
import { SqlError } from './errors.js';
import { globalTxnProblem } from './global-txn.js';
import { GroupTransactions } from './group-transactions.js';
import { route } from './guard.js';
import { loggedWrite } from './logged-write.js';
import { tableKey } from './replicated-tables.js';
import { asAdmin, handOver, type SqlRoles, setUpRoles } from './roles.js';
import { type Admission, admitCommand } from './sql-admission.js';
import { outcomeResult, plain, sqlCommand } from './sql-commands.js';
import { assertOneGroupPerTable, connectApplier, openGroupResources } from './sql-machine-open.js';
import { installSqlSnapshot, takeSqlSnapshot } from './sql-snapshot.js';
import { SqlUsers } from './sql-users.js';
import { digestStatement } from './state-digest.js';

export { MAX_REPLICATED_ROWS_BYTES } from './sql-commands.js';

export interface SqlMachineOptions {
  /**
   * `postgres://user@host:port/db` of this node's own database, as a superuser: the node
   * sets up its apply and client roles with it (roles.ts) and runs nothing else as it.
   */
  readonly connectionString: string;
  readonly group: string;
  /**
   * Tables replicated from the start (the same on every node). More are replicated at run
   * time with a `replicate` write, which every replica records in `synod.replicated`.
   */
  readonly replicated: readonly string[];
}

/** Several groups' SQL machines on one database (a node of several groups). */
export interface SqlGroupsOptions {
  /** As SqlMachineOptions.connectionString: this node's own database, as a superuser. */
  readonly connectionString: string;
  /** Each group and the tables it replicates from the start; a table belongs to one group. */
  readonly groups: readonly Pick<SqlMachineOptions, 'group' | 'replicated'>[];
}

/**
 * The node's state machine when the state is SQL tables (issue 5): writes of replicated
 * tables enter the log as `{"op":"sql","sql":...,"params":[...]}` after the determinism
 * guard admitted them, and every replica applies them with PgApplier (in order, exactly
 * once, failures as outcomes). Reads (`{"op":"query",...}`) run on this node's database,
 * on a connection of their own, never inside an apply transaction.
 *
 * It has the shape of @synod/node's AsyncStateMachine without importing it: the CLI joins
 * the two (ARCHITECTURE.md: cli depends on node and pg-applier, not one on the other).
 */
export class SqlMachine {
  readonly name = 'sql';
  readonly #adminUrl: string;
  readonly #roles: SqlRoles;
  #applyClient: pg.Client;
  #applier: PgApplier;
  /** The apply connection failed: the next apply() opens another. */
  #broken = false;
  /** Clients' reads (`{"op":"query"}`), as the client role. */
  readonly #reads: pg.Pool;
  /** The node's own reads of its state (digest, snapshot), as the apply role. */
  readonly #own: pg.Pool;
  readonly #replicated: Set<string>;
  readonly #group: string;
  readonly #users: SqlUsers;
  /** The other groups' machines on this database: a table belongs to one group. */
  #siblings: readonly SqlMachine[] = [];
  /** How many groups share this database (the applier checks what they may prepare). */
  readonly #groupsHere: number;
  /** Its transactions across groups, as applied (group-transactions.ts). */
  #transactions: GroupTransactions;
  /**
   * Told of each `verify` write this node applied: the slot and the digest of its state
   * there. The node compares it with its peers' (consistency-check.ts in @synod/node).
   */
  verified: ((slot: number, digest: string) => void) | undefined;
  /**
   * Set by the node: puts a write of this node's own in the log (clientId and seq given)
   * and resolves once this node applied it. A table's rows larger than one entry travel so.
   */
  logWrite: ((command: Command, clientId: string, seq: number) => Promise<void>) | undefined;

  private constructor(
    adminUrl: string,
    roles: SqlRoles,
    applyClient: pg.Client,
    pools: { readonly reads: pg.Pool; readonly own: pg.Pool },
    applier: PgApplier,
    group: string,
    replicated: Iterable<string>,
    users: SqlUsers,
    transactions: GroupTransactions,
    groupsHere: number,
  ) {
    this.#users = users;
    this.#transactions = transactions;
    this.#groupsHere = groupsHere;
    this.#adminUrl = adminUrl;
    this.#roles = roles;
    this.#applyClient = applyClient;
    this.#watch(applyClient);
    this.#reads = pools.reads;
    this.#own = pools.own;
    this.#applier = applier;
    this.#group = group;
    this.#replicated = new Set([...replicated].map(tableKey));
  }

  static async open(options: SqlMachineOptions): Promise<SqlMachine> {
    const [machine] = await SqlMachine.openGroups({
      connectionString: options.connectionString,
      groups: [{ group: options.group, replicated: options.replicated }],
    });
    return machine!;
  }

  /**
   * One machine per group, all on one database: the roles are set up once and shared (each
   * group applies its own log, into its own rows of synod's bookkeeping), and each replicated
   * table belongs to one group. Refuses a table named for two groups; a `replicate` of a table
   * another group here has is refused where it is taken (admitCommand).
   */
  static async openGroups(options: SqlGroupsOptions): Promise<SqlMachine[]> {
    await loadParser();
    assertOneGroupPerTable(
      options.groups.map((g) => ({ group: g.group, tables: g.replicated.map(tableKey) })),
    );
    const roles = await setUpRoles(
      options.connectionString,
      options.groups.map((g) => ({ group: g.group, tables: g.replicated })),
    );
    const machines: SqlMachine[] = [];
    try {
      for (const { group, replicated } of options.groups)
        machines.push(
          await SqlMachine.#openGroup(
            options.connectionString,
            roles,
            group,
            replicated,
            options.groups.length,
          ),
        );
    } catch (error) {
      for (const machine of machines) await machine.close();
      throw error;
    }
    for (const machine of machines) machine.#siblings = machines.filter((m) => m !== machine);
    return machines;
  }

  static async #openGroup(
    adminUrl: string,
    roles: SqlRoles,
    group: string,
    named: readonly string[],
    groupsHere: number,
  ): Promise<SqlMachine> {
    const r = await openGroupResources(roles, group, named, groupsHere);
    return new SqlMachine(
      adminUrl,
      roles,
      r.client,
      { reads: r.reads, own: r.own },
      r.applier,
      group,
      r.replicated,
      r.users,
      r.transactions,
      groupsHere,
    );
  }

  /**
   * Where the SQL front end runs a client's transaction on replicated tables before it
   * commits it through the log (wire-transaction.ts): as the apply role, which may write them,
   * and only with statements transaction-entry.ts allows. Such sessions name themselves
   * `synod-txn`; one that holds what the applier waits for is ended (#unblockApply).
   */
  get transactionConnectionString(): string {
    return this.#roles.applyUrl;
  }

  /** The SQL front end's users, as this node has applied them (sql-users.ts). */
  get users(): SqlUsers {
    return this.#users;
  }

  /**
   * Where this node's clients connect (the SQL front end's sessions): as the client role,
   * which may read replicated tables and not write them.
   */
  get clientConnectionString(): string {
    return this.#roles.clientUrl;
  }

  /** The roles this node runs its clients and the log as. */
  get roles(): Pick<SqlRoles, 'apply' | 'client'> {
    return { apply: this.#roles.apply, client: this.#roles.client };
  }

  #watch(client: pg.Client): void {
    // A dropped connection fails the apply call, which the node retries; it must not crash.
    const broken = (): void => {
      if (client === this.#applyClient) this.#broken = true;
    };
    client.on('error', broken);
    client.on('end', broken);
  }

  appliedThrough(): Promise<number> {
    return this.#applier.appliedThrough();
  }

  /**
   * A new apply connection when the last one broke (the database restarted, the backend was
   * terminated): a pg client does not reconnect, and the node retries apply() until it can.
   */
  async #reconnectIfBroken(): Promise<void> {
    if (!this.#broken) return;
    await this.#applyClient.end().catch(() => undefined);
    const { client, applier } = await connectApplier(
      this.#roles.applyUrl,
      this.#group,
      this.#groupsHere,
    );
    this.#applyClient = client;
    this.#watch(client);
    this.#applier = applier;
    this.#broken = false;
  }

  /** The group whose log this machine applies. */
  get group(): string {
    return this.#group;
  }

  /** The replicated tables, as this node has applied them (live: the front end routes by it). */
  get replicatedTables(): ReadonlySet<string> {
    return this.#replicated;
  }

  admit(command: Command): Admission | undefined | Promise<Admission> {
    if (command.op === 'txn' && command.ops !== undefined) {
      // A transaction across groups: each group's part checked here if this node serves it.
      const problem = globalTxnProblem(
        command,
        (group) => [this, ...this.#siblings].find((m) => m.group === group)?.replicatedTables,
      );
      return problem === undefined
        ? undefined
        : { refused: problem.message, sqlState: problem.sqlState };
    }
    return admitCommand(command, {
      replicated: this.#replicated,
      adminUrl: this.#adminUrl,
      logWrite: this.logWrite,
      replicatedElsewhere: (table) =>
        this.#siblings.find((m) => m.#replicated.has(tableKey(table)))?.group,
    });
  }

  async apply(
    entries: readonly { readonly slot: number; readonly writes: readonly ClientWrite[] }[],
  ): Promise<Map<number, ReturnType<typeof outcomeResult>[]>> {
    // Each write is checked again as of its slot (loggedWrite): the log is not trusted.
    const replicated = new Set(this.#replicated);
    const handOvers: string[] = [];
    const sqlEntries = entries.map(({ slot, writes }) => ({
      slot,
      writes: writes.map((write) =>
        loggedWrite(write, slot, {
          group: this.#group,
          readers: this.#roles.client,
          replicated,
          handOvers,
        }),
      ),
    }));
    await this.#reconnectIfBroken();
    if (handOvers.length > 0)
      await asAdmin(this.#adminUrl, async (admin) => {
        for (const table of handOvers) await handOver(admin, this.#roles, table);
      });
    // A client's tentative transaction may hold row locks the log's writes need: the log wins.
    const watchdog = setInterval(() => void this.#unblockApply(), UNBLOCK_EVERY_MS);
    let outcomes: Awaited<ReturnType<PgApplier['apply']>>;
    try {
      outcomes = await this.#applier.apply(sqlEntries);
    } finally {
      clearInterval(watchdog);
    }
    const results = new Map<number, ReturnType<typeof outcomeResult>[]>();
    for (const { slot, writes } of entries) {
      const list = outcomes.get(slot);
      if (list === undefined) continue;
      results.set(
        slot,
        list.map((outcome, i) => {
          const command = writes[i]?.command;
          const txn =
            command === undefined ? undefined : this.#transactions.applied(command, outcome);
          if (txn !== undefined) return { ok: true, result: txn };
          if (command?.op === 'verify' && outcome.ok) {
            const digest = String(outcome.rows[0]?.digest);
            this.verified?.(slot, digest);
            return { ok: true, result: { verified: slot, digest } };
          }
          if (command?.op === 'stage' && outcome.ok)
            return { ok: true, result: { staged: Number(command.part) } };
          if (command?.op === 'sqluser' && outcome.ok) {
            this.#users.applied(command);
            return { ok: true, result: { user: String(command.name) } };
          }
          if (command?.op !== 'replicate' || !outcome.ok) return outcomeResult(outcome);
          // Committed: from now on this node routes the table's writes through the log.
          const table = tableKey(String(command.table));
          this.#replicated.add(table);
          return { ok: true, result: { replicated: table } };
        }),
      );
    }
    return results;
  }

  /**
   * The commit node's reads (`txn_open`, `txn_decided`: group-transactions.ts), answered at once
   * from what this node has applied; undefined for any other read.
   */
  readTransactions(command: Command): PlainData | undefined {
    return this.#transactions.read(command);
  }

  /** Writes that go alone in their slot: the steps of a transaction across groups. */
  aloneInSlot(command: Command): boolean {
    return command.op === 'txn_prepare' || command.op === 'txn_outcome';
  }

  async read(command: Command): Promise<PlainData> {
    if (command.op === 'tables') return { tables: [...this.#replicated].sort() };
    const txn = this.#transactions.read(command);
    if (txn !== undefined) return txn;
    if (command.op !== 'query')
      throw new Error(
        `unknown read operation ${JSON.stringify(command.op)}; the sql machine reads with "query" and "tables"`,
      );
    const parsed = sqlCommand(command);
    if (typeof parsed === 'string') throw new Error(parsed);
    const where = route(parsed.sql, { replicated: this.#replicated });
    if (where.kind === 'replicate')
      throw new Error(
        'a write of a replicated table goes through the log: send it as {"op":"sql"}',
      );
    if ('copy' in where && where.copy !== undefined)
      throw new Error('COPY FROM STDIN or TO STDOUT runs through the SQL front end (--sql-port)');
    try {
      const result = await this.#reads.query(parsed.sql, [...parsed.params]);
      return { command: result.command, rowCount: result.rowCount ?? 0, rows: plain(result.rows) };
    } catch (error) {
      if (error instanceof pg.DatabaseError)
        throw new SqlError(error.code ?? 'XX000', error.message);
      throw error;
    }
  }

  /**
   * Every replicated table's row count and checksum, and the users': equal state, equal
   * digests (state-digest.ts). At whatever slot this node has applied; a `verify` write
   * takes the same digest at one slot on every replica.
   */
  async digest(): Promise<string> {
    const result = await this.#own.query<{ digest: string }>(
      digestStatement(this.#group, [...this.#replicated].sort()),
    );
    return result.rows[0]?.digest ?? '';
  }

  /**
   * The replicated tables and sessions through the applied slot, for a peer behind this
   * node's compacted log (sql-snapshot.ts). Read on a connection of its own, at one moment.
   */
  async snapshot(): Promise<{ throughSlot: number; bytes: Uint8Array }> {
    const client = await this.#own.connect();
    try {
      return await takeSqlSnapshot(client, this.#group, this.#replicated);
    } finally {
      client.release();
    }
  }

  /**
   * Ends the front end's tentative transactions (`synod-txn`) that block the apply session:
   * their clients get 40001 and retry, as after any conflict with the log. And cancels the
   * apply session's statement when a prepared transaction (process id 0) holds what it needs:
   * that outcome comes later in this same log, so it would wait for ever; cancelled, it fails
   * alike on every replica (step-apply.ts's heldByPrepared), which all hold the same prepared
   * ones. One query, since it runs every UNBLOCK_EVERY_MS while an apply call runs.
   */
  async #unblockApply(): Promise<void> {
    const pid = backendPid(this.#applyClient);
    if (pid === undefined) return;
    await this.#own
      .query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE pid = ANY(pg_blocking_pids($1)) AND application_name = 'synod-txn'
         UNION ALL
         SELECT pg_cancel_backend($1) WHERE 0 = ANY(pg_blocking_pids($1))`,
        [pid],
      )
      .catch(() => undefined);
  }

  /**
   * Makes this database a peer's snapshot, unless it has applied past it already; with
   * `replace`, whatever it claims to have applied (a repair: its claim is what went wrong).
   */
  async install(
    snapshot: { readonly throughSlot: number; readonly bytes: Uint8Array },
    options: { readonly replace?: boolean } = {},
  ): Promise<void> {
    await this.#reconnectIfBroken();
    const { installed, tables } = await installSqlSnapshot(
      this.#applyClient,
      this.#group,
      snapshot.bytes,
      {
        readers: this.#roles.client,
        replace: options.replace === true,
        prepare: (table) => asAdmin(this.#adminUrl, (admin) => handOver(admin, this.#roles, table)),
      },
    );
    // The applier remembers the slot and sessions it last committed: those are gone now.
    this.#applier = await PgApplier.open(this.#applyClient, this.#group, this.#groupsHere);
    this.#transactions = await GroupTransactions.load(this.#applyClient, this.#group);
    if (installed) this.#users.reload(await SqlUsers.load(this.#applyClient, this.#group));
    if (installed) for (const table of tables) this.#replicated.add(tableKey(table));
  }

  async close(): Promise<void> {
    await this.#applyClient.end().catch(() => undefined);
    await this.#reads.end().catch(() => undefined);
    await this.#own.end().catch(() => undefined);
  }
}

/** How often, while an apply call runs, the node looks for tentative transactions blocking it. */
const UNBLOCK_EVERY_MS = 10;
