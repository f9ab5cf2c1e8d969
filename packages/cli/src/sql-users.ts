import { scramVerifier } from '@synod/pg-applier';
import { print, withClient } from './client-session.js';
import { parseCommand } from './command-line.js';
import { OptionError, USAGE, UsageError } from './usage.js';

/** The first line of standard input, for --password-stdin. */
async function firstLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    if (Buffer.concat(chunks).includes(10)) break;
  }
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}

/**
 * `synod sql user add|remove --group G NAME`: the SQL front ends' users, in the group's log;
 * `synod sql verify --group G`: a verify write.
 */
export async function sqlUsers(args: string[]): Promise<void> {
  if (args[0] === 'verify') return sqlVerify(args.slice(1));
  const [noun, verb, ...rest] = args;
  const { values, positionals } = parseCommand(rest, {
    'password-stdin': { type: 'boolean' },
  } as const);
  if (values.help || noun !== 'user' || verb === undefined || verb === '--help')
    return void console.log(USAGE.sql);
  if (verb !== 'add' && verb !== 'remove')
    throw new UsageError(`unknown sql user operation ${verb}; use add or remove`);
  if (positionals.length !== 1) throw new UsageError(`sql user ${verb} takes one NAME`);
  const name = positionals[0]!;
  let command: Record<string, unknown> = { op: 'sqluser', name, remove: true };
  if (verb === 'add') {
    const password =
      values['password-stdin'] === true ? await firstLine() : process.env.SYNOD_SQL_PASSWORD;
    if (password === undefined || password === '')
      throw new OptionError(
        'sql user add needs a password: set SYNOD_SQL_PASSWORD, or pass --password-stdin and write it on standard input',
      );
    command = { op: 'sqluser', name, scram: await scramVerifier(password) };
  }
  await withClient(values, async (client, _transport, group) => {
    const answer = await client.write(command as Parameters<typeof client.write>[0]);
    print(
      values.json,
      answer,
      `${verb === 'add' ? 'added' : 'removed'} SQL user ${name} in group ${group} (slot ${answer.slot})`,
    );
  });
}

/** `synod sql verify`: every node compares its replicated state at one slot with the members'. */
async function sqlVerify(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, {} as const);
  if (values.help) return void console.log(USAGE.sql);
  if (positionals.length > 0) throw new UsageError('sql verify takes no arguments');
  await withClient(values, async (client, _transport, group) => {
    const answer = await client.write({ op: 'verify' });
    const result = answer.result as { digest?: unknown };
    print(
      values.json,
      answer,
      `verified group ${group} at slot ${answer.slot}: ${String(result.digest)}\nevery node compares its digest there with the members' (synod status shows the verdicts)`,
    );
  });
}
