import { InvalidNameError } from './errors.js';

/** Longest group name or node id, in characters. */
export const MAX_NAME_LENGTH = 64;

// One NATS subject token: no '.', no wildcards, no whitespace. We allow less than NATS does
// so names are also safe as file names, metric labels and log fields.
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

export function isValidName(value: unknown): value is string {
  return typeof value === 'string' && TOKEN.test(value);
}

/** A list of 1 to `max` valid names (a transaction's groups or commit acceptors). */
export function isNameList(value: unknown, max: number): value is string[] {
  return (
    Array.isArray(value) && value.length > 0 && value.length <= max && value.every(isValidName)
  );
}

function reason(value: unknown): string {
  if (typeof value !== 'string') return 'must be a string';
  if (value.length === 0) return 'must not be empty';
  if (value.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters`;
  return "may contain only letters, digits, '-' and '_'";
}

/** Returns the name when it is a valid group name; throws InvalidNameError otherwise. */
export function assertGroupName(value: unknown): string {
  if (!isValidName(value)) throw new InvalidNameError('group', value, reason(value));
  return value;
}

/** Returns the id when it is a valid node id; throws InvalidNameError otherwise. */
export function assertNodeId(value: unknown): string {
  if (!isValidName(value)) throw new InvalidNameError('node', value, reason(value));
  return value;
}

export function nameProblem(value: unknown): string | undefined {
  return isValidName(value) ? undefined : reason(value);
}
