/** A mistake in how the command was called: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * A flag, a --config key or an environment variable has a value the command cannot use (out
 * of range, a missing file, two ways to log in): printed on one line, exit code 2.
 */
export class OptionError extends Error {
  override readonly name = 'OptionError';
}

/** How every command but demo reaches NATS; shown by synod --help. */
const NATS_OPTIONS = `Connecting to NATS (every command but demo):
  --nats URL[,URL...]       the servers (default nats://127.0.0.1:4222); a URL may log in,
                            nats://USER:PASSWORD@HOST:PORT or nats://TOKEN@HOST:PORT, and
                            tls://HOST:PORT turns TLS on
  --nats-creds FILE         log in with a NATS .creds file (JWT and nkey seed)
  --nats-user USER --nats-password PASSWORD
  --nats-token TOKEN
  --tls-ca FILE             the CA that signed the servers' certificates; turns TLS on
  --tls-cert FILE --tls-key FILE
                            this client's certificate and key, for servers that verify clients
  --config FILE             the same as JSON keys: nats, natsCreds, natsUser, natsPassword,
                            natsToken, tlsCa, tlsCert, tlsKey
A flag wins over --config, --config over the environment: SYNOD_NATS_URL, SYNOD_NATS_CREDS,
SYNOD_NATS_USER, SYNOD_NATS_PASSWORD, SYNOD_NATS_TOKEN, SYNOD_NATS_TLS_CA, SYNOD_NATS_TLS_CERT,
SYNOD_NATS_TLS_KEY. Other users of the machine can read flags (ps): give passwords and tokens
in a --config file only you can read, or in the environment.`;

