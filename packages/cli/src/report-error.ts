import { OptionError, USAGE, UsageError } from './usage.js';

/** A mistake in how a command was called. */
export const EXIT_USAGE = 2;
/** Anything else that went wrong. */
export const EXIT_FAILURE = 1;

/**
 * Prints an error that ended a command and gives the exit status. A usage mistake is one
 * `synod: ...` line, a blank line and the usage (status 2); a bad option value is one line
 * (status 2); anything else one line (status 1, or the error's own exitCode), with the stack
 * only when LOG_LEVEL=debug. Never a bare stack trace.
 */
export function reportError(error: unknown): number {
  if (isUsageMistake(error)) {
    console.error(`synod: ${oneLine(error)}\n\n${USAGE.synod}`);
    return EXIT_USAGE;
  }
  console.error(`synod: ${oneLine(error)}`);
  if (process.env.LOG_LEVEL?.trim().toLowerCase() === 'debug' && error instanceof Error)
    console.error(error.stack);
  if (error instanceof OptionError) return EXIT_USAGE;
  const own = (error as { exitCode?: unknown } | null)?.exitCode;
  return typeof own === 'number' && Number.isSafeInteger(own) && own > 0 ? own : EXIT_FAILURE;
}

function isUsageMistake(error: unknown): error is Error {
  return (
    error instanceof UsageError ||
    (error instanceof TypeError &&
      'code' in error &&
      String(error.code).startsWith('ERR_PARSE_ARGS'))
  );
}

/**
 * The message on one line. An AggregateError (a connection refused on ::1 and on 127.0.0.1)
 * often has none of its own: its errors' messages then.
 */
function oneLine(error: unknown): string {
  let text: string;
  if (error instanceof AggregateError && error.message === '')
    text = error.errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ');
  else if (error instanceof Error) text = error.message === '' ? error.name : error.message;
  else text = String(error);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
