#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { reportError } from './report-error.js';
import { USAGE, UsageError } from './usage.js';

// Each command's code is loaded when it runs: a node's dependencies (PostgreSQL's parser, the
// inspector) cost a client command, and a mistake, a few hundred milliseconds otherwise.
const COMMANDS: Record<string, (args: string[]) => Promise<void>> = {
  kv: async (args) => (await import('./client-commands.js')).kv(args),
  paxos: async (args) => (await import('./client-commands.js')).paxos(args),
  write: async (args) => (await import('./client-commands.js')).write(args),
  read: async (args) => (await import('./client-commands.js')).read(args),
  status: async (args) => (await import('./client-commands.js')).status(args),
  table: async (args) => (await import('./client-commands.js')).table(args),
  sql: async (args) => (await import('./sql-users.js')).sqlUsers(args),
  group: async (args) => (await import('./client-commands.js')).group(args),
  inspect: async (args) => (await import('./client-commands.js')).inspectCommand(args),
  demo: demoCommand,
};

async function demoCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      help: { type: 'boolean' },
      once: { type: 'boolean' },
      'no-sql': { type: 'boolean' },
    },
  });
  if (values.help) console.log(USAGE.demo);
  else await (await import('./demo.js')).demo(values.once === true, values['no-sql'] !== true);
}

/** Runs one command; the exit status: 0, 2 for a usage mistake, 1 or more for a failure. */
async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === 'help')
      console.log(USAGE.synod);
    else if (command === 'node' && rest[0] === 'start')
      await (await import('./node-start.js')).nodeStart(rest.slice(1));
    else if (command === 'node') console.log(USAGE['node start']);
    else {
      const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
      if (run === undefined) throw new UsageError(`unknown command ${command}`);
      await run(rest);
    }
    return 0;
  } catch (error) {
    return reportError(error);
  }
}

// An error that escapes every command (an 'error' event nobody listens to, a rejected promise
// nobody awaits) is still one line, not a stack trace.
process.on('uncaughtException', (error) => process.exit(reportError(error)));
process.on('unhandledRejection', (error) => process.exit(reportError(error)));

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Whatever a command leaves open (a socket, a timer in a library) must not keep the process
// alive: once the loop has had a moment to flush, exit.
setTimeout(() => process.exit(code), 500).unref();