export const USAGE: Record<string, string> = {
  synod: `synod — Paxos groups over NATS

Commands:
  synod node start   run one node of a group
  synod kv           put, get, delete, cas on a group's key-value state machine
  synod write        append a value to a group running the log state machine
  synod read         the values of a group running the log state machine
  synod paxos        seed 001's paxos(key, value): the value chosen for a key
  synod status       every node of a group: role, leader, applied slot
  synod table        replicate a SQL table in a group, list the replicated tables
  synod sql          users of the SQL front ends (password logins); verify the replicas
  synod group        add a node to a group's members (join) or remove one (leave)
  synod demo         a local group of three nodes: writes, reads, paxos, status
  synod inspect      watch a group's actors live: in the terminal, as JSON, or in a browser

Every command takes --help; client commands take --json for machine-readable output.

${NATS_OPTIONS}`,
  'node start': `synod node start --id ID --group GROUP[,GROUP...] --peers A,B,C --data DIR [--nats URL] [--config FILE]
                 [NATS options: synod --help]
                 [--machine kv|log] [--snapshot-every SLOTS] [--retain-slots SLOTS]
                 [--max-batch WRITES] [--max-in-flight SLOTS] [--join] [--metrics-port PORT]
                 [--commit-protocol paxos-commit|faster-paxos-commit|2pc]
                 [--machine sql [--replicate [GROUP:]TABLE[,...]] [--pg postgres://...] [--sql-port PORT | --sql-listen HOST:PORT] [--sql-tls-cert PEM --sql-tls-key PEM]
                  [--verify-every SECONDS]]

Runs one node of GROUP until SIGINT or SIGTERM. --peers lists the group's founding members,
this one included; every node names the same founders, also one added later. A node started
with --join need not be a founder: it runs, learns the log, and asks the group to add it
(pg_paxos's paxos_join_group); synod group leave removes a member. --machine picks the state
machine the log is applied to: kv (the default; put, get, delete, cas) or log (append opaque
values); every node of a group runs the same one.

--group G1,G2,... runs one node of each group in this process: one NATS connection, and per
group its own log, leader, snapshots, subjects and directory DIR/GROUP (synod status --group
G2 and synod inspect --group G2 show one of them). With --machine sql the groups share one
database (DIR/postgres, or --pg) and one front end: each replicated table belongs to one group
(--replicate north:accounts,south:orders; synod table replicate --group south items), a write
goes through its table's group's log, and a statement or transaction that writes must keep to
one group's tables. --metrics-port takes one group.

DIR belongs to one process (DIR/synod.lock: a second node on it exits at once) and to one group
and node (DIR/synod.identity.json). A node whose DIR holds no acceptor state does not vote
until a majority of the other members have recorded it: a new group's founders record each
other, so the first start of a group needs a majority of the other founders running (all of
them, for three). A member that lost its disk is refused (it would vote as if it had promised
nothing): replace it with synod group leave --group GROUP ID, then start it again with --join.

The acceptor's durable records go to DIR/GROUP.acceptor.log, the state machine's latest
snapshot to DIR/GROUP.snapshot. After every --snapshot-every applied slots (default 10000),
or 4 MiB of applied log, the node snapshots its state and compacts its log, keeping at most
the last --retain-slots slots (default 256, and at most 2 MiB) for peers a little behind.

--machine sql replicates SQL writes of the replicated tables: each node applies the group's
log to its own PostgreSQL, the one --pg names or, without --pg, an embedded server kept in
DIR/postgres (nothing to install). The database is its snapshot: the log is compacted below
what it applied (DIR/GROUP.snapshot keeps the restart point), and a peer behind gets the
replicated tables' rows. Tables are replicated from the start with --replicate
(the same list on every node), or at run time with synod table replicate. Writes are {"op":"sql","sql":...,
"params":[...]} on the write subject; {"op":"query",...} reads run on one node's database.
--sql-port serves the PostgreSQL wire protocol on 127.0.0.1:PORT, so psql and drivers connect
as to a PostgreSQL server (SET synod.consistency_model TO 'optimistic' | 'strong' |
'linearizable' per session, strong by default). --sql-listen HOST:PORT serves it on any
address instead; there every login needs a user and its password (SCRAM-SHA-256, users added
with synod sql user add), as on 127.0.0.1 too once the group has a user. --sql-tls-cert and
--sql-tls-key (PEM files) answer clients that ask for TLS (psql's sslmode=require, verify-full).
Every --verify-every seconds (default 600; 0: never) while writes are applied, the leader logs
a verify write: every node takes a digest of its replicated tables at that slot and compares
it with the members'; a node that differs from a majority installs a peer's state (synod sql
verify asks for one now; synod status shows the verdict).

The leader packs up to --max-batch writes that arrive together into one slot (default 256)
and keeps up to --max-in-flight slots in phase 2 at once (default 64, and never more than the
membership window of 64 slots past the last slot it knows chosen).

A kv node coordinates transactions across groups ({"op":"txn","ops":[...]} on a group's write
subject, packages/client/README.md) with Paxos Commit: the groups' leaders vote in their own
logs, the coordinating group's members are the commit acceptors (commit.acceptor.log in
DIR). --commit-protocol faster-paxos-commit sends the acceptors' votes to the groups' leaders
as well, one message delay fewer; 2pc is two-phase commit with its coordinator's outcome in
the coordinating group's log, the baseline npm run bench:commit compares them with.

--metrics-port serves Prometheus metrics on 127.0.0.1:PORT/metrics (0: a free port, logged):
commits, commit and fsync latency histograms, phase-1 and phase-2 messages, leader changes,
applied lag, NATS reconnects. synod status shows a summary of them. Every node also publishes
its actors to synod inspect, but only while a viewer watches.

--config reads the same options from a JSON file ({"id","group","peers":[...],"data",
"machine","snapshotEvery","retainSlots","maxBatch","maxInFlight","join","metricsPort","verifyEvery","commitProtocol",
"sqlPort","sqlListen","sqlTlsCert","sqlTlsKey","pg","replicate"} and the NATS keys of synod --help); flags override it, and a key
it does not know is an error. --sql-port takes 1..65535, --metrics-port 0..65535; a port in
use is refused before the node starts.

The node exits 0 when stopped by SIGINT or SIGTERM (a second signal stops it at once), and
70 when it stops itself because it cannot go on (a protocol invariant broke, its store or
snapshots failed), after closing everything it started.`,
  group: `synod group join --group GROUP NODE [--nats URL] [NATS options] [--json]
synod group leave --group GROUP NODE [--nats URL] [NATS options] [--json]

join makes NODE a member of GROUP (start it first with synod node start --join, which also
asks by itself); leave removes it. The leader puts the new member list in the log; it
governs the slots from a window of 64 slots after the change, which the leader fills at
once, so the command returns when the new members decide. After leave, NODE can be shut
down. One change at a time: a second one waits until the first is in the log (UNAVAILABLE
meanwhile; ask again). A node that lost its data directory is replaced this way: leave, then
start it with an empty directory and --join; it comes back as a new incarnation. Prints the members and the slot they decide from; --json prints
{"members":[...],"slot":N,"effectiveFromSlot":N}.`,
  write: `synod write --group GROUP VALUE [--nats URL] [NATS options] [--json]

Appends VALUE to the group's log state machine (nodes started with --machine log) and prints
its index.`,
  read: `synod read --group GROUP [--from N] [--limit N] [--consistency strong|linearizable|optimistic] [--nats URL] [NATS options] [--json]

Prints the values of the group's log state machine, one per line, from index --from (default
0), at most --limit (default 100, at most 1000).`,
  kv: `synod kv put|get|delete|cas|txn --group GROUP [--nats URL] [NATS options] [--json] ...

  synod kv put --group G KEY VALUE
  synod kv get --group G KEY [--consistency strong|linearizable|optimistic]
  synod kv delete --group G KEY
  synod kv cas --group G KEY EXPECT VALUE     (EXPECT "" with --absent: the key must not exist)
  synod kv txn --group G OPS                  (OPS: a JSON array of writes to several groups,
      [{"group":"g1","op":"put","key":"k","value":"v"},{"group":"g2","op":"cas","key":"c",
      "expect":"0","value":"1"}]: all commit or none; G coordinates; prints committed or aborted)`,
  paxos: `synod paxos --group GROUP KEY VALUE [--nats URL] [NATS options] [--json]

Prints the value chosen for KEY: VALUE if this call won, or the value chosen before.`,
  demo: `synod demo [--once] [--no-sql]

Starts a nats-server on a free port when one is on PATH (the in-memory transport otherwise,
saying so), three nodes of group mokka, writes and reads, and shows the status. Then seed
000 with SQL: three nodes of group coordinates, each with its own embedded PostgreSQL
(nothing to install; --no-sql skips it), writes through different nodes, and every node's
table. Keeps running until Ctrl-C, which stops everything (--once stops at once).`,
  sql: `synod sql user add --group GROUP NAME [--password-stdin] [--nats URL] [NATS options] [--json]
synod sql user remove --group GROUP NAME [--nats URL] [NATS options] [--json]
synod sql verify --group GROUP [--nats URL] [NATS options] [--json]

verify logs a verify write in a group running --machine sql: every node takes a digest of its
replicated tables and SQL users at that slot and compares it with the members'. It prints the
slot and the digest of the node that answered; a node whose digest differs from a majority's
installs the state of a node of that majority (its log says so, and synod status shows each
node's verdict).

add makes NAME a user of every node's SQL front end (--sql-port, --sql-listen) of a group
running --machine sql: a SCRAM-SHA-256 verifier of its password, computed here, goes through
the group's log (the password itself never leaves this process). The password comes from the
environment variable SYNOD_SQL_PASSWORD, or with --password-stdin from the first line of
standard input. Adding a user that exists changes its password. Once a group has a user, every
login needs one, also on loopback; with none, loopback logins are trusted and every other
address refuses everyone. Every user's session runs as the node's client role, which may read
replicated tables and write them only through the log.`,
  table: `synod table replicate --group GROUP TABLE [--nats URL] [NATS options] [--json] [--wait-ms 500]
synod table list --group GROUP [--nats URL] [NATS options] [--json] [--wait-ms 500]

replicate makes TABLE (name or schema.name) a replicated table of a group running --machine
sql, as pg_paxos's paxos_replicate_table: TABLE must exist on the node that takes the write;
its definition (columns, defaults, primary key, unique and check constraints) goes through the
log, every node without the table creates it, and from that slot on every node sends the
table's INSERT, UPDATE, DELETE and TRUNCATE through the log. Tables whose defaults call
volatile functions (serial, identity, now()) are refused. It then asks every node that
answers within --wait-ms for its replicated tables (a strong read) and prints which have it.

list prints every node's replicated tables.`,
  inspect: `synod inspect --group GROUP [--nats URL] [NATS options] [--json] [--web HOST:PORT]

Watches the actors of every node of GROUP decide, until Ctrl-C: each node's role, ballot,
leader, commit and applied slot, messages and actor events per second, the state of each of
its actor machines, and the latest events (XState inspection, sent by the nodes only while a
viewer watches). --json prints one JSON line per node summary ({"type":"node",...}) and per
event ({"type":"event",...}) instead. --web serves the same view as a web page on HOST:PORT
(a loopback address), with the log's slots coloured accepted, chosen, applied.`,
  status: `synod status --group GROUP [--nats URL] [NATS options] [--json] [--wait-ms 500]

Asks every node of GROUP for its role, the leader it knows and that leader's ballot, the
highest slot it knows chosen (commit), the last slot it applied, and how long ago it heard
the leader's heartbeat. Nodes started with --metrics-port also report their metrics, shown in
a second table. --json gives every field each node reports.`,
};
