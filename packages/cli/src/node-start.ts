import { parseCommand } from './command-line.js';
import { ConfigFile } from './config-file.js';
import { NODE_FLAGS, nodeSettings } from './node-settings.js';
import { USAGE } from './usage.js';

/**
 * `synod node start`: checks everything first, then runs the node until a signal or a fatal
 * error. What runs the node (PostgreSQL, the inspector, ...) is loaded only then, so that a
 * mistake is reported at once.
 */
export async function nodeStart(args: string[]): Promise<void> {
  const { values } = parseCommand(args, NODE_FLAGS);
  if (values.help) return void console.log(USAGE['node start']);
  const settings = await nodeSettings(values, await ConfigFile.read(values.config));
  const { runNode } = await import('./node-run.js');
  await runNode(settings);
}
