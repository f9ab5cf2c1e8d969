import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger } from 'pino';

/** The fields every synod log line can carry, so one group's, node's or role's lines can be filtered. */
export interface LogContext {
  readonly group?: string;
  readonly node?: string;
  readonly role?: string;
  readonly [field: string]: unknown;
}

export interface LoggerFactoryOptions {
  /** Defaults to LOG_LEVEL from the environment, then 'info'. */
  readonly level?: string;
  /** Human-readable output. Defaults to true only when the destination is a TTY. */
  readonly pretty?: boolean;
  /** Where lines go; defaults to standard error, so standard output stays free for --json results. */
  readonly destination?: DestinationStream;
  readonly name?: string;
}

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** Resolves the level from an option or LOG_LEVEL; an unknown level is an error, not a silent default. */
export function resolveLevel(level: string | undefined = process.env.LOG_LEVEL): string {
  const chosen = (level ?? 'info').trim().toLowerCase() || 'info';
  if (!LEVELS.has(chosen)) {
    throw new RangeError(
      `unknown log level ${JSON.stringify(level)}; use one of ${[...LEVELS].join(', ')}`,
    );
  }
  return chosen;
}

/**
 * Creates the root logger of a process. Components take `child(logger, {group, node, role})`.
 * JSON lines go to standard error unless it is a terminal, where pino-pretty formats them.
 */
export function createLogger(options: LoggerFactoryOptions = {}): Logger {
  const level = resolveLevel(options.level);
  const base: LoggerOptions = {
    level,
    base: options.name === undefined ? null : { name: options.name },
  };
  if (options.destination !== undefined) return pino(base, options.destination);
  if (wantsPrettyOutput(options.pretty, process.stderr.isTTY)) {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: { destination: 2, colorize: true, ignore: 'pid,hostname' },
      },
    });
  }
  return pino(base, pino.destination({ dest: 2, sync: false }));
}

/** Pretty output only when asked for, or by default when the log stream is a terminal. */
export function wantsPrettyOutput(
  explicit: boolean | undefined,
  streamIsTTY: boolean | undefined,
): boolean {
  return explicit ?? streamIsTTY === true;
}

/** A child logger carrying group, node and role (and any other fields) on every line. */
export function childLogger(parent: Logger, context: LogContext): Logger {
  return parent.child(context);
}

/** A logger that writes nothing, for embedding and tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
