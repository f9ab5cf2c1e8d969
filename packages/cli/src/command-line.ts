import { parseArgs } from 'node:util';
import { NATS_FLAGS } from './nats-options.js';

/** The flags every connecting command takes: help, output, group, and how to reach NATS. */
export const COMMON_FLAGS = {
  help: { type: 'boolean' },
  json: { type: 'boolean' },
  group: { type: 'string' },
  config: { type: 'string' },
  ...NATS_FLAGS,
} as const;

type Flags = Record<string, { readonly type: 'string' | 'boolean' }>;

type Parsed<E extends Flags> = ReturnType<
  typeof parseArgs<{
    args: string[];
    allowPositionals: true;
    strict: true;
    options: typeof COMMON_FLAGS & E;
  }>
>;

/** A command's flags and positionals; an unknown flag is a usage error (ERR_PARSE_ARGS_*). */
export function parseCommand<E extends Flags>(args: string[], extra: E): Parsed<E> {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: { ...COMMON_FLAGS, ...extra },
  });
}

/** What every command's parsed flags hold, whatever else it takes. */
export type CommonValues = {
  readonly [K in keyof typeof COMMON_FLAGS]?: (typeof COMMON_FLAGS)[K]['type'] extends 'boolean'
    ? boolean | undefined
    : string | undefined;
};
