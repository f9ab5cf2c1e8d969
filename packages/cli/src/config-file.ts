import { readFile } from 'node:fs/promises';
import { OptionError } from './usage.js';

/** The keys a --config file may hold: node start's settings and the NATS connection's. */
const KNOWN_KEYS = new Set([
  'id',
  'group',
  'peers',
  'data',
  'machine',
  'snapshotEvery',
  'retainSlots',
  'maxBatch',
  'maxInFlight',
  'join',
  'metricsPort',
  'verifyEvery',
  'commitProtocol',
  'sqlPort',
  'sqlListen',
  'sqlTlsCert',
  'sqlTlsKey',
  'pg',
  'replicate',
  'nats',
  'natsCreds',
  'natsUser',
  'natsPassword',
  'natsToken',
  'tlsCa',
  'tlsCert',
  'tlsKey',
]);

/** A --config file: one JSON object. Every command reads the same file; each uses its keys. */
export class ConfigFile {
  private constructor(
    readonly path: string,
    private readonly values: Readonly<Record<string, unknown>>,
  ) {}

  /** No --config: an empty file, so callers need not ask whether there is one. */
  static readonly NONE = new ConfigFile('(none)', {});

  static async read(path: string | undefined): Promise<ConfigFile> {
    if (path === undefined) return ConfigFile.NONE;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw new OptionError(`cannot read --config ${path}: ${fileProblem(error)}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      // V8's message quotes the text around the mistake, which may be a password.
      throw new OptionError(`--config ${path} is not valid JSON${where(text, error)}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new OptionError(`--config ${path} must hold one JSON object`);
    const unknown = Object.keys(parsed).filter((key) => !KNOWN_KEYS.has(key));
    if (unknown.length > 0)
      throw new OptionError(
        `--config ${path} has unknown key(s) ${unknown.join(', ')}; known: ${[...KNOWN_KEYS].join(', ')}`,
      );
    return new ConfigFile(path, parsed as Record<string, unknown>);
  }

  /** How a key is named in messages. */
  describe(key: string): string {
    return `${key} in --config ${this.path}`;
  }

  string(key: string): string | undefined {
    const value = this.values[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new OptionError(`${this.describe(key)} must be a string`);
    return value;
  }

  /** A list, written as a JSON array of strings or as one comma-separated string. */
  strings(key: string): string[] | undefined {
    const value = this.values[key];
    if (value === undefined) return undefined;
    if (typeof value === 'string') return value.split(',');
    if (Array.isArray(value) && value.every((item) => typeof item === 'string'))
      return [...(value as string[])];
    throw new OptionError(`${this.describe(key)} must be an array of strings`);
  }

  boolean(key: string): boolean | undefined {
    const value = this.values[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean')
      throw new OptionError(`${this.describe(key)} must be true or false`);
    return value;
  }

  /** A number, as written in the file (a number or a string of one); checked by the caller. */
  numberText(key: string): string | undefined {
    const value = this.values[key];
    if (value === undefined) return undefined;
    if (typeof value === 'number' || typeof value === 'string') return String(value);
    throw new OptionError(`${this.describe(key)} must be a number`);
  }
}

/** ENOENT as "no such file", and the like: the words without Node's syscall decoration. */
export function fileProblem(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EISDIR':
      return 'it is a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a parent is not a directory';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

/** " (line L, column C)" of a JSON.parse error, when V8 says where. */
function where(text: string, error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  const line = /line (\d+) column (\d+)/.exec(message);
  if (line !== null) return ` (line ${line[1]}, column ${line[2]})`;
  const position = /position (\d+)/.exec(message);
  if (position === null) return '';
  const before = text.slice(0, Number(position[1])).split('\n');
  return ` (line ${before.length}, column ${before.at(-1)!.length + 1})`;
}
