import { SynodClient } from '@synod/client';
import { assertGroupName } from '@synod/protocol';
import { connectNats, type Transport } from '@synod/transport';
import type { CommonValues } from './command-line.js';
import { ConfigFile } from './config-file.js';
import { natsConnection } from './nats-options.js';
import { UsageError } from './usage.js';

/**
 * Runs `run` with a client of --group over NATS and closes the connection after, however
 * `run` ends. Everything is checked before connecting: the group name, --config, the NATS
 * settings and their files. Commands check their own arguments before calling this.
 */
export async function withClient<T>(
  values: CommonValues,
  run: (client: SynodClient, transport: Transport, group: string) => Promise<T>,
): Promise<T> {
  const group = values.group;
  if (group === undefined) throw new UsageError('--group is required');
  assertGroupName(group);
  const nats = await natsConnection(values, await ConfigFile.read(values.config));
  const transport = await connectNats({ ...nats, name: 'synod-cli' });
  try {
    return await run(new SynodClient({ transport, group }), transport, group);
  } finally {
    await transport.close();
  }
}

/** The answer as one JSON line (--json) or as text for people. */
export function print(json: boolean | undefined, value: unknown, text: string): void {
  console.log(json === true ? JSON.stringify(value) : text);
}
