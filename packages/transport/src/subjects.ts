import { InvalidSubjectError } from './errors.js';

const MAX_SUBJECT_LENGTH = 4096;

function check(subject: string, allowWildcards: boolean): string[] {
  if (typeof subject !== 'string' || subject.length === 0)
    throw new InvalidSubjectError(String(subject), 'must not be empty');
  if (subject.length > MAX_SUBJECT_LENGTH)
    throw new InvalidSubjectError(subject.slice(0, 64), 'too long');
  if (/\s/.test(subject)) throw new InvalidSubjectError(subject, 'must not contain whitespace');
  const tokens = subject.split('.');
  tokens.forEach((token, i) => {
    if (token === '') throw new InvalidSubjectError(subject, 'has an empty token');
    if (token.includes('*') || token.includes('>')) {
      if (!allowWildcards)
        throw new InvalidSubjectError(subject, 'wildcards are only allowed in subscriptions');
      if (token.length > 1)
        throw new InvalidSubjectError(subject, 'a wildcard must be a whole token');
      if (token === '>' && i !== tokens.length - 1)
        throw new InvalidSubjectError(subject, "'>' must be the last token");
    }
  });
  return tokens;
}

/** Throws InvalidSubjectError unless `subject` is a literal subject one can publish to. */
export function assertPublishSubject(subject: string): void {
  check(subject, false);
}

/** Throws InvalidSubjectError unless `subject` is a valid subscription (wildcards allowed). */
export function parseSubscription(subject: string): readonly string[] {
  return check(subject, true);
}

/** NATS matching: `*` matches one token, `>` one or more trailing tokens. */
export function subjectMatches(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const token = pattern[i];
    if (token === '>') return subject.length > i;
    if (i >= subject.length) return false;
    if (token !== '*' && token !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}
